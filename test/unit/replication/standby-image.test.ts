import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkOrder, makeChunks, makeManifest, maxChunksPerSource, splitBytes } from '../../../lib/checkpoint/chunks.js';
import { bytesEqual, sha256 } from '../../../lib/checkpoint/hash.js';
import { packPages } from '../../../lib/checkpoint/page-chunks.js';
import { PageShadow } from '../../../lib/checkpoint/page-shadow.js';
import { encodeSpecDeltas, type AckerConnectionState, type SpecDelta } from '../../../lib/checkpoint/spec-delta.js';
import { ChunkSource, type CheckpointAck, type CheckpointChunk } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { runConfigSchema } from '../../../lib/config/run-config.js';
import { PAGE_BYTES, PagedMemory } from '../../../lib/memory/paged-memory.js';
import type { Effect } from '../../../lib/runtime/types.js';
import { HandoverReceiver, type Handover } from '../../../services/acker/handover.js';
import { GuestCore } from '../../../services/guest/core.js';
import { guestOptionsFromConfig } from '../../../services/guest/options-from-config.js';
import { StandbyImage, type StandbyOptions } from '../../../services/guest/standby.js';
import { activate, assignment } from '../support/supervision.js';
import { message, sentOn, streamBytes, timersSet, VM } from './support.js';
import { joinRun, runLength } from '../../../lib/checkpoint/byte-run.js';
import { stagedBytesMax } from '../../../lib/checkpoint/staging-bound.js';

const v = subjects(VM);
const HOST = 'host-b';
/** The term of the primary the standby backs up. */
const TERM = 2;
const PAGES = 8;
const MEMORY_BYTES = PAGES * PAGE_BYTES;
const CHUNK_BYTES = PAGE_BYTES + 64;
/** The speculative buffer of the backup and of the acker that takes its handover. */
const SPEC_BUFFER_BYTES = 64 * 1024;

const standby = (overrides: Partial<StandbyOptions> = {}) =>
  new StandbyImage({ vmId: VM, ckptAckSubject: v.ckptAck, term: TERM, memoryBytes: MEMORY_BYTES, specBufferBytes: SPEC_BUFFER_BYTES, maxPendingEpochs: 4, stagedBytesMax: stagedBytesMax({ maxPendingEpochs: 4, memoryBytes: MEMORY_BYTES, connections: 1, specBufferBytes: SPEC_BUFFER_BYTES, chunkBytes: CHUNK_BYTES }), recordDigests: false, host: HOST, ...overrides });

/** The primary side: guest memory, the shadow of the backup's copy (for page deltas), and its checkpoints. */
class Primary {
  readonly memory: PagedMemory;
  readonly shadow: PageShadow | null;
  constructor(
    pageDelta: boolean,
    readonly term = TERM,
    memoryBytes = MEMORY_BYTES,
    /** Its checkpointer process (PrimaryOptions.incarnation): a host that restarted runs another. */
    readonly incarnation = 1,
    /** The agent that assigned that checkpointer (PrimaryOptions.agentIncarnation). */
    readonly agentIncarnation = incarnation,
  ) {
    this.memory = new PagedMemory(memoryBytes);
    this.shadow = pageDelta ? new PageShadow(memoryBytes) : null;
  }

  /** The chunks of `epoch` in transfer order and the manifest, as the primary checkpointer sends them. */
  checkpoint(epoch: number, state: Uint8Array, spec: SpecDelta | null, base: { joinSeq: number } | null = null): { chunks: CheckpointChunk[]; manifest: CheckpointChunk } {
    const header = { vmId: VM, term: this.term, epoch };
    const packed = packPages(this.memory, this.shadow, this.memory.takeDirtyPages(), CHUNK_BYTES);
    const chunks = [
      ...makeChunks(header, ChunkSource.PAGES, { pieces: packed.pieces, rawBytes: packed.rawBytes }),
      ...makeChunks(header, ChunkSource.STATE, { pieces: splitBytes(state, 100) }),
      ...(spec === null ? [] : makeChunks(header, ChunkSource.SPEC, { pieces: splitBytes(encodeSpecDeltas([spec]), 128) })),
    ].sort(chunkOrder);
    return { chunks, manifest: makeManifest(header, chunks, { base: base !== null, joinSeq: base?.joinSeq ?? 0, primaryIncarnation: this.incarnation, primaryAgentIncarnation: this.agentIncarnation }) };
  }
}

const acks = (effects: Effect[]) => sentOn(effects, v.ckptAck) as CheckpointAck[];
/** Connection `connId`'s speculative buffer on the backup, and the acker's state of it. */
const specOf = (b: StandbyImage, connId = 2) => b.specs.get(connId)?.buffer ?? null;
const connectionOf = (b: StandbyImage, connId = 2) => b.specs.get(connId)?.connection ?? null;
/** A connection for deltas whose connection state does not matter. */
const ANY_CONNECTION: AckerConnectionState = { connId: 2, clientWscale: null, clientSynWindow: 65535, guestOfferedWscale: false, clientNxt: 1, guestHeader: null };
const feed = (b: StandbyImage, chunks: readonly CheckpointChunk[]) => chunks.flatMap((c) => b.onChunk(c, 0));
const fill = (mem: PagedMemory, addr: number, len: number, value: number) => mem.write(addr, new Uint8Array(len).fill(value));
const stateOf = (epoch: number) => new TextEncoder().encode(`guest state of epoch ${epoch} `.repeat(20));

function epochOne() {
  const p = new Primary(false);
  fill(p.memory, 0, 100, 1);
  fill(p.memory, 3 * PAGE_BYTES + 10, PAGE_BYTES, 2); // spans pages 3 and 4
  return { p, ...p.checkpoint(1, stateOf(1), null) };
}

/** Feeds `chunks` to a HandoverReceiver of `term`: the handover it takes once the last one arrived, never before. */
function receive(term: number, chunks: readonly CheckpointChunk[]): { handover: Handover; receiver: HandoverReceiver } {
  const receiver = new HandoverReceiver(term, SPEC_BUFFER_BYTES, { handoverStaleTermChunks: 0, handoversCorrupt: 0 });
  let taken: Handover | null = null;
  chunks.forEach((c, i) => {
    taken = receiver.add(c);
    if (i < chunks.length - 1) expect(taken).toBeNull();
  });
  expect(taken).not.toBeNull();
  return { handover: taken!, receiver };
}

