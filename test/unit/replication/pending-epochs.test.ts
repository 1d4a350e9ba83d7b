import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeChunks, makeManifest } from '../../../lib/checkpoint/chunks.js';
import { epochBytesMax, stagedBytesMax } from '../../../lib/checkpoint/staging-bound.js';
import { ChunkSource, type CheckpointAck, type CheckpointChunk } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { runConfigSchema } from '../../../lib/config/run-config.js';
import { guestOptionsFromConfig } from '../../../services/guest/options-from-config.js';
import { PendingEpochs } from '../../../services/guest/pending-epochs.js';
import { StandbyImage } from '../../../services/guest/standby.js';
import { sentOn, VM } from './support.js';

const s = subjects(VM);
const TERM = 1;
/** Bytes of each state chunk of the epochs below. */
const PART_BYTES = 100;

/** An epoch of `parts` state chunks of PART_BYTES, and its manifest. */
function epochOf(epoch: number, parts: number): { chunks: CheckpointChunk[]; manifest: CheckpointChunk } {
  const header = { vmId: VM, term: TERM, epoch };
  const pieces = Array.from({ length: parts }, (_, i) => new Uint8Array(PART_BYTES).fill((epoch * 16 + i) & 0xff));
  const chunks = makeChunks(header, ChunkSource.STATE, { pieces });
  return { chunks, manifest: makeManifest(header, chunks) };
}

const staged = (p: PendingEpochs, epoch: number, chunk: CheckpointChunk) => {
  expect(chunk.epoch).toBe(epoch);
  return p.stage(chunk, 0);
};

describe('PendingEpochs: a byte bound on what a backup stages', () => {
  it('counts the bytes of chunks and manifests, and a part staged again replaces the one it held', () => {
    const p = new PendingEpochs(4, 10_000);
    const { chunks, manifest } = epochOf(1, 3);
    for (const c of chunks) expect(staged(p, 1, c)).toEqual({ staged: true, replaced: false, evictedChunks: 0 });
    expect(staged(p, 1, manifest)).toEqual({ staged: true, replaced: false, evictedChunks: 0 });
    const total = 3 * PART_BYTES + manifest.data.length;
    expect(p.bytes).toBe(total);
    expect(staged(p, 1, chunks[0]!)).toEqual({ staged: true, replaced: true, evictedChunks: 0 });
    expect(p.bytes).toBe(total);
    p.delete(1);
    expect(p.bytes).toBe(0);
    expect(p.size).toBe(0);
  });

  it('makes room for an earlier epoch by dropping later ones, the latest first, and never an earlier one', () => {
    const p = new PendingEpochs(4, 4 * PART_BYTES);
    for (const c of epochOf(3, 2).chunks) staged(p, 3, c);
    for (const c of epochOf(4, 2).chunks) staged(p, 4, c);
    expect(p.bytes).toBe(4 * PART_BYTES);
    const one = epochOf(1, 3).chunks;
    // Epoch 1 needs room: epoch 4 goes, epoch 3 stays while there is room beside it.
    expect(staged(p, 1, one[0]!)).toEqual({ staged: true, replaced: false, evictedChunks: 2 });
    expect(p.epochs().sort()).toEqual([1, 3]);
    expect(staged(p, 1, one[1]!)).toEqual({ staged: true, replaced: false, evictedChunks: 0 });
    expect(staged(p, 1, one[2]!)).toEqual({ staged: true, replaced: false, evictedChunks: 2 });
    expect(p.epochs()).toEqual([1]);
    expect(p.bytes).toBe(3 * PART_BYTES);
  });

  it('refuses a part of a later epoch at the bound, and one of the earliest that the bound cannot hold', () => {
    const p = new PendingEpochs(4, 2 * PART_BYTES);
    const one = epochOf(1, 3).chunks;
    staged(p, 1, one[0]!);
    staged(p, 1, one[1]!);
    expect(staged(p, 2, epochOf(2, 1).chunks[0]!)).toEqual({ staged: false });
    expect(staged(p, 1, one[2]!)).toEqual({ staged: false });
    expect(p.bytes).toBe(2 * PART_BYTES);
  });

  it('holds any sequence of parts within its bound, with its bytes the sum of what it holds', () => {
    const op = fc.record({ epoch: fc.integer({ min: 1, max: 6 }), index: fc.integer({ min: 0, max: 3 }), drop: fc.boolean() });
    fc.assert(
      fc.property(fc.integer({ min: PART_BYTES, max: 20 * PART_BYTES }), fc.array(op, { maxLength: 60 }), (bytesMax, ops) => {
        const p = new PendingEpochs(6, bytesMax);
        const parts = new Map<number, CheckpointChunk[]>();
        for (const { epoch, index, drop } of ops) {
          if (drop) {
            p.delete(epoch);
            continue;
          }
          if (!parts.has(epoch)) parts.set(epoch, epochOf(epoch, 4).chunks);
          const result = staged(p, epoch, parts.get(epoch)![index]!);
          // A refused part leaves no empty epoch behind.
          if (!result.staged) expect(p.get(epoch)?.chunks.size ?? 1).toBeGreaterThan(0);
          expect(p.bytes).toBeLessThanOrEqual(bytesMax);
          const held = p.epochs().reduce((n, e) => n + [...p.get(e)!.chunks.values()].reduce((m, c) => m + c.data.length, 0), 0);
          expect(p.bytes).toBe(held);
        }
      }),
    );
  });
});

