import { isSpeculative } from '../../lib/config/run-config.js';
import type { LinkStats } from '../../lib/link/index.js';
import { emulatedLink } from '../../lib/runtime/nats/emulated-link.js';
import { clientLinkGateBytesFor } from '../../lib/link/link-direction.js';
import type { ServiceDefinition } from '../../lib/runtime/nats/service-process.js';
import { topologyOf } from '../../lib/topology/index.js';
import { AckerCore } from './core.js';
import { ackerOptionsFromConfig } from './options-from-config.js';

/** What an acker reports: its buffer and its wire side's TCP counters over every connection it served. */
export function ackerReport(a: AckerCore, linkUp?: LinkStats): Record<string, unknown> {
  const wire = a.wireStats;
  const sum = (pick: (w: (typeof wire)[number]) => number) => wire.reduce((n, w) => n + pick(w), 0);
  return {
    role: a.role,
    term: a.term,
    specBufferBytes: a.specBufferBytes,
    retransmits: sum((w) => w.retransmits),
    fastRetransmits: sum((w) => w.fastRetransmits),
    timeouts: sum((w) => w.timeouts),
    lossProbes: sum((w) => w.lossProbes),
    slowStartExits: sum((w) => w.slowStartExits),
    slowStartExitCwndBytesTotal: sum((w) => w.slowStartExitCwndBytesTotal),
    acksAboveSndMax: sum((w) => w.acksAboveSndMax),
    localNicThrottles: a.localNicThrottles,
    staleAssignments: a.staleAssignments,
    foreignAssignments: a.foreignAssignments,
    permitsIgnored: a.permitsIgnored,
    ...(linkUp ? { linkUp } : {}),
    ...(a.outputWatchStats ? { outputWatch: a.outputWatchStats } : {}),
    ...a.stats,
  };
}

/**
 * The acker of one host, behind the upstream half of the client link (it
 * takes the client's segments while primary, in speculative modes: in remus
 * they go to the guest).
 */
export const ackerService: ServiceDefinition = {
  name: 'acker',
  placement: 'host',
  clock: 'wall',
  leases: false,
  build(config, host) {
    const core = new AckerCore(ackerOptionsFromConfig(config, host!));
    if (!isSpeculative(config.mode)) return { core, report: () => ackerReport(core), role: () => core.role };
    const linkUp = emulatedLink(config, 'up');
    return { core, inboundLinks: [{ subject: topologyOf(config).subjects.wireIn, hop: linkUp, maxPendingBytes: clientLinkGateBytesFor(config, 'up') }], report: () => ackerReport(core, linkUp.stats), role: () => core.role };
  },
};
