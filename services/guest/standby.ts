import { assert } from '../../lib/assert.js';
import { runLength } from '../../lib/checkpoint/byte-run.js';
import { chunkCountFits, chunkIntact, chunkOrder, listedChecksum, makeChunks, makeManifest, manifestLength, maxChunksPerSource } from '../../lib/checkpoint/chunks.js';
import { bytesEqual, hex, sha256 } from '../../lib/checkpoint/hash.js';
import { specBuffersDigest } from '../../lib/checkpoint/spec-digest.js';
import { checkPages, unpackPages } from '../../lib/checkpoint/page-chunks.js';
import { ChunkSource, type CheckpointChunk } from '../../lib/codec/messages.js';
import { PageDigest } from '../../lib/memory/page-digest.js';
import { PagedMemory } from '../../lib/memory/paged-memory.js';
import type { Sampler } from '../../lib/tracing/sampling.js';
import type { Effect } from '../../lib/runtime/types.js';
import { ViewQueue } from '../../lib/checkpoint/view-queue.js';
import { decodeSpecDeltas, encodeSpecDeltaChunks, type AckerConnectionState, type SpecDelta } from '../../lib/checkpoint/spec-delta.js';
import { DecodeError } from '../../lib/errors.js';
import { PendingEpochs, type StageResult } from './pending-epochs.js';

export interface StandbyOptions {
  readonly vmId: string;
  /** Acknowledgements go here, over the replication link. */
  readonly ckptAckSubject: string;
  /** The fencing term of the primary it backs up: chunks of older terms are dropped. */
  readonly term: number;
  readonly memoryBytes: number;
  readonly specBufferBytes: number;
  /** Epochs buffered ahead of the next one to apply; beyond it chunks are dropped (the primary resends). */
  readonly maxPendingEpochs: number;
  /** Bytes of chunk data staged in all pending epochs, at most (`stagedBytesMax`): at the bound later epochs make room for earlier ones, or the chunk is dropped. */
  readonly stagedBytesMax: number;
  /** A simulator hook for tests that prove the backup's copy equal: one digest kept per epoch, for the whole run (a bounded simulated run; never set over NATS). */
  readonly recordDigests: boolean;
  /** The host this backup runs on; its acknowledgements name it. */
  readonly host: string;
  /** Report each applied epoch's span (docs/tracing.md). */
  readonly traceEpochs?: boolean;
  /** Report when sampled bytes of the speculative buffer reach this backup (docs/tracing.md). */
  readonly sampler?: Sampler;
  /**
   * A backup that starts with its guest (both images empty, epoch 1 next)
   * is synced from the start; one that joins later (re-protection) waits
   * for a base epoch and is synced once every page has reached it.
   */
  readonly joining?: boolean;
  /** The join this backup began with (Assignment.joinSeq; 0 for none): a base of an earlier one is not its own. */
  readonly joinSeq?: number;
}

