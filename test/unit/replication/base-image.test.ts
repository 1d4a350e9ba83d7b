import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeManifest } from '../../../lib/checkpoint/chunks.js';
import { stagedBytesMax } from '../../../lib/checkpoint/staging-bound.js';
import { bytesEqual } from '../../../lib/checkpoint/hash.js';
import type { CheckpointAck, CheckpointChunk } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { PAGE_BYTES, PagedMemory } from '../../../lib/memory/paged-memory.js';
import { CheckpointCapture } from '../../../services/guest/checkpoint-capture.js';
import { StandbyImage, type StandbyOptions } from '../../../services/guest/standby.js';
import { sentOn, VM } from './support.js';

const s = subjects(VM);
const PAGES = 32;
const MEMORY_BYTES = PAGES * PAGE_BYTES;

/** The term of the primary that ships the checkpoints. */
const TERM = 1;

const standby = (overrides: Partial<StandbyOptions> = {}) => new StandbyImage({ vmId: VM, ckptAckSubject: s.ckptAck, term: TERM, memoryBytes: MEMORY_BYTES, specBufferBytes: 64 * 1024, maxPendingEpochs: 4, stagedBytesMax: stagedBytesMax({ maxPendingEpochs: 4, memoryBytes: MEMORY_BYTES, connections: 1, specBufferBytes: 64 * 1024, chunkBytes: 64 * 1024 }), recordDigests: false, host: 'host-c', ...overrides });
const joiningBackup = () => standby({ joining: true });

/** The checkpoint of `epoch` as the primary ships it: the guest's chunks and a manifest (flagged on the base epoch, naming its join). */
function ship(capture: CheckpointCapture, epoch: number, base: boolean, joinSeq = 0): CheckpointChunk[] {
  const chunks = capture.capture(TERM, epoch, new TextEncoder().encode(`state ${epoch}`));
  return [...chunks, makeManifest({ vmId: VM, term: TERM, epoch }, chunks, { base, joinSeq })];
}

const feed = (b: StandbyImage, chunks: readonly CheckpointChunk[]) => chunks.flatMap((c) => sentOn(b.onChunk(c, 0), s.ckptAck) as CheckpointAck[]);

/** A backup that started with its guest, with epoch 1 applied (page 0 written). */
function afterFirstEpoch() {
  const memory = new PagedMemory(MEMORY_BYTES);
  memory.write(0, new Uint8Array(8).fill(7));
  const capture = new CheckpointCapture(memory, { vmId: VM, chunkBytes: 3 * PAGE_BYTES, pageDelta: true, seedPagesPerEpoch: PAGES, recordDigests: false });
  const b = standby({ host: 'host-b' });
  expect(feed(b, ship(capture, 1, false)).map((a) => a.ok)).toEqual([true]);
  return { memory, capture, b };
}

