export { AckerCore, type AckerOptions, type AckerStats } from './core.js';
export { ackerOptionsFromConfig } from './options-from-config.js';
