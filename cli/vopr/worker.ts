import { runVoprSeed, type VoprEpochPolicy, type VoprOutcome } from '../../sim/vopr.js';
import type { PlantedBug } from '../../lib/planted-bugs.js';
import { recycling } from '../../lib/memory/backing.js';

/** Piscina worker: runs a batch of seeds (batches amortise the thread hop), each on the memories of the seeds before it. */
export default function runSeeds(task: { seeds: number[]; plantedBug?: PlantedBug; epochPolicy: VoprEpochPolicy }): VoprOutcome[] {
  return task.seeds.map((seed) => recycling(() => runVoprSeed(seed, task.plantedBug, undefined, task.epochPolicy)));
}
