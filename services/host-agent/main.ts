import type { ServiceDefinition } from '../../lib/runtime/nats/service-process.js';
import { HostAgentCore } from './core.js';
import { hostAgentOptionsFromConfig } from './options-from-config.js';

/** The agent of one host: its leases in JetStream KV, its time the wall clock (permits are compared by other processes of the host). */
export const hostAgentService: ServiceDefinition = {
  name: 'host-agent',
  placement: 'host',
  clock: 'wall',
  leases: true,
  build(config, host) {
    const core = new HostAgentCore(hostAgentOptionsFromConfig(config, host!));
    return { core, report: () => ({ state: core.state, role: core.role, term: core.term, permitUntilUs: core.permitUntilUs, ...core.stats }) };
  },
};