describe('StandbyImage', () => {
  it('applies an epoch only when every chunk its manifest lists has arrived', () => {
    const b = standby();
    const { p, chunks, manifest } = epochOne();
    expect(chunks.length).toBeGreaterThan(3);
    expect(feed(b, [...chunks.slice(0, -1), manifest])).toEqual([]);
    expect(b.stats.appliedEpoch).toBe(0);
    expect(b.image.bytes.every((x) => x === 0)).toBe(true);
    const done = b.onChunk(chunks.at(-1)!, 0);
    expect(done).toEqual([{ kind: 'send', subject: v.ckptAck, msg: { type: 'checkpointAck', vmId: VM, term: TERM, epoch: 1, ok: true, reason: '', host: HOST, needsBase: false } }]);
    expect(b.stats.appliedEpoch).toBe(1);
    expect(bytesEqual(joinRun(b.image.bytes), p.memory.bytes)).toBe(true);
    expect(bytesEqual(b.stateBlob, stateOf(1))).toBe(true);
  });

  it('applies whatever the order of chunks and manifest', () => {
    const { chunks, manifest } = epochOne();
    const manifestFirst = standby();
    expect(feed(manifestFirst, [manifest, ...[...chunks].reverse()]).map((e) => e.kind)).toEqual(['send']);
    expect(manifestFirst.stats.appliedEpoch).toBe(1);
    const manifestLast = standby();
    expect(feed(manifestLast, [...chunks].reverse())).toEqual([]);
    expect(acks(manifestLast.onChunk(manifest, 0))).toMatchObject([{ epoch: 1, ok: true }]);
    const manifestMiddle = standby();
    const mid = Math.floor(chunks.length / 2);
    expect(acks(feed(manifestMiddle, [...chunks.slice(mid), manifest, ...chunks.slice(0, mid)]))).toMatchObject([{ epoch: 1, ok: true }]);
    expect(bytesEqual(joinRun(manifestFirst.image.bytes), manifestLast.image.bytes)).toBe(true);
    expect(bytesEqual(joinRun(manifestFirst.image.bytes), manifestMiddle.image.bytes)).toBe(true);
  });

  it('applies epochs in order: a complete N+1 waits for N', () => {
    const b = standby();
    const p = new Primary(true);
    fill(p.memory, 0, 10, 1);
    const e1 = p.checkpoint(1, stateOf(1), null);
    fill(p.memory, 5, 10, 2); // a delta against epoch 1's page
    const e2 = p.checkpoint(2, stateOf(2), null);
    expect(feed(b, [...e2.chunks, e2.manifest])).toEqual([]);
    expect(b.stats.appliedEpoch).toBe(0);
    const effects = feed(b, [e1.manifest, ...e1.chunks]);
    expect(acks(effects).map((a) => [a.epoch, a.ok])).toEqual([
      [1, true],
      [2, true],
    ]);
    expect(b.stats.appliedEpoch).toBe(2);
    expect(bytesEqual(joinRun(b.image.bytes), p.memory.bytes)).toBe(true);
    expect(bytesEqual(b.stateBlob, stateOf(2))).toBe(true);
  });

  it('NACKs a chunk whose data does not match its hash and applies nothing; the resend applies', () => {
    const b = standby();
    const { p, chunks, manifest } = epochOne();
    const bad = { ...chunks[0]!, data: chunks[0]!.data.slice() };
    bad.data[0]! ^= 0xff;
    const effects = feed(b, [bad, ...chunks.slice(1), manifest]);
    expect(acks(effects)).toEqual([{ type: 'checkpointAck', vmId: VM, term: TERM, epoch: 1, ok: false, reason: `chunk ${ChunkSource.PAGES}/0 checksum mismatch`, host: HOST, needsBase: false }]);
    expect(b.stats.appliedEpoch).toBe(0);
    expect(b.stats.hashMismatches).toBe(1);
    expect(b.image.bytes.every((x) => x === 0)).toBe(true);
    // The good rest of the first transmission was kept: the resent first chunk completes the epoch,
    // and the resent manifest of the applied epoch is acknowledged once more.
    const resend = acks(feed(b, [...chunks, manifest]));
    expect(resend.map((a) => [a.epoch, a.ok])).toEqual([
      [1, true],
      [1, true],
    ]);
    expect(b.stats.appliedEpoch).toBe(1);
    expect(bytesEqual(joinRun(b.image.bytes), p.memory.bytes)).toBe(true);
  });

  it('NACKs an epoch whose chunks do not match its manifest and applies nothing', () => {
    const b = standby();
    const { chunks, manifest } = epochOne();
    // Self-consistent, but not the chunk the manifest lists.
    const other = makeChunks({ vmId: VM, term: TERM, epoch: 1 }, ChunkSource.STATE, { pieces: [new Uint8Array([1, 2, 3])] })[0]!;
    const swapped = chunks.map((c) => (c.source === ChunkSource.STATE && c.index === 0 ? other : c));
    const effects = feed(b, [...swapped, manifest]);
    expect(acks(effects)).toMatchObject([{ epoch: 1, ok: false, reason: 'chunks do not match the manifest' }]);
    expect(b.stats.appliedEpoch).toBe(0);
    expect(b.stateBlob.length).toBe(0);
    expect(b.image.bytes.every((x) => x === 0)).toBe(true);
  });

  it('acknowledges a resend of an applied epoch again without re-applying it', () => {
    const b = standby();
    const p = new Primary(false);
    fill(p.memory, 0, 10, 1);
    const e1 = p.checkpoint(1, stateOf(1), null);
    fill(p.memory, 0, 10, 2);
    const e2 = p.checkpoint(2, stateOf(2), null);
    feed(b, [...e1.chunks, e1.manifest, ...e2.chunks, e2.manifest]);
    expect(b.stats.appliedEpoch).toBe(2);
    const effects = feed(b, [...e1.chunks, e1.manifest]);
    expect(acks(effects)).toEqual([{ type: 'checkpointAck', vmId: VM, term: TERM, epoch: 1, ok: true, reason: '', host: HOST, needsBase: false }]);
    expect(b.image.bytes[0]).toBe(2); // still epoch 2's page
    expect(bytesEqual(b.stateBlob, stateOf(2))).toBe(true);
    expect(b.stats.duplicates).toBe(e1.chunks.length + 1);
    expect(b.stats.appliedEpoch).toBe(2);
  });

  it('counts as staged only the chunks it keeps for an epoch: not a corrupt one, a resend of an applied epoch, one past the window or of an older term', () => {
    const b = standby({ maxPendingEpochs: 1 });
    const { chunks, manifest } = epochOne();
    const bad = { ...chunks[0]!, data: chunks[0]!.data.slice() };
    bad.data[0]! ^= 0xff;
    feed(b, [bad]);
    expect(b.stats.chunksStaged).toBe(0);
    feed(b, [...chunks, manifest]);
    expect(b.stats.appliedEpoch).toBe(1);
    expect(b.stats.chunksStaged).toBe(chunks.length + 1);
    feed(b, [...chunks, manifest]);
    feed(b, new Primary(false).checkpoint(3, stateOf(3), null).chunks);
    feed(b, new Primary(false, TERM - 1).checkpoint(2, stateOf(2), null).chunks);
    expect(b.stats).toMatchObject({ duplicates: chunks.length + 1, chunksStaged: chunks.length + 1 });
    expect(b.stats.dropped + b.stats.staleTermDrops).toBeGreaterThan(0);
  });

  it('counts the chunks a joining image stages before its base: what a join makes progress by while the base is on its way', () => {
    const b = standby({ joining: true });
    const { chunks } = epochOne();
    feed(b, chunks);
    expect(b.stats.appliedEpoch).toBe(0);
    expect(b.stats.chunksStaged).toBe(chunks.length);
    // Sent again (a NACK, a probe): held already, no progress.
    feed(b, chunks);
    expect(b.stats).toMatchObject({ chunksStaged: chunks.length, chunksRestaged: chunks.length });
  });

  it('counts a pending epoch\'s chunks and manifest sent again as restaged, not staged: a join that loses the same tail over and over makes no progress', () => {
    const b = standby();
    const { chunks, manifest } = epochOne();
    const [last, ...rest] = [...chunks].reverse();
    feed(b, rest);
    feed(b, [manifest]); // incomplete: NACKed
    expect(b.stats.appliedEpoch).toBe(0);
    const staged = b.stats.chunksStaged;
    expect(staged).toBe(rest.length + 1);
    for (let i = 0; i < 3; i++) feed(b, [...rest, manifest]); // the primary resends all, and the tail is lost again
    expect(b.stats.chunksStaged).toBe(staged);
    expect(b.stats.chunksRestaged).toBe(3 * (rest.length + 1));
    feed(b, [last!]);
    expect(b.stats.chunksStaged).toBe(staged + 1);
    expect(b.stats.appliedEpoch).toBe(1);
  });

  it('drops chunks of an epoch beyond maxPendingEpochs (the primary resends them)', () => {
    const b = standby({ maxPendingEpochs: 1 });
    const { chunks, manifest } = new Primary(false).checkpoint(2, stateOf(2), null);
    expect(feed(b, [...chunks, manifest])).toEqual([]);
    expect(b.stats.dropped).toBe(chunks.length + 1);
  });

  it('rebuilds the speculative buffer from the deltas, trimmed below the client ACK, with the connection state', () => {
    const b = standby();
    const p = new Primary(false);
    const connection = { connId: 2, clientWscale: 7, clientSynWindow: 65535, guestOfferedWscale: true, clientNxt: 101, guestHeader: null };
    const e1 = p.checkpoint(1, stateOf(1), { startSeq: 1000, clientAckSeq: 1000, connection, bytes: streamBytes(1000, 1500) });
    feed(b, [...e1.chunks, e1.manifest]);
    expect(specOf(b)).toMatchObject({ startSeq: 1000, endSeq: 2500 });
    expect(bytesEqual(specOf(b)!.copyOut(1000, 1500), streamBytes(1000, 1500))).toBe(true);
    expect(connectionOf(b)).toEqual(connection);
    const e2 = p.checkpoint(2, stateOf(2), { startSeq: 2500, clientAckSeq: 2000, connection: { ...connection, clientNxt: 150 }, bytes: streamBytes(2500, 700) });
    feed(b, [...e2.chunks, e2.manifest]);
    expect(specOf(b)).toMatchObject({ startSeq: 2000, endSeq: 3200 });
    expect(bytesEqual(specOf(b)!.copyOut(2000, 1200), streamBytes(2000, 1200))).toBe(true);
    expect(connectionOf(b)!.clientNxt).toBe(150);
    // An epoch without new bytes still moves the client-ACK watermark.
    const e3 = p.checkpoint(3, stateOf(3), { startSeq: 3200, clientAckSeq: 3100, connection, bytes: new Uint8Array(0) });
    feed(b, [...e3.chunks, e3.manifest]);
    expect(specOf(b)).toMatchObject({ startSeq: 3100, endSeq: 3200 });
  });

  it('frees acknowledged bytes before appending, so a buffer that was full on the primary fits', () => {
    const b = standby({ specBufferBytes: 2000 });
    const p = new Primary(false);
    const e1 = p.checkpoint(1, stateOf(1), { startSeq: 0, clientAckSeq: 0, connection: ANY_CONNECTION, bytes: streamBytes(0, 2000) });
    const e2 = p.checkpoint(2, stateOf(2), { startSeq: 2000, clientAckSeq: 1500, connection: ANY_CONNECTION, bytes: streamBytes(2000, 1500) });
    expect(acks(feed(b, [...e1.chunks, e1.manifest, ...e2.chunks, e2.manifest])).map((a) => a.ok)).toEqual([true, true]);
    expect(specOf(b)).toMatchObject({ startSeq: 1500, endSeq: 3500 });
  });

  it('drops and counts chunks of an older term (a fenced primary) and acknowledges none of them', () => {
    const b = standby();
    const old = new Primary(false, TERM - 1);
    fill(old.memory, 0, 10, 9);
    const { chunks, manifest } = old.checkpoint(1, stateOf(1), null);
    expect(feed(b, [...chunks, manifest])).toEqual([]);
    expect(b.stats.staleTermDrops).toBe(chunks.length + 1);
    expect(b.stats.appliedEpoch).toBe(0);
    expect(b.image.bytes.every((x) => x === 0)).toBe(true);
    // Its own term's checkpoint of the same epoch applies.
    const own = epochOne();
    expect(acks(feed(b, [...own.chunks, own.manifest]))).toMatchObject([{ epoch: 1, ok: true, term: TERM }]);
  });

  it("follows its creation's stream: a later process of the primary's host (a VM made anew, same term) is dropped unanswered, its resends of applied epochs too", () => {
    const b = standby();
    const first = new Primary(false);
    fill(first.memory, 0, 10, 1);
    const e1 = first.checkpoint(1, stateOf(1), null);
    fill(first.memory, 0, 10, 2);
    const e2 = first.checkpoint(2, stateOf(2), null);
    expect(b.followedAgentIncarnation).toBe(0);
    feed(b, [...e1.chunks, e1.manifest, ...e2.chunks, e2.manifest]);
    expect(b.stats.appliedEpoch).toBe(2);
    // It reports the stream it follows by the agent that assigned its checkpointer (a restarted failover service compares it with the lease's holder).
    expect(b.followedAgentIncarnation).toBe(1);
    // The host restarted: epochs 1-3 of the VM it made anew. Answered, 1 and 2 would commit output the image does not hold,
    // and 3 would lay the new VM's pages and state over the first one's (vopr-like run: seed 14, a cut-off failover service).
    const anew = new Primary(false, TERM, MEMORY_BYTES, 2, 20);
    const foreign = [1, 2, 3].map((epoch) => {
      fill(anew.memory, 0, PAGE_BYTES * PAGES, 0x55);
      return anew.checkpoint(epoch, stateOf(100 + epoch), null);
    });
    expect(feed(b, foreign.flatMap((e) => [...e.chunks, e.manifest]))).toEqual([]);
    expect(b.stats.foreignStreamManifests).toBe(3);
    expect(b.stats.appliedEpoch).toBe(2);
    expect(b.followedAgentIncarnation).toBe(1);
    expect(b.image.bytes[0]).toBe(2);
    expect(b.image.bytes[PAGE_BYTES]).toBe(0);
    expect(bytesEqual(b.stateBlob, stateOf(2))).toBe(true);
    // The first stream goes on: the foreign chunks staged for epoch 3 do not match its manifest, whose NACK asks for them again.
    fill(first.memory, 0, 10, 3);
    const e3 = first.checkpoint(3, stateOf(3), null);
    expect(acks(feed(b, [...e3.chunks, e3.manifest]))).toMatchObject([{ epoch: 3, ok: false }]);
    expect(acks(feed(b, [...e3.chunks, e3.manifest]))).toMatchObject([{ epoch: 3, ok: true }]);
    expect(b.image.bytes[0]).toBe(3);
  });

  it("follows its base's stream: a joined image drops the manifests of another process of the primary's host, its base of the same join too, and a later join's base starts it over on that base's", () => {
    const b = standby({ joining: true, joinSeq: 4 });
    const primary = new Primary(false);
    fill(primary.memory, 0, MEMORY_BYTES, 7);
    const base = primary.checkpoint(5, stateOf(5), null, { joinSeq: 4 });
    expect(acks(feed(b, [...base.chunks, base.manifest]))).toMatchObject([{ epoch: 5, ok: true }]);
    expect(b.synced).toBe(true);
    expect(b.followedAgentIncarnation).toBe(1);
    const anew = new Primary(false, TERM, MEMORY_BYTES, 9, 90);
    fill(anew.memory, 0, PAGE_BYTES, 0x55);
    const early = anew.checkpoint(4, stateOf(104), null);
    fill(anew.memory, 0, PAGE_BYTES, 0x56);
    const late = anew.checkpoint(6, stateOf(106), null);
    expect(feed(b, [...early.chunks, early.manifest, ...late.chunks, late.manifest])).toEqual([]);
    expect(b.stats.foreignStreamManifests).toBe(2);
    // Nor a base of this join from that process: the join's role change reached the host's new process.
    fill(anew.memory, 0, MEMORY_BYTES, 0x57);
    const sameJoin = anew.checkpoint(7, stateOf(107), null, { joinSeq: 4 });
    expect(feed(b, [...sameJoin.chunks, sameJoin.manifest])).toEqual([]);
    expect(b.stats.foreignStreamManifests).toBe(3);
    expect(b.stats.appliedEpoch).toBe(5);
    expect(b.followedAgentIncarnation).toBe(1);
    expect(b.image.bytes[0]).toBe(7);
    // A base of a later join from that process is a stream of its own: the image starts over on it.
    fill(anew.memory, 0, MEMORY_BYTES, 0x58);
    const rebase = anew.checkpoint(8, stateOf(108), null, { joinSeq: 5 });
    expect(acks(feed(b, [...rebase.chunks, rebase.manifest]))).toMatchObject([{ epoch: 8, ok: true }]);
    expect(b.image.bytes[0]).toBe(0x58);
    expect(b.followedAgentIncarnation).toBe(90);
    fill(primary.memory, 0, PAGE_BYTES, 8);
    const stale = primary.checkpoint(9, stateOf(9), null);
    expect(feed(b, [...stale.chunks, stale.manifest])).toEqual([]);
    expect(b.stats.foreignStreamManifests).toBe(4);
  });

  it('property: after each epoch, the image, state and speculative buffer equal what the primary sent, whatever the chunk order', () => {
    const write = fc.record({ addr: fc.integer({ min: 0, max: MEMORY_BYTES - 1 }), len: fc.integer({ min: 1, max: 3 * PAGE_BYTES }), value: fc.integer({ min: 0, max: 255 }) });
    const epoch = fc.record({ writes: fc.array(write, { maxLength: 6 }), specBytes: fc.integer({ min: 0, max: 3000 }), acked: fc.integer({ min: 0, max: 3000 }), order: fc.array(fc.nat(), { minLength: 40, maxLength: 40 }) });
    fc.assert(
      fc.property(fc.boolean(), fc.array(epoch, { minLength: 1, maxLength: 6 }), (pageDelta, epochs) => {
        const b = standby({ specBufferBytes: 8000 });
        const p = new Primary(pageDelta);
        let specEnd = 0;
        let clientAck = 0;
        epochs.forEach((e, i) => {
          for (const w of e.writes) {
            const len = Math.min(w.len, MEMORY_BYTES - w.addr);
            // Varied bytes, so deltas have both runs and literals.
            p.memory.write(w.addr, Uint8Array.from({ length: len }, (_, k) => (k % 7 === 0 ? w.value : (w.value + k) & 0xff)));
          }
          clientAck = Math.min(specEnd, clientAck + e.acked);
          const bytes = Math.min(e.specBytes, 8000 - (specEnd - clientAck));
          const delta = { startSeq: specEnd, clientAckSeq: clientAck, connection: ANY_CONNECTION, bytes: streamBytes(specEnd, bytes) };
          specEnd += bytes;
          const { chunks, manifest } = p.checkpoint(i + 1, stateOf(i + 1), delta);
          const all = [...chunks, manifest];
          // Shuffle by the generated keys.
          const shuffled = all.map((c, k) => [e.order[k % e.order.length]!, k, c] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1]).map((x) => x[2]);
          expect(acks(feed(b, shuffled))).toMatchObject([{ epoch: i + 1, ok: true }]);
          expect(bytesEqual(joinRun(b.image.bytes), p.memory.bytes)).toBe(true);
          expect(bytesEqual(sha256(b.stateBlob), sha256(stateOf(i + 1)))).toBe(true);
          const spec = specOf(b)!;
          expect(spec.startSeq).toBe(clientAck);
          expect(spec.endSeq).toBe(specEnd);
          expect(bytesEqual(spec.copyOut(clientAck, specEnd - clientAck), streamBytes(clientAck, specEnd - clientAck))).toBe(true);
        });
      }),
      { numRuns: 60 },
    );
  });
});

