import type { RunConfig } from '../../lib/config/run-config.js';
import type { RunResult } from '../../lib/results/run-result.js';
import { recycling } from '../../lib/memory/backing.js';
import { simulateTimed } from '../simulate-timed.js';

/** Piscina worker: runs one point of a sweep on the simulator, on the memories of this thread's earlier points. */
export default function runPoint(config: RunConfig): RunResult {
  return recycling(() => simulateTimed(config));
}
