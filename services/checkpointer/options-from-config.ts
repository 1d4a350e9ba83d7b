import { statusIntervalMs } from '../../lib/config/failover-config.js';
import { maxChunksPerSource } from '../../lib/checkpoint/chunks.js';
import { seedEpochs } from '../../lib/checkpoint/seed.js';
import { isSpeculative, replicationBytesPerSec, type RunConfig } from '../../lib/config/run-config.js';
import { topologyOf } from '../../lib/topology/index.js';
import { msToUs } from '../../lib/units.js';
import type { CheckpointerOptions } from './core.js';

/** Cap of the backed-off acknowledgement timeout: a lost chunk or ack costs at most this once the bus is clean. */
const CHECKPOINT_ACK_TIMEOUT_MAX_US = 250_000;

/** The checkpointer of `host`, the same under every runtime. */
export function checkpointerOptionsFromConfig(config: RunConfig, host: string): CheckpointerOptions {
  const s = topologyOf(config).subjects;
  return {
    vmId: config.vmId,
    host,
    subjects: s.host(host),
    ckptDataSubject: s.ckptData,
    ckptAckSubject: s.ckptAck,
    statusIntervalUs: msToUs(statusIntervalMs(config.failover)),
    epochUs: msToUs(config.epochMs),
    epochPolicy: { kind: config.epochPolicy.kind, minEpochUs: msToUs(config.epochPolicy.minEpochMs), interactiveUs: msToUs(config.epochPolicy.interactiveMs) },
    guestPause: { fixedUs: config.checkpoint.pauseFixedUs, copyBytesPerSec: config.checkpoint.copyBytesPerSec },
    maxInflightEpochs: config.checkpoint.maxInflightEpochs,
    maxChunksPerSource: maxChunksPerSource(config.guest.memoryBytes),
    seedEpochs: seedEpochs(config.guest.memoryBytes, config.checkpoint.seedBytesPerEpoch),
    speculative: isSpeculative(config.mode),
    // An acknowledgement normally comes one transfer and one round trip after the checkpoint is staged.
    ackTimeoutUs: msToUs(config.epochMs) + msToUs(config.replicationLink.rttMs) + msToUs(config.bus.ackSlackMs),
    replicationBytesPerSec: replicationBytesPerSec(config),
    replicationRttUs: Math.ceil(msToUs(config.replicationLink.rttMs)),
    maxAckTimeoutUs: CHECKPOINT_ACK_TIMEOUT_MAX_US,
    resendUs: msToUs(config.bus.resendMs),
    maxLatencySamples: config.maxLatencySamples,
    traceEpochs: config.tracing.epochs,
  };
}