describe('StandbyImage handover', () => {
  const connection = (clientNxt: number): AckerConnectionState => ({ connId: 2, clientWscale: 7, clientSynWindow: 65535, guestOfferedWscale: true, clientNxt, guestHeader: { epoch: 2, ack: clientNxt, window: 222, tsValUs: 2001, tsEcrUs: 1000 } });

  it('hands over its speculative buffer, start sequence and connection: what HandoverReceiver takes back equals them', () => {
    const b = standby();
    const p = new Primary(false);
    const e1 = p.checkpoint(1, stateOf(1), { startSeq: 1000, clientAckSeq: 1000, connection: connection(101), bytes: streamBytes(1000, 1500) });
    const e2 = p.checkpoint(2, stateOf(2), { startSeq: 2500, clientAckSeq: 2000, connection: connection(150), bytes: streamBytes(2500, 700) });
    feed(b, [...e1.chunks, e1.manifest, ...e2.chunks, e2.manifest]);
    expect(specOf(b)).toMatchObject({ startSeq: 2000, endSeq: 3200 });
    const chunks = b.handoverChunks(TERM + 1, 256);
    const spec = chunks.filter((c) => c.source === ChunkSource.SPEC);
    expect(spec.length).toBeGreaterThan(1);
    expect(chunks.map((c) => c.source)).toEqual([...spec.map(() => ChunkSource.SPEC), ChunkSource.MANIFEST]);
    for (const c of chunks) expect(c).toMatchObject({ vmId: VM, term: TERM + 1, epoch: 2 });
    for (const c of spec) expect(c.data.length).toBeLessThanOrEqual(256);
    const { handover, receiver } = receive(TERM + 1, chunks);
    expect(handover.epoch).toBe(b.stats.appliedEpoch);
    expect(handover.connections[0]!.startSeq).toBe(specOf(b)!.startSeq);
    expect(bytesEqual(joinRun(handover.connections[0]!.bytes), specOf(b)!.copyOut(2000, 1200))).toBe(true);
    expect(bytesEqual(joinRun(handover.connections[0]!.bytes), streamBytes(2000, 1200))).toBe(true);
    expect(handover.connections[0]!.connection).toEqual(connectionOf(b));
    expect(handover.connections[0]!.connection).toEqual(connection(150));
    expect(receiver.stats).toEqual({ handoverStaleTermChunks: 0, handoversCorrupt: 0 });
  });

  it('hands over an empty buffer and no connection when it saw none', () => {
    const b = standby();
    const { chunks, manifest } = epochOne();
    feed(b, [...chunks, manifest]);
    const { handover } = receive(TERM, b.handoverChunks(TERM, 256));
    expect(handover).toEqual({ epoch: 1, connections: [] });
  });

  it("keeps a connection the acker knew only from the client's SYN apart from the buffers, hands it over so, and opens its buffer with the first delta after the SYN-ACK", () => {
    const b = standby();
    const p = new Primary(false);
    const awaiting: AckerConnectionState = { ...connection(101), guestHeader: null, awaitingSynAck: true };
    const e1 = p.checkpoint(1, stateOf(1), { startSeq: 0, clientAckSeq: 0, connection: awaiting, bytes: new Uint8Array(0) });
    feed(b, [...e1.chunks, e1.manifest]);
    expect(specOf(b)).toBeNull();
    expect(b.awaitingSynAck.get(2)).toEqual(awaiting);
    expect(receive(TERM, b.handoverChunks(TERM, 256)).handover).toMatchObject({ epoch: 1, connections: [{ startSeq: 0, connection: awaiting }] });
    const e2 = p.checkpoint(2, stateOf(2), { startSeq: 1000, clientAckSeq: 1000, connection: connection(101), bytes: streamBytes(1000, 500) });
    feed(b, [...e2.chunks, e2.manifest]);
    expect(b.awaitingSynAck.size).toBe(0);
    expect(specOf(b)).toMatchObject({ startSeq: 1000, endSeq: 1500 });
    // A part that says the open buffer awaits its SYN-ACK again continues no stream this image holds: refused, nothing applied.
    const e3 = p.checkpoint(3, stateOf(3), { startSeq: 0, clientAckSeq: 0, connection: awaiting, bytes: new Uint8Array(0) });
    expect(acks(feed(b, [...e3.chunks, e3.manifest]))).toMatchObject([{ epoch: 3, ok: false }]);
    expect(b.stats).toMatchObject({ appliedEpoch: 2, undecodableEpochs: 1 });
  });

  it('hands over the connection with an empty buffer when the client acknowledged every byte', () => {
    const b = standby();
    const p = new Primary(false);
    const e1 = p.checkpoint(1, stateOf(1), { startSeq: 1000, clientAckSeq: 1000, connection: connection(101), bytes: streamBytes(1000, 500) });
    const e2 = p.checkpoint(2, stateOf(2), { startSeq: 1500, clientAckSeq: 1500, connection: connection(120), bytes: new Uint8Array(0) });
    feed(b, [...e1.chunks, e1.manifest, ...e2.chunks, e2.manifest]);
    const { handover } = receive(TERM, b.handoverChunks(TERM, 256));
    expect(handover).toMatchObject({ epoch: 2, connections: [{ startSeq: 1500, connection: connection(120) }] });
    expect(runLength(handover.connections[0]!.bytes)).toBe(0);
  });

  it('hands over the applied epoch only, not a later one still waiting for its chunks', () => {
    const b = standby();
    const p = new Primary(false);
    const e1 = p.checkpoint(1, stateOf(1), { startSeq: 1000, clientAckSeq: 1000, connection: connection(101), bytes: streamBytes(1000, 500) });
    const e2 = p.checkpoint(2, stateOf(2), { startSeq: 1500, clientAckSeq: 1000, connection: connection(120), bytes: streamBytes(1500, 300) });
    feed(b, [...e1.chunks, e1.manifest, ...e2.chunks.slice(1), e2.manifest]);
    expect(b.stats.appliedEpoch).toBe(1);
    const { handover } = receive(TERM, b.handoverChunks(TERM, 256));
    expect(handover).toMatchObject({ epoch: 1, connections: [{ startSeq: 1000, connection: connection(101) }] });
    expect(bytesEqual(joinRun(handover.connections[0]!.bytes), streamBytes(1000, 500))).toBe(true);
  });

  it('property: whatever the deltas and the order the chunks arrive in, the handover taken back equals the speculative buffer', () => {
    const epoch = fc.record({ specBytes: fc.integer({ min: 0, max: 3000 }), acked: fc.integer({ min: 0, max: 3000 }), clientNxt: fc.nat({ max: 1e6 }) });
    fc.assert(
      fc.property(fc.array(epoch, { minLength: 1, maxLength: 5 }), fc.integer({ min: 16, max: 2048 }), fc.array(fc.nat(), { minLength: 40, maxLength: 40 }), (epochs, chunkBytes, order) => {
        const b = standby({ specBufferBytes: 8000 });
        const p = new Primary(false);
        let specEnd = 0;
        let clientAck = 0;
        epochs.forEach((e, i) => {
          clientAck = Math.min(specEnd, clientAck + e.acked);
          const bytes = Math.min(e.specBytes, 8000 - (specEnd - clientAck));
          const { chunks, manifest } = p.checkpoint(i + 1, stateOf(i + 1), { startSeq: specEnd, clientAckSeq: clientAck, connection: connection(e.clientNxt), bytes: streamBytes(specEnd, bytes) });
          specEnd += bytes;
          expect(acks(feed(b, [...chunks, manifest]))).toMatchObject([{ epoch: i + 1, ok: true }]);
        });
        const all = b.handoverChunks(TERM, chunkBytes);
        const shuffled = all.map((c, k) => [order[k % order.length]!, k, c] as const).sort((x, y) => x[0] - y[0] || x[1] - y[1]).map((x) => x[2]);
        const { handover } = receive(TERM, shuffled);
        expect(handover.epoch).toBe(epochs.length);
        expect(handover.connections[0]!.connection).toEqual(connection(epochs.at(-1)!.clientNxt));
        expect(handover.connections[0]!.connection).toEqual(connectionOf(b));
        expect(handover.connections[0]!.startSeq).toBe(specOf(b)!.startSeq);
        expect(handover.connections[0]!.startSeq).toBe(clientAck);
        expect(bytesEqual(joinRun(handover.connections[0]!.bytes), streamBytes(clientAck, specEnd - clientAck))).toBe(true);
      }),
      { numRuns: 100 },
    );
  });
});

