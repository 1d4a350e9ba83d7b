export { ClientCore, type ClientCoreOptions, type ClientStats } from './core.js';
export { clientOptionsFromConfig, TIMELINE_BIN_US } from './options-from-config.js';
