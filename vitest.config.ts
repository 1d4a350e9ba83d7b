import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      // A hang guard, not a speed target (those live in bench/): property tests slow down on a busy machine.
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 30_000 } },
      { test: { name: 'sim', include: ['test/sim/**/*.test.ts'], testTimeout: 120_000 } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/deploy/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 60_000,
          // Tests start servers and child processes on loopback ports; one file at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
