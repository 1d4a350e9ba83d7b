import type { RunConfig } from '../../config/run-config.js';
import { clientLinkFor, replicationLinkFor, type LinkDirection, type LinkSide } from '../../link/index.js';

export type { LinkSide };

/**
 * One direction of the run's client link, built exactly as the simulator
 * builds it (same options, same RNG stream), so a NATS run has the
 * simulator's bandwidth, delay, queue and loss model. The receiving process
 * applies it.
 */
export function emulatedLink(config: RunConfig, side: LinkSide): LinkDirection {
  return clientLinkFor(config, side);
}

/** One direction of the replication link ('down': checkpoints, 'up': acknowledgements), as the simulator builds it. */
export function replicationLink(config: RunConfig, side: LinkSide): LinkDirection {
  return replicationLinkFor(config.replicationLink, config.seed, side);
}
