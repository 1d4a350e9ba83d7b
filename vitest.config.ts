import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Every core for unit and sim files (vitest's default leaves one idle, which on 2 cores runs them one at a time).
    maxWorkers: availableParallelism(),
    projects: [
      // Unit and sim files share a worker's module cache (isolate: false): they hold no module-level state, and
      // re-importing the tree for each of ~110 files cost a third of the unit phase.
      // A hang guard, not a speed target (those live in bench/): property tests slow down on a busy machine.
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 30_000, isolate: false } },
      // sim and integration run dist/ (workers, child processes): it must be built from the sources as they are.
      { test: { name: 'sim', include: ['test/sim/**/*.test.ts'], testTimeout: 120_000, isolate: false, globalSetup: ['test/support/dist-is-fresh.ts'] } },
      {
        test: {
          name: 'integration',
          globalSetup: ['test/support/dist-is-fresh.ts'],
          include: ['test/integration/**/*.test.ts', 'test/deploy/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
          // Tests start servers and child processes on loopback ports; one file at a time.
          fileParallelism: false,
          // After unit and sim, alone: a fleet of 16 service processes needs the machine's cores to itself, or its
          // heartbeats stall into false failovers.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
