export { AckerCore, type AckerOptions, type AckerStats } from './core.js';
export { encodeSpecDelta, decodeSpecDelta, type SpecDelta, type AckerConnectionState } from './spec-delta.js';