export interface BackupStats {
  appliedEpoch: number;
  chunksReceived: number;
  /** Chunks and manifests taken in for an epoch (not dropped, duplicated or corrupt): what a join makes progress by before its base applies. */
  chunksStaged: number;
  hashMismatches: number;
  duplicates: number;
  /**
   * Chunks and manifests of a pending epoch held already (the primary's
   * resends after a NACK or a probe): taken again, but no progress, so not
   * in chunksStaged. Counted there, a join that lost the same chunks over
   * and over looked to the failover service as if it went on.
   */
  chunksRestaged: number;
  /** Chunks of epochs past the maxPendingEpochs window (or staged before a base, past the window it opened), dropped: the primary resends them. */
  dropped: number;
  /** Chunks from an older term (a fenced primary), dropped. */
  staleTermDrops: number;
  /** Staged chunks and manifests of later epochs dropped to make room for an earlier epoch's at the byte bound (stagedBytesMax): the primary resends them. */
  stagingEvictedChunks: number;
  /** Chunks and manifests refused at the byte bound with no later epoch left to make room: the primary resends them. */
  stagingFullDrops: number;
  /** The base epoch this backup started from (0: it started with its guest). */
  baseEpoch: number;
  /** The epoch whose checkpoint completed the image (0: complete from the start). */
  syncedEpoch: number;
  /** Manifests that arrived with chunks of their epoch missing (lost on the way): NACKed. */
  incompleteNacks: number;
  /** Epochs whose chunks matched their manifest but did not decode or continue the image (forged): NACKed, nothing applied. */
  undecodableEpochs: number;
  /**
   * Manifests of epochs after a base that came while this image waited for
   * its base: NACKed as needing one. Its join came after the primary's base
   * (the assignment was slower than the checkpoint, which an older image of
   * this host took): the primary joins it again.
   */
  baseNeededNacks: number;
  /** Chunks whose index and count fit no checkpoint of this guest (maxChunksPerSource): forged, dropped before they are kept. */
  malformedChunks: number;
  /**
   * Base manifests of an earlier join of this host, dropped with their
   * epoch's chunks: that join was given up, the primary committed epochs
   * alone since, and an image built on its base would be behind their output.
   */
  earlierJoinBases: number;
  /**
   * Manifests of another primary stream than the one this image follows
   * (another checkpointer incarnation than its creation's or its base's):
   * dropped, unanswered. A primary host that restarted runs a VM made anew
   * under the same term and streams it as at creation; applied, its epochs
   * would make an image of two VMs (docs/failover.md).
   */
  foreignStreamManifests: number;
}

export interface BackupDigest {
  readonly memory: string;
  readonly state: string;
  readonly spec: string;
}

/** One connection's speculative buffer on the backup. */
export interface SpecReplica {
  readonly buffer: ViewQueue;
  connection: AckerConnectionState;
}

/** A primary stream a backup image follows, as its manifests name it. */
interface FollowedStream {
  /** The checkpointer process that sends it (PrimaryOptions.incarnation). */
  readonly incarnation: number;
  /** The agent that assigned that checkpointer (PrimaryOptions.agentIncarnation). */
  readonly agentIncarnation: number;
  /** The join whose base started it here (0: followed from the VM's creation). */
  readonly joinSeq: number;
}

/**
 * The backup side of replication, kept by the standby guest on the backup
 * host (as the hypervisor keeps the backup VM's memory): stages incoming
 * chunks per epoch, verifies every chunk hash and the epoch manifest, and
 * applies an epoch to its image atomically and in order, only when
 * complete. It keeps the last committed image: memory, guest state and the
 * speculative buffer, from which a promotion runs the guest.
 */
export class StandbyImage {
  readonly stats: BackupStats = { appliedEpoch: 0, chunksReceived: 0, chunksStaged: 0, hashMismatches: 0, duplicates: 0, chunksRestaged: 0, dropped: 0, staleTermDrops: 0, stagingEvictedChunks: 0, stagingFullDrops: 0, baseEpoch: 0, syncedEpoch: 0, incompleteNacks: 0, undecodableEpochs: 0, baseNeededNacks: 0, malformedChunks: 0, earlierJoinBases: 0, foreignStreamManifests: 0 };
  readonly image: PagedMemory;
  stateBlob: Uint8Array = new Uint8Array(0);
  /** Per connection id, as of the last applied epoch: the speculative buffer rebuilt from the deltas ([startSeq, endSeq)) and the acker's connection state. */
  readonly specs = new Map<number, SpecReplica>();
  /** Per connection id, as of the last applied epoch: the acker had the client's SYN and not yet the guest's SYN-ACK (no buffer yet). */
  readonly awaitingSynAck = new Map<number, AckerConnectionState>();
  readonly digests = new Map<number, BackupDigest>();
  #digest: PageDigest | null;
  readonly #pending: PendingEpochs;
  /** Pages not yet received since the base epoch (1 = missing); null once the image is complete. */
  #missingPages: Uint8Array | null = null;
  #missingCount = 0;
  /** Waiting for the base epoch: until then no epoch can be applied. */
  #awaitingBase: boolean;
  /** The primary stream this image follows: its base's, or the first manifest's; null before either. */
  #stream: FollowedStream | null = null;
  readonly term: number;
  /** Chunks of one source in one epoch, at most: what bounds each pending epoch's map. */
  readonly #maxChunksPerSource: number;

