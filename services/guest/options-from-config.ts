import { localNicOptionsFor } from '../../lib/link/local-nic.js';
import { statusIntervalMs } from '../../lib/config/failover-config.js';
import { handoverAnswerIntervalMaxUs, handoverRetryMaxUs } from '../../lib/supervision/handover-timing.js';
import { isReplicated, isSpeculative, partRepeatGapUs, replicationBytesPerSec, type RunConfig } from '../../lib/config/run-config.js';
import { seedPagesPerEpoch } from '../../lib/checkpoint/seed.js';
import { stagedBytesMax } from '../../lib/checkpoint/staging-bound.js';
import type { ServiceExtras } from '../../lib/planted-bugs.js';
import { Rng } from '../../lib/rng.js';
import { RACC_MIN_RTO_US } from '../../lib/tcp/congestion/racc.js';
import { topologyOf } from '../../lib/topology/index.js';
import { tracingOptionsFromConfig } from '../../lib/tracing/options.js';
import { US_PER_S, msToUs } from '../../lib/units.js';
import type { GuestCoreOptions } from './core.js';
import { connectionWorkloads } from './workload/workload.js';

/**
 * The guest service of `host` (replicated modes) or the guest alone (native,
 * `host` null), the same under every runtime.
 */
export function guestOptionsFromConfig(config: RunConfig, host: string | null, extras: ServiceExtras = {}): GuestCoreOptions {
  const t = topologyOf(config);
  const s = t.subjects;
  // spec-racc: the guest's TCP knows it is replicated (docs/racc.md).
  const tcp = config.mode === 'spec-racc' ? { ...config.tcp, congestionControl: 'racc' as const, slowStartAfterIdle: false, minRtoUs: RACC_MIN_RTO_US, rtoBackoff: false } : config.tcp;
  const common = {
    vmId: config.vmId,
    seed: config.seed,
    tcp,
    workload: config.workload,
    memoryBytes: config.guest.memoryBytes,
    appDirtyPagesPerSec: config.guest.appDirtyPagesPerSec,
    rng: new Rng(config.seed).fork('guest.app'),
    tracing: tracingOptionsFromConfig(config),
  };
  if (!isReplicated(config.mode) || host === null) {
    const localNic = config.link.localBackpressure ? { localNic: localNicOptionsFor(config) } : {};
    return { vm: { ...common, txSubject: s.wireOut, rxSubject: s.wireIn, rxFromClient: true, ...localNic } };
  }
  const h = s.host(host);
  const f = config.failover;
  return {
    vm: {
      ...common,
      txSubject: h.tx,
      // The acker re-segments the guest's data for the wire: the guest's NIC may hand it TSO segments.
      ...(isSpeculative(config.mode) ? { txDataSubject: h.txData, tsoBytes: config.guest.tsoBytes } : {}),
      // remus: the client's segments straight from the wire, as into a Remus VM; speculative modes: through the acker.
      ...(isSpeculative(config.mode) ? { rxSubject: h.rx } : { rxSubject: s.wireIn, rxFromClient: true }),
      replication: {
        txEpochSubject: h.txEpoch,
        ckptStageSubject: h.ckptStage,
        chunkBytes: config.checkpoint.chunkBytes,
        pageDelta: config.checkpoint.pageDelta,
        seedPagesPerEpoch: seedPagesPerEpoch(config.checkpoint.seedBytesPerEpoch),
        pauseFixedUs: config.checkpoint.pauseFixedUs,
        copyBytesPerSec: config.checkpoint.copyBytesPerSec,
        recordDigests: extras.recordDigests ?? false,
        partRepeatGapUs: partRepeatGapUs(config),
        replicationBytesPerSec: replicationBytesPerSec(config),
      },
      ...(config.mode === 'remus' && config.buffers.plugFull === 'backpressure' ? { plugBackpressure: { limitBytes: config.buffers.heldBytesMax, maxQueuedSegments: nicQueueSegments(config) } } : {}),
    },
    supervision: {
      host,
      subjects: h,
      ckptDataSubject: s.ckptData(host),
      ckptAckSubject: s.ckptAck,
      specBufferBytes: config.buffers.specBufferBytes,
      maxPendingEpochs: config.checkpoint.maxInflightEpochs + 1,
      stagedBytesMax: stagedBytesMax({ maxPendingEpochs: config.checkpoint.maxInflightEpochs + 1, memoryBytes: config.guest.memoryBytes, connections: connectionWorkloads(config.workload).length, specBufferBytes: config.buffers.specBufferBytes, chunkBytes: config.checkpoint.chunkBytes }),
      restoreUs: msToUs(f.restoreFixedMs) + Math.ceil((config.guest.memoryBytes * US_PER_S) / f.restoreBytesPerSec),
      handoverSpec: isSpeculative(config.mode),
      handoverAnswerIntervalUs: { firstUs: msToUs(config.bus.handoverRetryMs), maxUs: handoverAnswerIntervalMaxUs(handoverRetryMaxUs(config.bus)) },
      statusIntervalUs: msToUs(statusIntervalMs(config.failover)),
    },
  };
}

/** Segments besides a full send buffer's that a NIC queue in front of a plug takes: ACKs, retransmissions. */
const NIC_QUEUE_EXTRA_SEGMENTS = 64;

/** A backpressured NIC's queue: every connection's whole send buffer in segments, and some more. */
function nicQueueSegments(config: RunConfig): number {
  return connectionWorkloads(config.workload).length * Math.ceil(config.tcp.sndBufBytes / config.tcp.mssBytes) + NIC_QUEUE_EXTRA_SEGMENTS;
}