describe('StandbyImage, the bound of a pending epoch', () => {
  it('refuses a chunk whose index and count fit no checkpoint of its guest (more chunks than pages and a handover), before keeping it', () => {
    const b = standby();
    const p = new Primary(false);
    fill(p.memory, 0, 64, 1);
    const { chunks, manifest } = p.checkpoint(1, stateOf(1), null);
    const max = maxChunksPerSource(MEMORY_BYTES);
    // Valid hashes, a real epoch: only the index and count give them away.
    const forged = [
      ...Array.from({ length: 50 }, (_, i) => ({ ...chunks[0]!, index: max + i, count: max + i + 1 })),
      { ...chunks[0]!, index: 3, count: 3 },
      { ...chunks[0]!, count: 0 },
    ];
    for (const c of forged) expect(b.onChunk(c, 0)).toEqual([]);
    expect(b.stats).toMatchObject({ malformedChunks: forged.length, chunksReceived: forged.length });
    expect(acks([...chunks, manifest].flatMap((c) => b.onChunk(c, 0)))).toMatchObject([{ epoch: 1, ok: true }]);
    expect(b.stats.appliedEpoch).toBe(1);
  });
});

describe('StandbyImage holds at most maxPendingEpochs epochs (docs/design-notes.md: in flight + 1)', () => {
  it('drops and counts epochs staged before the base that lie past the window it opens, so they never sit beside that window', () => {
    const MAX = 4;
    const BASE = 10;
    const b = standby({ joining: true, maxPendingEpochs: MAX });
    const p = new Primary(false);
    // Far-future epochs (a forged or confused stream) staged while the backup waits for its base: the staging bound holds them.
    const farChunks = [100, 101, 102].flatMap((epoch) => {
      fill(p.memory, 0, 64, epoch & 0xff);
      return p.checkpoint(epoch, stateOf(epoch), null).chunks;
    });
    expect(feed(b, farChunks)).toEqual([]);
    expect(b.pendingEpochs).toBe(3);
    for (let page = 0; page < PAGES; page++) fill(p.memory, page * PAGE_BYTES, 8, 1);
    const base = p.checkpoint(BASE, stateOf(BASE), null);
    expect(acks(feed(b, [...base.chunks, makeManifest({ vmId: VM, term: TERM, epoch: BASE }, base.chunks, { base: true })]))).toMatchObject([{ epoch: BASE, ok: true }]);
    expect(b.stats).toMatchObject({ baseEpoch: BASE, appliedEpoch: BASE, dropped: farChunks.length });
    expect(b.pendingEpochs).toBe(0);
    // The whole window after the base, each epoch missing its manifest: it fills the bound and no more.
    for (let epoch = BASE + 1; epoch <= BASE + MAX; epoch++) {
      fill(p.memory, 0, 64, epoch);
      feed(b, p.checkpoint(epoch, stateOf(epoch), null).chunks);
      expect(b.pendingEpochs).toBeLessThanOrEqual(MAX);
    }
    expect(b.pendingEpochs).toBe(MAX);
    // One past the window is dropped and counted, as ever.
    const past = p.checkpoint(BASE + MAX + 1, stateOf(BASE + MAX + 1), null).chunks;
    feed(b, past);
    expect(b.pendingEpochs).toBe(MAX);
    expect(b.stats.dropped).toBe(farChunks.length + past.length);
  });
});

