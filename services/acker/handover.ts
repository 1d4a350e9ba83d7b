import { chunkOrder, matchesManifest, MAX_HANDOVER_CHUNKS } from '../../lib/checkpoint/chunks.js';
import type { ByteRun } from '../../lib/checkpoint/byte-run.js';
import { runLength } from '../../lib/checkpoint/byte-run.js';
import { decodeSpecDeltas, type AckerConnectionState } from '../../lib/checkpoint/spec-delta.js';
import { DecodeError } from '../../lib/errors.js';
import { ChunkSource, type CheckpointChunk } from '../../lib/codec/messages.js';

/** One connection a promoted acker takes over: its speculative buffer [startSeq, startSeq + runLength(bytes)) and its state. */
export interface HandoverConnection {
  readonly startSeq: number;
  readonly bytes: ByteRun;
  readonly connection: AckerConnectionState;
}

/** What a promoted acker takes over from the backup image: each connection's speculative buffer and state. */
export interface Handover {
  /** The checkpoint the image holds: every byte of the buffers is committed. */
  readonly epoch: number;
  /** Empty when the backup had no connection yet: the promoted acker starts afresh. */
  readonly connections: readonly HandoverConnection[];
}

/** Counted into the acker's stats, which outlive each promotion's receiver. */
export interface HandoverStats {
  /** Handover chunks of another term, dropped. */
  handoverStaleTermChunks: number;
  /** Handovers whose chunks did not match their manifest or did not decode, dropped (asked for again). */
  handoversCorrupt: number;
}

/**
 * Collects the guest's handover (SPEC chunks and a manifest, as a
 * checkpoint carries them) for one promotion and checks it against its
 * manifest before anything is taken.
 */
export class HandoverReceiver {
  #epoch = -1;
  readonly #chunks = new Map<number, CheckpointChunk>();
  #manifest: CheckpointChunk | null = null;

  constructor(
    readonly term: number,
    /** The speculative buffer's bound: a handover holding more than it per connection is no backup's, refused. */
    readonly capacityBytes: number,
    readonly stats: HandoverStats,
  ) {}

  /** Adds a chunk; returns the handover once it is complete and verified, else null. */
  add(chunk: CheckpointChunk): Handover | null {
    if (chunk.term !== this.term) {
      this.stats.handoverStaleTermChunks++;
      return null;
    }
    // Every answer to a request is the same image: chunks of another epoch mean a newer answer, start over.
    if (chunk.epoch !== this.#epoch) {
      this.#epoch = chunk.epoch;
      this.#chunks.clear();
      this.#manifest = null;
    }
    if (chunk.source === ChunkSource.SPEC && (chunk.count > MAX_HANDOVER_CHUNKS || chunk.index >= chunk.count)) {
      // No handover has that many chunks (the config keeps every buffer within MAX_HANDOVER_CHUNKS): forged. Keeping it would stall the handover for good.
      this.stats.handoversCorrupt++;
      return null;
    }
    if (chunk.source === ChunkSource.MANIFEST) this.#manifest = chunk;
    else if (chunk.source === ChunkSource.SPEC) this.#chunks.set(chunk.index, chunk);
    else {
      // A handover carries the speculative part alone: another source is no answer of a guest.
      this.stats.handoversCorrupt++;
      return null;
    }
    const manifest = this.#manifest;
    if (manifest === null) return null;
    const chunks = [...this.#chunks.values()].sort(chunkOrder);
    if (chunks.length === 0 || chunks.length < chunks[0]!.count) return null;
    if (!matchesManifest(manifest, chunks)) {
      this.stats.handoversCorrupt++;
      this.#chunks.clear();
      this.#manifest = null;
      return null;
    }
    try {
      const deltas = decodeSpecDeltas({ pieces: chunks.map((c) => c.data) });
      const connections = deltas.flatMap((d) => (d.connection === null ? [] : [{ startSeq: d.startSeq, bytes: d.bytes, connection: d.connection }]));
      if (new Set(connections.map((c) => c.connection.connId)).size !== connections.length) throw new DecodeError('handover: a connection twice');
      const over = connections.find((c) => runLength(c.bytes) > this.capacityBytes);
      if (over !== undefined) throw new DecodeError(`handover: ${runLength(over.bytes)} B for connection ${over.connection.connId}, over the ${this.capacityBytes} B buffer`);
      return { epoch: chunk.epoch, connections };
    } catch (cause) {
      if (!(cause instanceof DecodeError)) throw cause;
      this.stats.handoversCorrupt++;
      this.#chunks.clear();
      this.#manifest = null;
      return null;
    }
  }
}
