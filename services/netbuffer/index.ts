export { NetbufferCore, type NetbufferOptions, type NetbufferStats } from './core.js';
