export * from './run-config.js';
export { parseConfig } from './parse.js';
