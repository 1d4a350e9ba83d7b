import type { RunConfig } from '../lib/config/run-config.js';
import type { RunResult } from '../lib/results/run-result.js';
import type { RunTimeline } from '../lib/results/timeline.js';
import { simulate, simulateWithTimeline } from '../sim/run.js';
import type { WorldHooks } from '../sim/world.js';

/** `run()` with its wall time filled in: the shell owns the wall clock. */
function timed<T extends { result: RunResult }>(run: () => T): T {
  const t0 = performance.now();
  const out = run();
  out.result.wallMs = Math.round(performance.now() - t0);
  return out;
}

/** Runs one configuration on the pure simulator, with the run's timeline (a picture of it). */
export function simulateTimedWithTimeline(config: RunConfig, hooks: WorldHooks = {}): { result: RunResult; timeline: RunTimeline } {
  return timed(() => simulateWithTimeline(config, hooks));
}

/** Runs one configuration on the pure simulator (the experiment's points: no timeline to work out). */
export function simulateTimed(config: RunConfig): RunResult {
  return timed(() => ({ result: simulate(config) })).result;
}
