export { NetbufferCore, type NetbufferOptions, type NetbufferStats } from './core.js';
export { netbufferOptionsFromConfig } from './options-from-config.js';
