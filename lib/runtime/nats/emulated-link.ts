import type { RunConfig } from '../../config/run-config.js';
import { linkDirectionFor, type LinkDirection, type LinkSide } from '../../link/index.js';

export type { LinkSide };

/**
 * One direction of the run's link, built exactly as the simulator builds it
 * (same options, same RNG stream), so a NATS run has the simulator's
 * bandwidth, delay, queue and loss model. The receiving process applies it.
 */
export function emulatedLink(config: RunConfig, side: LinkSide): LinkDirection {
  return linkDirectionFor(config.link, config.seed, side);
}