  constructor(readonly options: StandbyOptions) {
    this.term = options.term;
    this.#maxChunksPerSource = maxChunksPerSource(options.memoryBytes);
    this.#pending = new PendingEpochs(options.maxPendingEpochs, options.stagedBytesMax);
    this.image = new PagedMemory(options.memoryBytes);
    this.#digest = options.recordDigests ? new PageDigest(this.image) : null;
    this.#awaitingBase = options.joining ?? false;
    if (this.#awaitingBase) {
      this.#missingPages = new Uint8Array(this.image.pageCount).fill(1);
      this.#missingCount = this.image.pageCount;
    }
  }

  /** The incarnation of the primary's agent whose stream this image follows; 0 before it follows one. */
  get followedAgentIncarnation(): number {
    return this.#stream?.agentIncarnation ?? 0;
  }

  /** Holds a complete image of the guest as of `appliedEpoch`: it may be promoted. */
  get synced(): boolean {
    return !this.#awaitingBase && this.#missingPages === null;
  }

  /** Epochs staged and not applied yet: at most maxPendingEpochs. */
  get pendingEpochs(): number {
    return this.#pending.size;
  }

  /** Bytes of chunk data staged in the pending epochs now (at most options.stagedBytesMax). */
  get stagedBytes(): number {
    return this.#pending.bytes;
  }

  /** Pages of the base image still to arrive. */
  get missingPages(): number {
    return this.#missingCount;
  }

