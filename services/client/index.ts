export { ClientCore, type ClientCoreOptions, type ClientStats } from './core.js';
