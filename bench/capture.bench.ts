import { runConfigSchema } from '../lib/config/run-config.js';
import { PAGE_BYTES, PagedMemory } from '../lib/memory/paged-memory.js';
import { Rng } from '../lib/rng.js';
import { CheckpointCapture } from '../services/guest/checkpoint-capture.js';
import { median, withTarget, type BenchRecord } from './measure.js';

const RUNS = 5;
/** Pages the guest dirtied before the new backup joins: a few, as when a backup is dropped soon after start. */
const DIRTY_PAGES = 256;
/**
 * The base epoch may cost at most this many seeding epochs: it owes every
 * page but sends no more than one seed step, so it must not do work in
 * proportion to the memory. (On 2 cores shared by 16 service processes one
 * input takes 10–20× its quiet time, and a host agent takes a guest silent
 * for 3 s for dead: a 240 ms base epoch was 5 s there.)
 */
const MAX_BASE_OVER_SEED = 1.5;

/**
 * The guest's longest input when a new backup joins: the base barrier (every
 * page owed, deltas against an empty shadow) and the first seeding epoch,
 * for the default 64 MiB guest and seed step. Each run starts from a guest
 * whose shadow is cold (untouched memory), as after start-up.
 */
export function baseCaptureCost(): BenchRecord {
  const config = runConfigSchema.parse({ mode: 'spec' });
  const seedPagesPerEpoch = Math.floor(config.checkpoint.seedBytesPerEpoch / PAGE_BYTES);
  const options = { vmId: 'vm1', chunkBytes: config.checkpoint.chunkBytes, pageDelta: true, seedPagesPerEpoch, recordDigests: false };
  const rng = new Rng(1);
  const page = new Uint8Array(PAGE_BYTES);
  const baseMs: number[] = [];
  const seedEpochMs: number[] = [];
  let seeded = 0;
  // One warm-up run (JIT), then RUNS measured ones.
  for (let run = 0; run <= RUNS; run++) {
    const memory = new PagedMemory(config.guest.memoryBytes);
    const capture = new CheckpointCapture(memory, options);
    const epoch = (n: number) => {
      for (let i = 0; i < DIRTY_PAGES; i++) {
        for (let b = 0; b < PAGE_BYTES; b += 4) page[b] = rng.int(256);
        memory.write(rng.int(memory.pageCount) * PAGE_BYTES, page);
      }
      const t0 = performance.now();
      capture.capture(1, n, new Uint8Array(64));
      return performance.now() - t0;
    };
    epoch(1);
    const t0 = performance.now();
    capture.startBase();
    const base = performance.now() - t0 + epoch(2);
    const seed = epoch(3);
    seeded = capture.stats.seedPagesSent;
    if (run === 0) continue;
    baseMs.push(base);
    seedEpochMs.push(seed);
  }
  return withTarget(
    {
      name: 'guest.base-capture-64mib',
      // The ratio from the medians as measured, the figures shown to 0.1 ms.
      metrics: { baseEpochMs: Number(median(baseMs).toFixed(1)), seedEpochMs: Number(median(seedEpochMs).toFixed(1)), baseOverSeed: Number((median(baseMs) / median(seedEpochMs)).toFixed(2)), seedPagesPerEpoch, seedPagesSent: seeded },
    },
    'baseOverSeed',
    '<=',
    MAX_BASE_OVER_SEED,
  );
}
