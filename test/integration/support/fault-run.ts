import { runConfigSchema, type RunConfig } from '../../../lib/config/run-config.js';

/**
 * A spec-mode bulk transfer over NATS with a fault in its middle: 8 s at
 * 100 Mbit/s and 2 ms RTT, 25 ms epochs, and a 16 MiB guest, whose whole
 * image crosses the bus to the spare at the re-protection that follows the
 * fault while 16 processes share 2 cores (a 64 MiB one took from 2.5 s to
 * more than 5 s on a machine whose cores its host shares).
 */
export function faultRunConfig(vmId: string, faults: { crashPrimaryAtMs?: number } = {}): RunConfig {
  return runConfigSchema.parse({
    mode: 'spec',
    vmId,
    seed: 1,
    durationS: 8,
    guest: { memoryBytes: 16 * 1024 * 1024 },
    epochMs: 25,
    link: { bandwidthBitsPerSec: 100e6, rttMs: 2 },
    workload: { kind: 'bulk', totalBytes: 0 },
    faults,
  });
}