describe('GuestCore as a backup: the standby image it keeps', () => {
  const h = v.host(HOST);
  const GUEST_MEMORY = 1024 * 1024;
  const guest = () => {
    const config = runConfigSchema.parse({ mode: 'spec', seed: 3, guest: { memoryBytes: GUEST_MEMORY, appDirtyPagesPerSec: 0 }, tcp: { sndBufBytes: 256 * 1024 } });
    return new GuestCore(guestOptionsFromConfig(config, HOST));
  };
  const onData = (g: GuestCore, chunks: readonly CheckpointChunk[], subject = v.ckptData(HOST)) => chunks.flatMap((c) => g.handle(message(subject, c), 0));
  const checkpointOne = () => {
    const p = new Primary(false, TERM, GUEST_MEMORY);
    fill(p.memory, 5 * PAGE_BYTES, 64, 7);
    const { chunks, manifest } = p.checkpoint(1, stateOf(1), null);
    return { p, all: [...chunks, manifest] };
  };

  it("subscribes to its host's checkpoint data once assigned backup, and applies it to its standby image", () => {
    const g = guest();
    expect(g.subscriptions).toEqual([h.assign('guest')]);
    activate(g, assignment(VM, HOST, 'backup', TERM), { assign: h.assign('guest') });
    expect(g.subscriptions).toEqual([h.assign('guest'), v.ckptData(HOST)]);
    const { p, all } = checkpointOne();
    expect(acks(onData(g, all))).toMatchObject([{ epoch: 1, ok: true, term: TERM, host: HOST }]);
    expect(g.standby!.stats.appliedEpoch).toBe(1);
    expect(bytesEqual(joinRun(g.standby!.image.bytes), p.memory.bytes)).toBe(true);
  });

  it("drops and counts another VM's checkpoint on its subject: the image takes nothing of it, and nothing is acknowledged", () => {
    const g = guest();
    activate(g, assignment(VM, HOST, 'backup', TERM), { assign: h.assign('guest') });
    const { all } = checkpointOne();
    expect(onData(g, all.map((c) => ({ ...c, vmId: 'vm-other' })))).toEqual([]);
    expect(g.stats.otherVmMessages).toBe(all.length);
    expect(g.standby!.stats.chunksReceived).toBe(0);
    expect(acks(onData(g, all))).toMatchObject([{ epoch: 1, ok: true }]);
  });

  it('reports the chunks its images staged, counted over every image it held: a new join counts on from the last', () => {
    const g = guest();
    activate(g, assignment(VM, HOST, 'backup', TERM), { assign: h.assign('guest') });
    const { all } = checkpointOne();
    onData(g, all);
    expect(g.chunksStaged).toBe(all.length);
    // Joined again: a new image, waiting for a base; the next epoch's chunks are staged in it.
    const joined = g.handle(message(h.assign('guest'), assignment(VM, HOST, 'backup', TERM, { seq: 2, joining: true })), 0);
    expect(sentOn(joined, h.status)).toMatchObject([{ type: 'serviceStatus', chunksStaged: all.length }]);
    const p = new Primary(false, TERM, GUEST_MEMORY);
    fill(p.memory, 0, 64, 9);
    const next = p.checkpoint(2, stateOf(2), null).chunks;
    onData(g, next);
    expect(g.standby!.stats.chunksStaged).toBe(next.length);
    expect(g.chunksStaged).toBe(all.length + next.length);
  });

  it('drops and counts checkpoint chunks while not a backup, and ignores chunks on any other subject', () => {
    const g = guest();
    activate(g, assignment(VM, HOST, 'spare', TERM), { assign: h.assign('guest') });
    const { all } = checkpointOne();
    expect(onData(g, all)).toEqual([]);
    expect(g.stats.chunksWhileNotBackup).toBe(all.length);
    g.handle(message(h.assign('guest'), assignment(VM, HOST, 'backup', TERM, { seq: 2 })), 0);
    expect(onData(g, all, h.handover)).toEqual([]);
    expect(g.standby!.stats.chunksReceived).toBe(0);
    expect(g.stats.unexpectedMessages).toBe(all.length);
    expect(acks(onData(g, all))).toMatchObject([{ epoch: 1, ok: true }]);
  });

  it('drops and counts data-path messages while not running the VM as primary (in flight across a role change)', () => {
    const g = guest();
    activate(g, assignment(VM, HOST, 'backup', TERM), { assign: h.assign('guest') });
    const barrier = { type: 'epochBarrier' as const, vmId: VM, term: TERM, epoch: 3, base: false, stagedSources: 0, joinSeq: 0, local: false };
    expect(g.handle(message(h.epoch, barrier), 0)).toEqual([]);
    expect(g.stats.notPrimaryDrops).toBe(1);
    expect(g.vm).toBeNull();
  });

  it('backs off its answers to handover requests as the acker backs off its requests: a lost answer goes again soon, a flood gets ever fewer', () => {
    const g = guest();
    const first = g.options.supervision!.handoverAnswerIntervalUs.firstUs;
    activate(g, assignment(VM, HOST, 'backup', TERM), { assign: h.assign('guest') });
    onData(g, checkpointOne().all);
    g.handle(message(h.assign('guest'), assignment(VM, HOST, 'promoting', TERM, { seq: 2 })), 0);
    const request = { type: 'handoverRequest' as const, vmId: VM, term: TERM, host: HOST };
    const ask = (atUs: number) => sentOn(g.handle(message(h.handoverRequest, request), atUs), h.handover).length;
    const whole = ask(1_000);
    expect(whole).toBeGreaterThan(0);
    // A request every 100 µs for 2 s (a duplicate, a hostile publisher): answers after first, 2×first, 4×first… then every maxUs (half the acker's longest wait).
    const answeredAt: number[] = [];
    for (let t = 1_100; t <= 2_001_000; t += 100) if (ask(t) > 0) answeredAt.push(t);
    const gaps = answeredAt.map((t, i) => t - (answeredAt[i - 1] ?? 1_000));
    expect(gaps[0]).toBe(first);
    expect(gaps[1]).toBe(2 * first);
    expect(gaps.at(-1)).toBe(g.options.supervision!.handoverAnswerIntervalUs.maxUs);
    expect(gaps.every((gap, i) => i === 0 || gap >= gaps[i - 1]!)).toBe(true);
    expect(answeredAt.length).toBeLessThan(20);
    expect(g.stats.handoversSent).toBe(answeredAt.length + 1);
    expect(g.stats.handoverRequestsTooSoon).toBe(20_000 - answeredAt.length);
    // A request of another term is no promotion of this one: nothing, and not counted as too soon.
    const tooSoon = g.stats.handoverRequestsTooSoon;
    expect(sentOn(g.handle(message(h.handoverRequest, { ...request, term: TERM + 1 }), 3_000_000), h.handover)).toEqual([]);
    expect(g.stats.handoverRequestsTooSoon).toBe(tooSoon);
  });

  it('drops and counts a handover request that comes once the promotion is over (the acker asked again as it ended)', () => {
    const g = guest();
    activate(g, assignment(VM, HOST, 'backup', TERM), { assign: h.assign('guest') });
    g.handle(message(h.assign('guest'), assignment(VM, HOST, 'promoting', TERM, { seq: 2 })), 0);
    g.handle({ kind: 'timer', name: 'guest.restore' }, 1_000_000);
    g.handle(message(h.assign('guest'), assignment(VM, HOST, 'primary', TERM, { seq: 3 })), 1_100_000);
    expect(g.role).toBe('primary');
    const request = { type: 'handoverRequest' as const, vmId: VM, term: TERM, host: HOST };
    expect(sentOn(g.handle(message(h.handoverRequest, request), 2_000_000), h.handover)).toEqual([]);
    expect(g.stats.lateHandoverRequests).toBe(1);
    expect(g.stats.handoverRequestsTooSoon).toBe(0);
  });

  it('made primary under a newer term than its promotion, runs the restored VM under that term', () => {
    const g = guest();
    // Promoted before any checkpoint applied: the restore starts the VM afresh (a real state blob is the sim's to test).
    activate(g, assignment(VM, HOST, 'backup', TERM), { assign: h.assign('guest') });
    g.handle(message(h.assign('guest'), assignment(VM, HOST, 'promoting', TERM, { seq: 2 })), 0);
    g.handle({ kind: 'timer', name: 'guest.restore' }, 1_000_000);
    const restored = g.vm!;
    expect(restored.term).toBe(TERM);
    g.handle(message(h.assign('guest'), assignment(VM, HOST, 'primary', TERM + 1, { seq: 3 })), 1_100_000);
    expect(g.role).toBe('primary');
    expect(g.vm).toBe(restored);
    expect(restored.term).toBe(TERM + 1);
  });

  it('refuses, counted, a guest state of the wrong shape (JSON, checksummed): a TypeError or an unsafe epoch from it crashed the promoted guest', () => {
    const app = { bytesWritten: 0, requestBytesReceived: 0, requestsServed: 0, responseBacklogBytes: 0, appCounter: 0 };
    const states = [{ epoch: 1, clockUs: 0, tcp: {}, app, more: 5 }, { epoch: 1, clockUs: 0, tcp: {}, app, more: [{ tcp: {} }] }, { epoch: 1.5, clockUs: 0, tcp: {}, app }, { epoch: -3, clockUs: 0, tcp: {}, app }, { epoch: 2 ** 60, clockUs: 0, tcp: {}, app }, { epoch: 1, clockUs: 0, tcp: {}, app: { ...app, bytesWritten: 'x' } }];
    for (const state of states) {
      const g = guest();
      activate(g, assignment(VM, HOST, 'backup', TERM), { assign: h.assign('guest') });
      const p = new Primary(false, TERM, GUEST_MEMORY);
      const { chunks, manifest } = p.checkpoint(1, new TextEncoder().encode(JSON.stringify(state)), null);
      onData(g, [...chunks, manifest]);
      expect(g.standby!.stats.appliedEpoch).toBe(1);
      g.handle(message(h.assign('guest'), assignment(VM, HOST, 'promoting', TERM, { seq: 2 })), 0);
      expect(() => g.handle({ kind: 'timer', name: 'guest.restore' }, 1_000_000)).not.toThrow();
      expect(g.stats.restoresRefused).toBe(1);
      expect(g.vm).toBeNull();
    }
  });

  it('counts a promotion whose image holds a guest state that does not restore, stays not ready, and goes on running', () => {
    const g = guest();
    activate(g, assignment(VM, HOST, 'backup', TERM), { assign: h.assign('guest') });
    // A checksummed epoch whose state is no guest's (as only a forger or a bug writes one).
    onData(g, checkpointOne().all);
    expect(g.standby!.stats.appliedEpoch).toBe(1);
    g.handle(message(h.assign('guest'), assignment(VM, HOST, 'promoting', TERM, { seq: 2 })), 0);
    const effects = g.handle({ kind: 'timer', name: 'guest.restore' }, 1_000_000);
    expect(g.stats.restoresRefused).toBe(1);
    expect(effects).toContainEqual(expect.objectContaining({ kind: 'log', level: 'error', event: 'guest.restore_refused' }));
    expect(g.vm).toBeNull();
    // Never ready: its agent never makes it primary, and a primary assignment before the restore is refused.
    g.handle(message(h.assign('guest'), assignment(VM, HOST, 'primary', TERM, { seq: 3 })), 1_100_000);
    expect(g.role).toBe('promoting');
    expect(g.stats.assignmentsRefused).toBe(1);
  });

  it('refuses a promotion that reaches it restarted, as a spare without the image (its agent had not seen the restart yet)', () => {
    const g = guest();
    activate(g, assignment(VM, HOST, 'spare', TERM), { assign: h.assign('guest') });
    const effects = g.handle(message(h.assign('guest'), assignment(VM, HOST, 'promoting', TERM + 1, { seq: 2 })), 0);
    expect(g.role).toBe('spare');
    expect(g.stats.promotionsWithoutImage).toBe(1);
    expect(timersSet(effects).has('guest.restore')).toBe(false);
    // Its status still goes out: the agent learns the restart from it and refuses the promotion in turn.
    expect(sentOn(effects, h.status)).toHaveLength(1);
  });
});
