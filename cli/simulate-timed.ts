import type { RunConfig } from '../lib/config/run-config.js';
import type { RunResult } from '../lib/results/run-result.js';
import { simulate } from '../sim/run.js';

/** Runs one configuration on the pure simulator; the shell owns the wall clock. */
export function simulateTimed(config: RunConfig): RunResult {
  const t0 = performance.now();
  const result = simulate(config);
  result.wallMs = Math.round(performance.now() - t0);
  return result;
}
