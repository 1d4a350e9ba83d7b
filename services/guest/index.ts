export { GuestCore, type GuestCoreOptions, type GuestStats } from './core.js';
export * from './workload/workload.js';
export { ByteGenerator, StreamVerifier } from './workload/byte-generator.js';