describe('base image for a joining backup', () => {
  it('reaches an exact copy of memory within ceil(pages / seed pages per epoch) epochs, whatever the guest writes meanwhile', () => {
    const write = fc.record({ page: fc.integer({ min: 0, max: PAGES - 1 }), offset: fc.integer({ min: 0, max: PAGE_BYTES - 8 }), value: fc.integer({ min: 1, max: 255 }) });
    fc.assert(
      fc.property(
        fc.array(fc.array(write, { maxLength: 6 }), { minLength: 12, maxLength: 12 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 12 }),
        fc.boolean(),
        (epochs, baseEpoch, seedPagesPerEpoch, pageDelta) => {
          const memory = new PagedMemory(MEMORY_BYTES);
          const capture = new CheckpointCapture(memory, { vmId: VM, chunkBytes: 3 * PAGE_BYTES, pageDelta, seedPagesPerEpoch, recordDigests: false });
          const b = joiningBackup();
          const neededEpochs = Math.ceil(PAGES / seedPagesPerEpoch);
          for (let i = 0; i < epochs.length; i++) {
            const epoch = i + 1;
            for (const w of epochs[i]!) memory.write(w.page * PAGE_BYTES + w.offset, new Uint8Array(8).fill(w.value));
            if (epoch === baseEpoch) capture.startBase();
            const chunks = ship(capture, epoch, epoch === baseEpoch);
            // Before its base epoch the backup is not there yet: the primary sends it nothing.
            if (epoch < baseEpoch) continue;
            const acks = feed(b, chunks);
            expect(acks.map((a) => `${a.epoch}:${a.ok}`)).toEqual([`${epoch}:true`]);
            expect(b.stats.appliedEpoch).toBe(epoch);
            if (epoch >= baseEpoch + neededEpochs - 1) {
              expect(b.synced, `synced after epoch ${epoch}`).toBe(true);
              expect(bytesEqual(b.image.bytes, memory.bytes)).toBe(true);
            }
            // Synced exactly when no page is owed any more, never earlier.
            expect(b.synced).toBe(capture.seedPagesOwed === 0);
          }
          expect(b.stats.baseEpoch).toBe(baseEpoch);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('keeps the base epoch parts that arrive before its manifest, and ignores epochs before it', () => {
    const memory = new PagedMemory(MEMORY_BYTES);
    memory.write(5 * PAGE_BYTES, new Uint8Array(64).fill(7));
    const capture = new CheckpointCapture(memory, { vmId: VM, chunkBytes: 3 * PAGE_BYTES, pageDelta: true, seedPagesPerEpoch: PAGES, recordDigests: false });
    const b = joiningBackup();
    const before = ship(capture, 3, false);
    // A stray checkpoint of an earlier epoch: never applied; NACKed as needing a base, which its primary ignores (it is before the base).
    expect(feed(b, before)).toEqual([expect.objectContaining({ epoch: 3, ok: false, needsBase: true })]);
    capture.startBase();
    const base = ship(capture, 4, true);
    expect(feed(b, base).map((a) => a.epoch)).toEqual([4]);
    expect(b.synced).toBe(true);
    expect(b.stats.appliedEpoch).toBe(4);
    expect(bytesEqual(b.image.bytes, memory.bytes)).toBe(true);
    // A resend of the base epoch (its acknowledgement was lost) is acknowledged again, not re-applied.
    expect(feed(b, base).map((a) => `${a.epoch}:${a.ok}`)).toEqual(['4:true']);
    expect(b.stats.duplicates).toBe(base.length);
  });

  it('NACKs a whole epoch that comes while it waits for its base, as needing one: its join came after the base, which an image of this host now gone took (vopr seed 2326)', () => {
    const memory = new PagedMemory(MEMORY_BYTES);
    const capture = new CheckpointCapture(memory, { vmId: VM, chunkBytes: 3 * PAGE_BYTES, pageDelta: true, seedPagesPerEpoch: PAGES, recordDigests: false });
    capture.startBase();
    ship(capture, 6, true); // taken by the image this host had before its joining assignment came
    memory.write(3 * PAGE_BYTES, new Uint8Array(64).fill(4));
    const b = joiningBackup();
    const acks = feed(b, ship(capture, 7, false));
    expect(acks).toEqual([expect.objectContaining({ epoch: 7, ok: false, needsBase: true })]);
    expect(b.stats.baseNeededNacks).toBe(1);
    expect(b.synced).toBe(false);
  });

  it('drops the base of an earlier join of its host, late on the link, with its parts, and takes its own join\'s base (vopr seed 92265)', () => {
    const memory = new PagedMemory(MEMORY_BYTES);
    const capture = new CheckpointCapture(memory, { vmId: VM, chunkBytes: 3 * PAGE_BYTES, pageDelta: true, seedPagesPerEpoch: PAGES, recordDigests: false });
    // Join 3 stalled and was given up with its base and the epoch after it still on the link; the primary then
    // committed epochs 8 and 9 alone, and this host joined again as join 5.
    capture.startBase();
    const earlierBase = ship(capture, 6, true, 3);
    memory.write(2 * PAGE_BYTES, new Uint8Array(64).fill(2));
    const earlierNext = ship(capture, 7, false);
    const b = standby({ joining: true, joinSeq: 5 });
    expect(feed(b, earlierBase)).toEqual([]);
    expect(feed(b, earlierNext)).toEqual([expect.objectContaining({ epoch: 7, ok: false, needsBase: true })]);
    expect([b.stats.earlierJoinBases, b.stats.appliedEpoch, b.synced, b.pendingEpochs]).toEqual([1, 0, false, 1]);
    // Output of 8 and 9 left with no backup: only the base after them makes an image that may be promoted.
    memory.write(4 * PAGE_BYTES, new Uint8Array(64).fill(8));
    capture.capture(TERM, 8, new Uint8Array(0));
    capture.capture(TERM, 9, new Uint8Array(0));
    memory.write(6 * PAGE_BYTES, new Uint8Array(64).fill(10));
    capture.startBase();
    expect(feed(b, ship(capture, 10, true, 5)).map((a) => `${a.epoch}:${a.ok}`)).toEqual(['10:true']);
    expect([b.stats.baseEpoch, b.stats.appliedEpoch, b.synced, b.pendingEpochs, bytesEqual(b.image.bytes, memory.bytes)]).toEqual([10, 10, true, 0, true]);
  });

  it('takes the base of a later join than its assignment names (the assignment is slower than the checkpoint), and any base when it names none', () => {
    const memory = new PagedMemory(MEMORY_BYTES);
    memory.write(PAGE_BYTES, new Uint8Array(64).fill(1));
    const capture = new CheckpointCapture(memory, { vmId: VM, chunkBytes: 3 * PAGE_BYTES, pageDelta: true, seedPagesPerEpoch: PAGES, recordDigests: false });
    capture.startBase();
    const base = ship(capture, 4, true, 6);
    for (const b of [standby({ joining: true, joinSeq: 5 }), joiningBackup()]) {
      expect(feed(b, base).map((a) => `${a.epoch}:${a.ok}`)).toEqual(['4:true']);
      expect([b.stats.earlierJoinBases, b.synced, bytesEqual(b.image.bytes, memory.bytes)]).toEqual([0, true, true]);
    }
  });

  it('a backup that starts with its guest is synced from the start; a joining one is not until its base', () => {
    expect(standby({ host: 'host-b' }).synced).toBe(true);
    const b = joiningBackup();
    expect(b.synced).toBe(false);
    expect(b.missingPages).toBe(PAGES);
  });

  it('starts over from a base manifest only once its checksum holds: a corrupt one wipes nothing, and the next epoch is not taken for applied', () => {
    const { memory, capture, b } = afterFirstEpoch();
    // A base manifest far ahead whose data does not match its checksum (corrupt on the way, or forged).
    const bad = makeManifest({ vmId: VM, term: TERM, epoch: 1_000_000 }, [], { base: true });
    const acks = feed(b, [{ ...bad, data: Uint8Array.of(1, 2, 3) }]);
    expect(acks).toEqual([expect.objectContaining({ epoch: 1_000_000, ok: false })]);
    expect(b.stats.hashMismatches).toBe(1);
    expect([b.stats.appliedEpoch, b.synced, bytesEqual(b.image.bytes, memory.bytes)]).toEqual([1, true, true]);
    // Epoch 2 is applied as epoch 2, not answered as a duplicate of an image that was wiped.
    memory.write(PAGE_BYTES, new Uint8Array(8).fill(9));
    expect(feed(b, ship(capture, 2, false)).map((a) => a.ok)).toEqual([true]);
    expect([b.stats.appliedEpoch, b.stats.duplicates, bytesEqual(b.image.bytes, memory.bytes)]).toEqual([2, 0, true]);
  });

  it('refuses a manifest whose base flag flipped on the way: the header is checksummed with the data', () => {
    const { memory, capture, b } = afterFirstEpoch();
    memory.write(PAGE_BYTES, new Uint8Array(8).fill(9));
    const epoch2 = ship(capture, 2, false);
    const manifest = epoch2.at(-1)!;
    // As a base, this epoch's delta on an emptied image would lose page 0.
    const acks = feed(b, [...epoch2.slice(0, -1), { ...manifest, base: true }]);
    expect(acks).toEqual([expect.objectContaining({ epoch: 2, ok: false })]);
    expect(b.stats.hashMismatches).toBe(1);
    expect([b.stats.appliedEpoch, bytesEqual(b.image.bytes.subarray(0, 8), new Uint8Array(8).fill(7))]).toEqual([1, true]);
    // The primary's resend, intact, applies.
    expect(feed(b, epoch2).map((a) => a.ok)).toEqual([true]);
    expect([b.stats.appliedEpoch, bytesEqual(b.image.bytes, memory.bytes)]).toEqual([2, true]);
  });
});
