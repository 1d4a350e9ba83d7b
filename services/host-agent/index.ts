export { HostAgentCore, type HostAgentOptions, type HostAgentStats } from './core.js';
export { hostAgentMachine, type HostAgentEvent, type HostAgentState } from './host-agent.machine.js';
export { hostAgentOptionsFromConfig } from './options-from-config.js';
