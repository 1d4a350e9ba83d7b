import type { RunConfig } from '../../lib/config/run-config.js';
import type { RunResult } from '../../lib/results/run-result.js';
import { simulateTimed } from '../simulate-timed.js';

/** Piscina worker: runs one point of a sweep on the simulator. */
export default function runPoint(config: RunConfig): RunResult {
  return simulateTimed(config);
}
