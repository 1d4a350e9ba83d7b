import type { Subjects } from '../lib/codec/subjects.js';
import { isSpeculative, type RunConfig } from '../lib/config/run-config.js';
import { BITS_PER_BYTE, msToUs } from '../lib/units.js';
import { AckerCore } from '../services/acker/core.js';
import { CheckpointerPrimaryCore } from '../services/checkpointer/primary.js';
import { NetbufferCore } from '../services/netbuffer/core.js';
import type { PlantedBug } from './planted-bugs.js';

/**
 * Slack of the acknowledgement timeout beyond an epoch, the link's round trip
 * and twice the checkpoint's transfer time: bus delays of a few ms.
 */
const CHECKPOINT_ACK_SLACK_US = 5_000;
/** Cap of the backed-off acknowledgement timeout: a lost chunk or ack costs at most this once the bus is clean. */
const CHECKPOINT_ACK_TIMEOUT_MAX_US = 250_000;
/** Interval of barrier, resume and commit repeats: a few bus delays, well inside an epoch's pause. */
const BUS_RESEND_US = 2_000;

/** The services a primary host runs beside its guest. */
export interface PrimaryServices {
  readonly netbuffer: NetbufferCore;
  readonly acker: AckerCore;
  readonly primary: CheckpointerPrimaryCore;
}

export interface PrimaryServicesOptions {
  readonly recordDigests: boolean;
  /** A promoted primary continues after the epoch it was restored from. */
  readonly firstEpoch: number;
  /** No backup yet: epochs commit locally. */
  readonly unprotected: boolean;
  readonly term: number;
  /** The host this primary runs on (its control subject tells it when the backup is gone). */
  readonly host: string;
  /** The backup it replicates to at start; '' when unprotected. */
  readonly backupHost: string;
  /** Tests only. */
  readonly plantedBug?: PlantedBug;
}

/** Netbuffer, acker and checkpointer of a primary host, from the run's configuration. */
export function primaryServices(config: RunConfig, s: Subjects, o: PrimaryServicesOptions): PrimaryServices {
  const speculative = isSpeculative(config.mode);
  const bug = o.plantedBug;
  const netbuffer = new NetbufferCore({
    vmId: config.vmId,
    txSubject: s.tx,
    commitSubject: s.commit,
    outSubject: s.wireOut,
    heldBytesMax: config.buffers.heldBytesMax,
    holdData: !speculative,
    ...(bug === 'release-before-commit' ? { plantedReleaseBeforeCommit: true } : {}),
  });
  const acker = new AckerCore({
    vmId: config.vmId,
    mode: speculative ? 'spec' : 'remus',
    subjects: s,
    tcp: config.tcp,
    specBufferBytes: config.buffers.specBufferBytes,
    chunkBytes: config.checkpoint.chunkBytes,
    recordDigests: o.recordDigests,
    ...(bug === 'release-before-commit' || bug === 'spec-buffer-not-replicated' ? { plantedBug: bug } : {}),
  });
  const primary = new CheckpointerPrimaryCore({
    vmId: config.vmId,
    subjects: s,
    epochUs: msToUs(config.epochMs),
    pauseFixedUs: config.checkpoint.pauseFixedUs,
    copyBytesPerSec: config.checkpoint.copyBytesPerSec,
    maxInflightEpochs: config.checkpoint.maxInflightEpochs,
    speculative,
    // An acknowledgement normally comes one transfer and one round trip after the copy.
    ackTimeoutUs: msToUs(config.epochMs) + msToUs(config.replicationLink.rttMs) + CHECKPOINT_ACK_SLACK_US,
    replicationBytesPerSec: config.replicationLink.bandwidthBitsPerSec / BITS_PER_BYTE,
    replicationRttUs: Math.ceil(msToUs(config.replicationLink.rttMs)),
    maxAckTimeoutUs: CHECKPOINT_ACK_TIMEOUT_MAX_US,
    resendUs: BUS_RESEND_US,
    maxLatencySamples: config.maxLatencySamples,
    firstEpoch: o.firstEpoch,
    unprotected: o.unprotected,
    controlSubject: s.control(o.host),
    backupHost: o.backupHost,
  });
  primary.term = o.term;
  netbuffer.term = o.term;
  acker.term = o.term;
  return { netbuffer, acker, primary };
}
