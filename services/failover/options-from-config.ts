import type { RunConfig } from '../../lib/config/run-config.js';
import { assertLeaseKey } from '../../lib/lease/types.js';
import { topologyOf } from '../../lib/topology/index.js';
import { msToUs } from '../../lib/units.js';
import type { FailoverOptions } from './core.js';

/** The failover service of the VM, the same under every runtime, first start or restart (the core tells them apart). */
export function failoverOptionsFromConfig(config: RunConfig): FailoverOptions {
  assertLeaseKey(config.vmId);
  const t = topologyOf(config);
  const f = config.failover;
  return {
    vmId: config.vmId,
    subjects: t.subjects,
    primaryHost: t.primaryHost,
    backupHost: t.backupHost,
    spareHosts: t.spareHosts,
    heartbeatIntervalUs: msToUs(f.heartbeatIntervalMs),
    missCount: f.missCount,
    leaseDurationUs: msToUs(f.leaseDurationMs),
    clockSkewUs: msToUs(f.clockSkewMs),
    startupGraceUs: msToUs(f.serviceStartupMs),
    joinStallUs: msToUs(f.joinStallMs),
  };
}
