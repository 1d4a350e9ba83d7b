import { runVoprSeed, type VoprEpochPolicy, type VoprOutcome } from '../../sim/vopr.js';
import type { PlantedBug } from '../../lib/planted-bugs.js';

/** Piscina worker: runs a batch of seeds (batches amortise the thread hop). */
export default function runSeeds(task: { seeds: number[]; plantedBug?: PlantedBug; epochPolicy: VoprEpochPolicy }): VoprOutcome[] {
  return task.seeds.map((seed) => runVoprSeed(seed, task.plantedBug, undefined, task.epochPolicy));
}
