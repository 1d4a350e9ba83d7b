export { FailoverCore, type FailoverOptions, type FailoverStats } from './core.js';
export { failoverMachine, type FailoverEvent, type FailoverContext, type FailoverState } from './failover.machine.js';
export { failoverOptionsFromConfig } from './options-from-config.js';
