import type { RunConfig } from '../../lib/config/run-config.js';
import type { RunResult } from '../../lib/results/run-result.js';
import { simulate } from '../run.js';

/**
 * Piscina worker: runs one point of a sweep on the simulator. The worker is
 * the shell around the pure simulator, so it owns the wall clock.
 */
export default function runPoint(config: RunConfig): RunResult {
  // eslint-disable-next-line no-restricted-globals, no-restricted-properties -- the worker is a shell: it measures wall time around the pure run
  const t0 = performance.now();
  const result = simulate(config);
  // eslint-disable-next-line no-restricted-globals, no-restricted-properties -- as above
  result.wallMs = Math.round(performance.now() - t0);
  return result;
}
