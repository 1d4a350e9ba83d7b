import { localNicOptionsFor } from '../../lib/link/local-nic.js';
import { statusIntervalMs } from '../../lib/config/failover-config.js';
import { isSpeculative, partRepeatGapUs, replicationBytesPerSec, type RunConfig } from '../../lib/config/run-config.js';
import type { ServiceExtras } from '../../lib/planted-bugs.js';
import { topologyOf } from '../../lib/topology/index.js';
import { tracingOptionsFromConfig } from '../../lib/tracing/options.js';
import { msToUs } from '../../lib/units.js';
import { outputWatchOption } from '../../lib/epoch-policy/from-config.js';
import { handoverRetryMaxUs } from '../../lib/supervision/handover-timing.js';
import type { AckerOptions } from './core.js';


/**
 * Epochs an acker tracks beyond the checkpoints in flight: the one running,
 * and commits lost or late on the bus (a later commit covers them).
 */
export const UNCOMMITTED_EPOCHS_SLACK = 8;

/** The acker of `host`, the same under every runtime. */
export function ackerOptionsFromConfig(config: RunConfig, host: string, extras: ServiceExtras = {}): AckerOptions {
  const s = topologyOf(config).subjects;
  const bug = extras.plantedBug;
  return {
    vmId: config.vmId,
    host,
    mode: isSpeculative(config.mode) ? 'spec' : 'remus',
    subjects: s.host(host),
    wireInSubject: s.wireIn,
    wireOutSubject: s.wireOut,
    handoverRetryUs: msToUs(config.bus.handoverRetryMs),
    handoverRetryMaxUs: handoverRetryMaxUs(config.bus),
    partRepeatGapUs: partRepeatGapUs(config),
    replicationBytesPerSec: replicationBytesPerSec(config),
    uncommittedEpochsMax: config.checkpoint.maxInflightEpochs + UNCOMMITTED_EPOCHS_SLACK,
    statusIntervalUs: msToUs(statusIntervalMs(config.failover)),
    tcp: config.tcp,
    specBufferBytes: config.buffers.specBufferBytes,
    specWindow: config.buffers.specWindow,
    chunkBytes: config.checkpoint.chunkBytes,
    recordDigests: extras.recordDigests ?? false,
    tracing: tracingOptionsFromConfig(config),
    ...outputWatchOption(config, host),
    ...(isSpeculative(config.mode) && config.link.localBackpressure ? { localNic: localNicOptionsFor(config) } : {}),
    ...(bug === 'release-before-commit' || bug === 'spec-buffer-not-replicated' || bug === 'ignore-permit-expiry' ? { plantedBug: bug } : {}),
  };
}