describe('StandbyImage at its byte bound (stagedBytesMax)', () => {
  const acks = (effects: ReturnType<StandbyImage['onChunk']>) => sentOn(effects, s.ckptAck) as CheckpointAck[];
  const standby = (bytesMax: number) => new StandbyImage({ vmId: VM, ckptAckSubject: s.ckptAck, term: TERM, memoryBytes: 64 * 1024, specBufferBytes: 64 * 1024, maxPendingEpochs: 4, stagedBytesMax: bytesMax, recordDigests: false, host: 'host-b' });

  it('drops a later epoch for the one it applies next, counts it, and applies it once the primary sends it again', () => {
    const one = epochOf(1, 3);
    const two = epochOf(2, 3);
    const b = standby(4 * PART_BYTES + 2 * one.manifest.data.length);
    for (const c of [...two.chunks, two.manifest]) expect(b.onChunk(c, 0)).toEqual([]);
    for (const c of one.chunks) b.onChunk(c, 0);
    expect(b.stats.stagingEvictedChunks).toBeGreaterThan(0);
    expect(acks(b.onChunk(one.manifest, 0))).toMatchObject([{ epoch: 1, ok: true }]);
    expect(b.stats.appliedEpoch).toBe(1);
    // Epoch 2's parts were dropped: the primary's manifest, sent again when no acknowledgement came, finds chunks missing, and its resend completes it.
    expect(b.onChunk(two.manifest, 0)).toEqual([]);
    expect(acks(b.onChunk(two.manifest, 0))).toMatchObject([{ epoch: 2, ok: false }]);
    const applied = two.chunks.flatMap((c) => acks(b.onChunk(c, 0)));
    expect(applied).toMatchObject([{ epoch: 2, ok: true }]);
    expect(b.stats.appliedEpoch).toBe(2);
  });

  it('refuses a part of a later epoch while the next one fills the bound, and takes it once that one applied', () => {
    const one = epochOf(1, 3);
    const two = epochOf(2, 1);
    const b = standby(3 * PART_BYTES + one.manifest.data.length);
    for (const c of one.chunks) b.onChunk(c, 0);
    expect(b.onChunk(two.chunks[0]!, 0)).toEqual([]);
    expect(b.stats.stagingFullDrops).toBe(1);
    expect(b.pendingEpochs).toBe(1);
    expect(acks(b.onChunk(one.manifest, 0))).toMatchObject([{ epoch: 1, ok: true }]);
    expect(acks([...b.onChunk(two.chunks[0]!, 0), ...b.onChunk(two.manifest, 0)])).toMatchObject([{ epoch: 2, ok: true }]);
    expect(b.stats.stagingFullDrops).toBe(1);
  });
});

describe('the byte bound of a backup comes from its configuration', () => {
  it('holds a whole checkpoint of every pending epoch: every page as a raw record, each connection’s speculative buffer and state', () => {
    const config = runConfigSchema.parse({ mode: 'spec' });
    const pending = config.checkpoint.maxInflightEpochs + 1;
    const bound = guestOptionsFromConfig(config, config.hosts.backup).supervision!.stagedBytesMax;
    const inputs = { memoryBytes: config.guest.memoryBytes, connections: 1, specBufferBytes: config.buffers.specBufferBytes, chunkBytes: config.checkpoint.chunkBytes };
    expect(bound).toBe(stagedBytesMax({ ...inputs, maxPendingEpochs: pending }));
    expect(epochBytesMax(inputs)).toBeGreaterThan(config.guest.memoryBytes + config.buffers.specBufferBytes);
    expect(epochBytesMax(inputs)).toBeLessThan(1.1 * (config.guest.memoryBytes + config.buffers.specBufferBytes));
    // Two connections, more room: each brings a buffer.
    const mixed = runConfigSchema.parse({ mode: 'spec', workload: { kind: 'mixed' } });
    expect(guestOptionsFromConfig(mixed, mixed.hosts.backup).supervision!.stagedBytesMax).toBeGreaterThan(bound + pending * mixed.buffers.specBufferBytes);
  });
});