  /** A chunk from the primary over the replication link; returns the acknowledgements to send. */
  onChunk(chunk: CheckpointChunk, nowUs: number): Effect[] {
    const out: Effect[] = [];
    this.stats.chunksReceived++;
    if (chunk.term < this.term) {
      this.stats.staleTermDrops++;
      return out;
    }
    if (!chunkCountFits(chunk, this.#maxChunksPerSource)) {
      this.stats.malformedChunks++;
      return out;
    }
    const baseManifest = chunk.source === ChunkSource.MANIFEST && chunk.base;
    if (baseManifest && chunk.joinSeq < (this.options.joinSeq ?? 0) && chunkIntact(chunk)) {
      // Still on the link when this host joined again (vopr seed 92265): taken, it made an image that called itself
      // synced a few epochs on, behind output the primary had released alone in between.
      this.stats.earlierJoinBases++;
      this.#pending.delete(chunk.epoch);
      return out;
    }
    if (this.#awaitingBase && !baseManifest) {
      if (chunk.source === ChunkSource.MANIFEST) {
        // A whole epoch with no base before it: the primary's base went to an image of this host that is gone (vopr seed 2326).
        this.stats.baseNeededNacks++;
        this.#ack(out, chunk.epoch, false, 'waiting for a base epoch', true);
      } else this.#stageBeforeBase(chunk, nowUs);
      return out;
    }
    // Another primary process than the one this image follows, unless it starts a later join: before the resend
    // check, since answered as applied its epochs would commit a VM this image is not. A base of the followed join
    // from another process is one too: the join's role change reached a host's new process, running a VM made anew.
    const laterJoin = baseManifest && chunk.joinSeq > (this.#stream?.joinSeq ?? 0);
    if (chunk.source === ChunkSource.MANIFEST && this.#stream !== null && chunk.primaryIncarnation !== this.#stream.incarnation && !laterJoin) {
      this.stats.foreignStreamManifests++;
      return out;
    }
    // A base epoch beyond what we applied: start over from an empty image (also a backup that was
    // dropped, cut off, and still receives the stream its successor now gets). Only once its checksum holds: a
    // corrupt one would wipe the image, and the manifests of epochs below it would then be answered as applied.
    const startsBase = baseManifest && chunk.epoch > this.stats.appliedEpoch && (this.#awaitingBase || chunk.epoch !== this.stats.baseEpoch);
    if (startsBase && !chunkIntact(chunk)) {
      this.stats.hashMismatches++;
      this.#ack(out, chunk.epoch, false, 'base manifest checksum mismatch');
      return out;
    }
    if (startsBase) this.#startFromBase(chunk);
    if (chunk.epoch <= this.stats.appliedEpoch) {
      // A resend of something applied: the ACK was lost; repeat it.
      this.stats.duplicates++;
      if (chunk.source === ChunkSource.MANIFEST) this.#ack(out, chunk.epoch, true, '');
      return out;
    }
    if (!chunkIntact(chunk)) {
      this.stats.hashMismatches++;
      this.#pending.delete(chunk.epoch);
      this.#ack(out, chunk.epoch, false, `chunk ${chunk.source}/${chunk.index} checksum mismatch`);
      return out;
    }
    if (chunk.epoch > this.stats.appliedEpoch + this.options.maxPendingEpochs) {
      this.stats.dropped++;
      return out;
    }
    // Chunks and manifest may come in any order; a second manifest is the primary asking again.
    const askedAgain = chunk.source === ChunkSource.MANIFEST && (this.#pending.get(chunk.epoch)?.manifest ?? null) !== null;
    const staged = this.#stage(chunk, nowUs);
    if (!staged.staged) return out;
    if (chunk.source === ChunkSource.MANIFEST) {
      // An image from the VM's creation follows the first stream whose manifest holds (a joined one its base's, above).
      assert(this.#stream !== null || (!this.#awaitingBase && this.stats.baseEpoch === 0), () => `a manifest staged for epoch ${chunk.epoch} after base ${this.stats.baseEpoch} with no stream followed`);
      this.#stream ??= { incarnation: chunk.primaryIncarnation, agentIncarnation: chunk.primaryAgentIncarnation, joinSeq: 0 };
    }
    this.#applyReady(out, nowUs);
    if (askedAgain) this.#nackIfIncomplete(chunk.epoch, out);
    return out;
  }

  /** Before the base manifest: keep chunks of a few epochs (the base epoch's parts come first). */
  #stageBeforeBase(chunk: CheckpointChunk, nowUs: number): void {
    if (!chunkIntact(chunk)) {
      this.stats.hashMismatches++; // the manifest check NACKs the epoch later
      return;
    }
    if (this.#pending.get(chunk.epoch) === undefined && this.#pending.size >= this.options.maxPendingEpochs) {
      this.stats.dropped++;
      return;
    }
    if (chunk.source !== ChunkSource.MANIFEST) this.#stage(chunk, nowUs);
  }

  /** Stages a verified part of an epoch within the window; counts what it did. */
  #stage(chunk: CheckpointChunk, nowUs: number): StageResult {
    const result = this.#pending.stage(chunk, nowUs);
    if (!result.staged) {
      this.stats.stagingFullDrops++;
      return result;
    }
    this.stats.stagingEvictedChunks += result.evictedChunks;
    if (result.replaced) this.stats.chunksRestaged++;
    else this.stats.chunksStaged++;
    return result;
  }

  /** The base epoch's manifest arrived: the image starts empty, epochs before it never apply here, and it follows the base's stream. */
  #startFromBase(manifest: CheckpointChunk): void {
    const epoch = manifest.epoch;
    const applied = !this.#awaitingBase;
    this.#awaitingBase = false;
    this.#stream = { incarnation: manifest.primaryIncarnation, agentIncarnation: manifest.primaryAgentIncarnation, joinSeq: manifest.joinSeq };
    this.stats.baseEpoch = epoch;
    this.stats.appliedEpoch = epoch - 1;
    for (const e of this.#pending.epochs()) {
      if (e < epoch) this.#pending.delete(e);
      // Staged before the base, an epoch past the window it opens would sit beside that window's epochs (twice the bound): the primary resends it.
      else if (e > this.stats.appliedEpoch + this.options.maxPendingEpochs) {
        this.stats.dropped += this.#pending.get(e)!.chunks.size;
        this.#pending.delete(e);
      }
    }
    if (applied) {
      // Everything applied before belongs to another stream: forget it.
      this.image.bytes.fill(0);
      this.stateBlob = new Uint8Array(0);
      this.specs.clear();
      this.awaitingSynAck.clear();
      if (this.#digest !== null) this.#digest = new PageDigest(this.image);
    }
    this.#missingPages = new Uint8Array(this.image.pageCount).fill(1);
    this.#missingCount = this.image.pageCount;
  }

  /**
   * The primary sends the manifest alone again when an acknowledgement is
   * late, behind every chunk still on the link: a chunk missing when it
   * arrives was lost. Ask for the epoch again; the chunks already here are
   * kept, so the repeat only fills the gaps.
   */
  #nackIfIncomplete(epoch: number, out: Effect[]): void {
    const pending = this.#pending.get(epoch);
    if (pending === undefined || pending.manifest === null) return;
    const missing = manifestLength(pending.manifest) - pending.chunks.size;
    if (missing <= 0) return; // complete: it waits for an earlier epoch, or was applied
    this.stats.incompleteNacks++;
    this.#ack(out, epoch, false, `${missing} chunks missing`);
  }

  #ack(out: Effect[], epoch: number, ok: boolean, reason: string, needsBase = false): void {
    out.push({ kind: 'send', subject: this.options.ckptAckSubject, msg: { type: 'checkpointAck', vmId: this.options.vmId, term: this.term, epoch, ok, reason, host: this.options.host, needsBase } });
  }

  /** Applies the next epochs while they are complete and verified. */
  #applyReady(out: Effect[], nowUs: number): void {
    for (;;) {
      const epoch = this.stats.appliedEpoch + 1;
      const pending = this.#pending.get(epoch);
      if (pending === undefined || pending.manifest === null) return;
      const listed = manifestLength(pending.manifest);
      if (pending.chunks.size < listed) return; // more chunks on the way
      const chunks = [...pending.chunks.values()].sort(chunkOrder);
      const intact = chunks.length === listed && chunks.every((c, i) => bytesEqual(c.hash, listedChecksum(pending.manifest!, i)));
      if (!intact) {
        this.stats.hashMismatches++;
        this.#pending.delete(epoch);
        this.#ack(out, epoch, false, 'chunks do not match the manifest');
        return;
      }
      let delta: SpecDelta[] | null;
      try {
        delta = this.#checkEpoch(chunks);
      } catch (cause) {
        if (!(cause instanceof DecodeError)) throw cause;
        // Chunks that match their manifest yet do not decode or continue the image: forged. Nothing of it applies.
        this.stats.undecodableEpochs++;
        this.#pending.delete(epoch);
        this.#ack(out, epoch, false, `epoch does not decode: ${cause.message}`);
        return;
      }
      this.#apply(epoch, chunks, delta, nowUs, out);
      this.#pending.delete(epoch);
      this.#ack(out, epoch, true, '');
      if (this.options.traceEpochs === true) {
        const trace = { kind: 'epoch' as const, vmId: this.options.vmId, epoch };
        const here = { term: this.term, site: this.options.host };
        out.push({ kind: 'span', span: { trace, name: 'apply', ...here, parent: { name: 'transfer', term: this.term }, startUs: pending.firstAtUs, endUs: nowUs, attributes: { host: this.options.host, chunks: chunks.length } } });
        out.push({ kind: 'span', span: { trace, name: 'ack', ...here, parent: { name: 'apply', ...here }, startUs: nowUs, endUs: nowUs, attributes: { host: this.options.host } } });
      }
    }
  }

