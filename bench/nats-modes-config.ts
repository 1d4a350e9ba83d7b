import { runConfigSchema, type Mode, type RunConfig } from '../lib/config/run-config.js';

/**
 * A 2 MiB speculative buffer: eight times what 100 Mbit/s puts in flight over
 * an epoch and its commit. The default 16 MiB (sized for 1 Gbit/s and 200 ms
 * epochs) lets a RACC guest fill it at once, and its first checkpoints then
 * carry 8 MB each over a bus that 16 processes share on 2 cores, which can
 * stall the primary's heartbeats past the failover deadline.
 */
const SPEC_BUFFER_BYTES = 2 * 1024 * 1024;

/**
 * The configuration of every mode over NATS against the simulator: 100
 * Mbit/s, 2 ms RTT, 25 ms epochs, 5 s of bulk. One definition for the
 * benchmark (the ratios) and the integration test (correctness), so that
 * both measure the same runs.
 */
export function natsModesConfig(mode: Mode): RunConfig {
  return runConfigSchema.parse({ mode, vmId: `modes-${mode}`, seed: 1, durationS: 5, epochMs: 25, link: { bandwidthBitsPerSec: 100e6, rttMs: 2 }, buffers: { specBufferBytes: SPEC_BUFFER_BYTES }, workload: { kind: 'bulk', totalBytes: 0 } });
}
