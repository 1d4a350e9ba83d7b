import { statusIntervalMs } from '../../lib/config/failover-config.js';
import type { RunConfig } from '../../lib/config/run-config.js';
import type { ServiceExtras } from '../../lib/planted-bugs.js';
import { initialRoleOf, topologyOf } from '../../lib/topology/index.js';
import { msToUs } from '../../lib/units.js';
import type { HostAgentOptions } from './core.js';

/** The agent of `host`, the same under every runtime. */
export function hostAgentOptionsFromConfig(config: RunConfig, host: string, extras: ServiceExtras = {}): HostAgentOptions {
  const t = topologyOf(config);
  const f = config.failover;
  const initial = initialRoleOf(t, host);
  const bug = extras.plantedBug;
  return {
    vmId: config.vmId,
    host,
    subjects: t.subjects,
    heartbeatIntervalUs: msToUs(f.heartbeatIntervalMs),
    leaseDurationUs: msToUs(f.leaseDurationMs),
    permitMarginUs: msToUs(f.leaseSafetyMs + f.clockSkewMs),
    // Services report every heartbeat interval; a bus loses a few in a row at times (a slow consumer, a burst of
    // loss), which must not read as a dead service. A restart is seen at once anyway, by its new incarnation.
    serviceSilenceUs: msToUs(f.serviceMissCount * statusIntervalMs(f)),
    serviceStartupUs: msToUs(f.serviceStartupMs),
    initialRole: initial.role,
    initialPeerHost: initial.peerHost,
    ...(bug === 'no-fencing' || bug === 'stale-term-accepted' ? { plantedBug: bug } : {}),
  };
}