  /**
   * The epoch's speculative delta (null: none), once every part is checked
   * to decode and the delta to continue this buffer within its bound;
   * DecodeError otherwise, before anything is applied.
   */
  #checkEpoch(chunks: readonly CheckpointChunk[]): SpecDelta[] | null {
    for (const chunk of chunks) if (chunk.source === ChunkSource.PAGES) checkPages(chunk.data, this.image.pageCount);
    const parts = chunks.filter((c) => c.source === ChunkSource.SPEC).map((c) => c.data);
    if (parts.length === 0) return null;
    // The speculative delta is a byte stream split into chunks, decoded where it lies: the buffer keeps its bytes as views of the chunks.
    const deltas = decodeSpecDeltas({ pieces: parts });
    const seen = new Set<number>();
    for (const delta of deltas) {
      if (delta.connection === null) {
        if (deltas.length > 1 || runLength(delta.bytes) > 0) throw new DecodeError('speculative delta: bytes without a connection');
        continue;
      }
      if (seen.has(delta.connection.connId)) throw new DecodeError(`speculative delta: connection ${delta.connection.connId} twice`);
      seen.add(delta.connection.connId);
      // A buffer opens at the guest's SYN-ACK and stays open for the stream (a new role starts a new one, from a base).
      if (delta.connection.awaitingSynAck === true && this.specs.has(delta.connection.connId)) throw new DecodeError(`speculative delta: connection ${delta.connection.connId} awaits its SYN-ACK, and its buffer is open`);
      const deltaBytes = runLength(delta.bytes);
      if (deltaBytes === 0) continue;
      const spec = this.specs.get(delta.connection.connId)?.buffer ?? null;
      const endSeq = spec?.endSeq ?? delta.startSeq;
      if (delta.startSeq !== endSeq) throw new DecodeError(`speculative delta starts at ${delta.startSeq}, the buffer ends at ${endSeq}`);
      const keptBytes = spec === null ? 0 : spec.endSeq - Math.max(spec.startSeq, Math.min(delta.clientAckSeq, spec.endSeq));
      if (keptBytes + deltaBytes > this.options.specBufferBytes) throw new DecodeError(`speculative delta of ${deltaBytes} B overflows the ${this.options.specBufferBytes} B buffer`);
    }
    return deltas;
  }

  #apply(epoch: number, chunks: readonly CheckpointChunk[], deltas: SpecDelta[] | null, nowUs: number, out: Effect[]): void {
    const state: Uint8Array[] = [];
    const touched: number[] = [];
    for (const chunk of chunks) {
      if (chunk.source === ChunkSource.PAGES) for (const p of unpackPages(chunk.data, this.image)) touched.push(p);
      else if (chunk.source === ChunkSource.STATE) state.push(chunk.data);
    }
    // The state is a byte stream split into chunks: join.
    // Copied even when one chunk: the blob outlives the epoch, and a chunk's bytes may be a view of a transport buffer.
    this.stateBlob = Buffer.concat(state);
    for (const delta of deltas ?? []) if (delta.connection !== null) this.#applySpec(delta, delta.connection, epoch, nowUs, out);
    this.stats.appliedEpoch = epoch;
    this.#markReceived(touched);
    if (this.#missingPages === null && this.stats.syncedEpoch < this.stats.baseEpoch) this.stats.syncedEpoch = epoch;
    if (this.#digest !== null) {
      this.#digest.update(touched);
      this.digests.set(epoch, { memory: hex(this.#digest.digest()), state: hex(sha256(this.stateBlob)), spec: this.#specDigest() });
    }
  }

  /** Sampled bytes of the speculative buffer that this epoch brought: the packet is safe on the backup from now on. */
  #traceReplicated(connId: number, startOffset: number, endOffset: number, epoch: number, nowUs: number, out: Effect[]): void {
    // A base epoch brings the whole buffer, bytes its primary inherited from a checkpoint among them: no step of this term to follow from.
    const base = epoch === this.stats.baseEpoch;
    const parent = base ? null : { name: 'buffer' as const, term: this.term };
    for (let from = startOffset; ; ) {
      const offset = this.options.sampler!.sampledIn(connId, from, endOffset);
      if (offset === null) return;
      out.push({ kind: 'span', span: { trace: { kind: 'segment', vmId: this.options.vmId, connId, offset }, name: 'replicate', term: this.term, site: this.options.host, parent, startUs: nowUs, endUs: nowUs, attributes: { epoch, host: this.options.host, base } } });
      from = offset + 1;
    }
  }

  #markReceived(pages: readonly number[]): void {
    const missing = this.#missingPages;
    if (missing === null) return;
    for (const p of pages) {
      if (missing[p] === 1) {
        missing[p] = 0;
        this.#missingCount--;
      }
    }
    if (this.#missingCount === 0) this.#missingPages = null;
  }

  #applySpec(delta: SpecDelta, connection: AckerConnectionState, epoch: number, nowUs: number, out: Effect[]): void {
    if (connection.awaitingSynAck === true) {
      // Checked so (#checkEpoch): no bytes, and no buffer open.
      assert(runLength(delta.bytes) === 0 && !this.specs.has(connection.connId), () => `connection ${connection.connId} awaits its SYN-ACK with a buffer`);
      this.awaitingSynAck.set(connection.connId, connection);
      return;
    }
    this.awaitingSynAck.delete(connection.connId);
    const deltaBytes = runLength(delta.bytes);
    if (this.options.sampler !== undefined) this.#traceReplicated(connection.connId, delta.startSeq - 1, delta.startSeq - 1 + deltaBytes, epoch, nowUs, out);
    // The buffer exists from the connection on, even before its first byte: a promoted acker needs it.
    let replica = this.specs.get(connection.connId);
    if (replica === undefined) {
      replica = { buffer: new ViewQueue(this.options.specBufferBytes, delta.startSeq), connection };
      this.specs.set(connection.connId, replica);
    }
    replica.connection = connection;
    const spec = replica.buffer;
    // Free what the client acknowledged first: the primary's buffer never held more than its bound.
    spec.release(delta.clientAckSeq);
    if (deltaBytes > 0) {
      assert(delta.startSeq === spec.endSeq, () => `speculative delta starts at ${delta.startSeq}, buffer ends at ${spec.endSeq}`);
      assert(deltaBytes <= spec.freeBytes, () => `speculative buffer overflow: ${deltaBytes - spec.freeBytes} bytes of epoch beyond its bound`);
      spec.append(delta.bytes);
    }
    spec.release(delta.clientAckSeq);
  }

  /**
   * What a promoted acker takes over: the speculative buffer and the
   * connection as of the applied epoch, as SPEC chunks and their manifest
   * (an empty part when the backup saw no connection yet).
   */
  handoverChunks(term: number, chunkBytes: number): CheckpointChunk[] {
    const replicas = this.#replicas();
    const open: SpecDelta[] = replicas.map(({ buffer, connection }) => ({ startSeq: buffer.startSeq, clientAckSeq: buffer.startSeq, connection, bytes: buffer.views(buffer.startSeq, buffer.usedBytes) }));
    const awaiting: SpecDelta[] = [...this.awaitingSynAck.values()].map((connection) => ({ startSeq: 0, clientAckSeq: 0, connection, bytes: new Uint8Array(0) }));
    const deltas = [...open, ...awaiting].sort((a, b) => a.connection!.connId - b.connection!.connId);
    const part = encodeSpecDeltaChunks(deltas.length > 0 ? deltas : [{ startSeq: 0, clientAckSeq: 0, connection: null, bytes: new Uint8Array(0) }], chunkBytes);
    const header = { vmId: this.options.vmId, term, epoch: this.stats.appliedEpoch };
    const chunks = makeChunks(header, ChunkSource.SPEC, part);
    return [...chunks, makeManifest(header, chunks)];
  }

  /** The connections in id order. */
  #replicas(): SpecReplica[] {
    return [...this.specs.values()].sort((a, b) => a.connection.connId - b.connection.connId);
  }

  #specDigest(): string {
    return specBuffersDigest(this.#replicas().map((r) => ({ buffer: r.buffer, startSeq: r.buffer.startSeq, endSeq: r.buffer.endSeq })));
  }
}
