export * from './run-config.js';
export { parseConfig } from './parse.js';
export { hostNameSchema, hostsConfigSchema, type HostsConfig } from './hosts-config.js';
