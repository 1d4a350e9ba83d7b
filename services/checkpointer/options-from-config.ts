import { isSpeculative, type RunConfig } from '../../lib/config/run-config.js';
import { topologyOf } from '../../lib/topology/index.js';
import { BITS_PER_BYTE, msToUs } from '../../lib/units.js';
import type { CheckpointerOptions } from './core.js';

/**
 * Slack of the acknowledgement timeout beyond an epoch, the link's round trip
 * and twice the checkpoint's transfer time: bus delays of a few ms.
 */
const CHECKPOINT_ACK_SLACK_US = 5_000;
/** Cap of the backed-off acknowledgement timeout: a lost chunk or ack costs at most this once the bus is clean. */
const CHECKPOINT_ACK_TIMEOUT_MAX_US = 250_000;
/** Interval of barrier, resume and commit repeats: a few bus delays, well inside an epoch's pause. */
export const BUS_RESEND_US = 2_000;

/** The checkpointer of `host`, the same under every runtime. */
export function checkpointerOptionsFromConfig(config: RunConfig, host: string): CheckpointerOptions {
  const s = topologyOf(config).subjects;
  return {
    vmId: config.vmId,
    host,
    subjects: s.host(host),
    ckptDataSubject: s.ckptData,
    ckptAckSubject: s.ckptAck,
    statusIntervalUs: msToUs(config.failover.heartbeatIntervalMs),
    epochUs: msToUs(config.epochMs),
    pauseFixedUs: config.checkpoint.pauseFixedUs,
    copyBytesPerSec: config.checkpoint.copyBytesPerSec,
    maxInflightEpochs: config.checkpoint.maxInflightEpochs,
    speculative: isSpeculative(config.mode),
    // An acknowledgement normally comes one transfer and one round trip after the copy.
    ackTimeoutUs: msToUs(config.epochMs) + msToUs(config.replicationLink.rttMs) + CHECKPOINT_ACK_SLACK_US,
    replicationBytesPerSec: config.replicationLink.bandwidthBitsPerSec / BITS_PER_BYTE,
    replicationRttUs: Math.ceil(msToUs(config.replicationLink.rttMs)),
    maxAckTimeoutUs: CHECKPOINT_ACK_TIMEOUT_MAX_US,
    resendUs: BUS_RESEND_US,
    maxLatencySamples: config.maxLatencySamples,
  };
}
