import { randomBytes } from 'node:crypto';
import { checksum } from '../lib/checkpoint/checksum.js';
import { runConfigSchema } from '../lib/config/run-config.js';
import { recycling } from '../lib/memory/backing.js';
import { simulate } from '../sim/run.js';
import { medianWallMs, withTarget, type BenchRecord } from './measure.js';

/**
 * Simulator speed on a 10 s, 1 Gbit/s native bulk run (target: 1.25 s wall on
 * one core, 8 simulated seconds a second). Runs recycle their memories, as a
 * sweep's or vopr's worker runs them: the first touch of fresh guest memory
 * (page faults, tens of µs each on this VM) is paid once per worker, like the
 * JIT's warm-up, which the untimed first run also absorbs.
 */
export function simulatorSpeed(): BenchRecord {
  const config = runConfigSchema.parse({ durationS: 10, link: { bandwidthBitsPerSec: 1e9, rttMs: 1 } });
  const { medianMs, minMs, maxMs, last } = medianWallMs(3, () => recycling(() => simulate(config)));
  return withTarget(
    {
      name: 'sim.native-bulk-1gbit-10s',
      metrics: {
        wallMs: Math.round(medianMs),
        wallMsMin: Math.round(minMs),
        wallMsMax: Math.round(maxMs),
        simEvents: last.simEvents,
        simEventsPerWallSec: Math.round(last.simEvents / (medianMs / 1000)),
        simSecondsPerWallSec: Number((config.durationS / (medianMs / 1000)).toFixed(2)),
        goodputBitsPerSec: last.goodputBitsPerSec,
      },
    },
    'wallMs',
    '<=',
    1250,
  );
}

/** Chunk checksum throughput of this machine over checkpoint-sized chunks (256 KiB), bytes per wall ms. */
function checksumBytesPerMs(): number {
  const chunk = randomBytes(256 * 1024);
  const rounds = 256; // 64 MiB
  checksum(chunk); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < rounds; i++) checksum(chunk);
  return (rounds * chunk.length) / (performance.now() - t0);
}

/**
 * The heaviest mode: speculative buffer, checkpoints with checksums and page
 * deltas, 10 s at 1 Gbit/s and 25 ms epochs (target: 3 simulated seconds a
 * second). `checksumFloorMs` is the wall time the integrity check alone needs
 * on this machine: every checkpoint byte is checksummed by the primary and
 * again by the backup; no speed-up of the rest beats it.
 */
export function speculativeSimulatorSpeed(): BenchRecord {
  const config = runConfigSchema.parse({ mode: 'spec', epochMs: 25, durationS: 10, link: { bandwidthBitsPerSec: 1e9, rttMs: 1 } });
  // Three timed runs, as for native: one run of this mode varied by a quarter between runs on a noisy virtual machine.
  const { medianMs, minMs, maxMs, last } = medianWallMs(3, () => recycling(() => simulate(config)));
  const checksumFloorMs = (2 * last.checkpointBytesTotal) / checksumBytesPerMs();
  return withTarget(
    {
      name: 'sim.spec-bulk-1gbit-10s',
      metrics: {
        wallMs: Math.round(medianMs),
        wallMsMin: Math.round(minMs),
        wallMsMax: Math.round(maxMs),
        simEvents: last.simEvents,
        simSecondsPerWallSec: Number((config.durationS / (medianMs / 1000)).toFixed(2)),
        checkpointMBPerWallSec: Number((last.checkpointBytesTotal / 1e6 / (medianMs / 1000)).toFixed(1)),
        checksumFloorMs: Math.round(checksumFloorMs),
        checksumFloorSimSecondsPerWallSec: Number((config.durationS / (checksumFloorMs / 1000)).toFixed(2)),
        goodputBitsPerSec: last.goodputBitsPerSec,
      },
    },
    'simSecondsPerWallSec',
    '>=',
    3,
  );
}
