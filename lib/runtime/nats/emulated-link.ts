import type { RunConfig } from '../../config/run-config.js';
import { Rng } from '../../rng.js';
import { msToUs } from '../../units.js';
import { LinkDirection, type LinkOptions } from '../../../sim/link.js';

/** Direction of the emulated link: down = guest → client (wire.out), up = client → guest (wire.in). */
export type LinkSide = 'down' | 'up';

/**
 * One direction of the run's link, built as sim/world.ts builds it (same
 * options, same RNG stream), so a NATS run has the simulator's bandwidth,
 * delay, queue and loss model. The receiving process applies it.
 */
export function emulatedLink(config: RunConfig, side: LinkSide): LinkDirection {
  const options: LinkOptions = {
    rateBitsPerSec: config.link.bandwidthBitsPerSec,
    delayUs: msToUs(config.link.rttMs / 2),
    queueBytes: config.link.queueBytes,
    lossRate: config.link.lossRate,
    jitterUs: msToUs(config.link.jitterMs),
  };
  return new LinkDirection(options, new Rng(config.seed).fork(`link.${side}`));
}
