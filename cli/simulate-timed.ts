import type { RunConfig } from '../lib/config/run-config.js';
import type { RunResult } from '../lib/results/run-result.js';
import type { RunTimeline } from '../lib/results/timeline.js';
import { simulateWithTimeline } from '../sim/run.js';
import type { WorldHooks } from '../sim/world.js';

/** Runs one configuration on the pure simulator, with the run's timeline; the shell owns the wall clock. */
export function simulateTimedWithTimeline(config: RunConfig, hooks: WorldHooks = {}): { result: RunResult; timeline: RunTimeline } {
  const t0 = performance.now();
  const run = simulateWithTimeline(config, hooks);
  run.result.wallMs = Math.round(performance.now() - t0);
  return run;
}

/** Runs one configuration on the pure simulator; the shell owns the wall clock. */
export function simulateTimed(config: RunConfig): RunResult {
  return simulateTimedWithTimeline(config).result;
}
