import type { ServiceDefinition } from '../../lib/runtime/nats/service-process.js';
import { FailoverCore } from './core.js';
import { failoverOptionsFromConfig } from './options-from-config.js';

/**
 * The failover service of a VM: leases in JetStream KV, wall-clock time
 * (lease expiries are compared with other hosts' wall clocks).
 */
export const failoverService: ServiceDefinition = {
  name: 'failover',
  placement: 'vm',
  clock: 'wall',
  leases: true,
  build(config) {
    const core = new FailoverCore(failoverOptionsFromConfig(config));
    return { core, report: () => ({ state: core.state, recovering: core.recovering, term: core.term, primaryHost: core.primaryHost, backupHost: core.backupHost, ...core.stats }) };
  },
};
