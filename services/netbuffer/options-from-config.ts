import { statusIntervalMs } from '../../lib/config/failover-config.js';
import { isSpeculative, type RunConfig } from '../../lib/config/run-config.js';
import type { ServiceExtras } from '../../lib/planted-bugs.js';
import { topologyOf } from '../../lib/topology/index.js';
import { tracingOptionsFromConfig } from '../../lib/tracing/options.js';
import { msToUs } from '../../lib/units.js';
import { outputWatchOption } from '../../lib/epoch-policy/from-config.js';
import type { NetbufferOptions } from './core.js';

/** The netbuffer of `host`, the same under every runtime. */
export function netbufferOptionsFromConfig(config: RunConfig, host: string, extras: ServiceExtras = {}): NetbufferOptions {
  const s = topologyOf(config).subjects;
  return {
    vmId: config.vmId,
    host,
    subjects: s.host(host),
    outSubject: s.wireOut,
    // A plug that pushes back never drops what its guest's NIC let in; only what the NIC cannot see (a lapsed permit
    // holds an epoch past its commit, a repeat on the bus) could pass the limit, and twice it is the hard bound.
    heldBytesMax: config.buffers.plugFull === 'backpressure' ? 2 * config.buffers.heldBytesMax : config.buffers.heldBytesMax,
    statusIntervalUs: msToUs(statusIntervalMs(config.failover)),
    holdData: !isSpeculative(config.mode),
    tracing: tracingOptionsFromConfig(config),
    ...outputWatchOption(config, host),
    ...(extras.plantedBug === 'release-before-commit' ? { plantedReleaseBeforeCommit: true } : {}),
    ...(extras.plantedBug === 'ignore-permit-expiry' ? { plantedIgnorePermitExpiry: true } : {}),
  };
}
