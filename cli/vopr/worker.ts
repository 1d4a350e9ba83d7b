import { runVoprSeed, type VoprEpochPolicy, type VoprOutcome } from '../../sim/vopr.js';
import type { PlantedBug } from '../../lib/planted-bugs.js';
import { recycling } from '../../lib/memory/backing.js';

/** Piscina worker: runs a batch of seeds (batches amortise the thread hop), each on the memories of the seeds before it. */
export default function runSeeds(task: { seeds: number[]; plantedBug?: PlantedBug; epochPolicy: VoprEpochPolicy }): VoprOutcome[] {
  return task.seeds.map((seed) => {
    try {
      return recycling(() => runVoprSeed(seed, task.plantedBug, undefined, task.epochPolicy));
    } catch (cause) {
      // Not an invariant (those are outcomes): a bug of the simulator or a core. The run stops; the seed replays it.
      throw new Error(`vopr seed ${seed} threw ${cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause)} (replay: specula vopr --replay ${seed})`, { cause });
    }
  });
}
