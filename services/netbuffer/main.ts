import type { ServiceDefinition } from '../../lib/runtime/nats/service-process.js';
import { NetbufferCore } from './core.js';
import { netbufferOptionsFromConfig } from './options-from-config.js';

/** The netbuffer of one host. */
export const netbufferService: ServiceDefinition = {
  name: 'netbuffer',
  placement: 'host',
  clock: 'wall',
  leases: false,
  build(config, host) {
    const core = new NetbufferCore(netbufferOptionsFromConfig(config, host!));
    return { core, report: () => ({ role: core.role, term: core.term, staleAssignments: core.staleAssignments, foreignAssignments: core.foreignAssignments, permitsIgnored: core.permitsIgnored, ...(core.outputWatchStats ? { outputWatch: core.outputWatchStats } : {}), ...core.stats }), role: () => core.role };
  },
};
