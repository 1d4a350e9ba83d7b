import { chunkOrder, matchesManifest, MAX_HANDOVER_CHUNKS } from '../../lib/checkpoint/chunks.js';
import { decodeSpecDelta, type AckerConnectionState } from '../../lib/checkpoint/spec-delta.js';
import { ChunkSource, type CheckpointChunk } from '../../lib/codec/messages.js';

/** Chunks of one handover kept at most; beyond it the handover is dropped and asked for again. */

/** What a promoted acker takes over from the backup image: the speculative buffer and the connection. */
export interface Handover {
  /** The checkpoint the image holds: every byte of the buffer is committed. */
  readonly epoch: number;
  readonly startSeq: number;
  readonly bytes: Uint8Array;
  /** Null when the backup had no connection yet: the promoted acker starts afresh. */
  readonly connection: AckerConnectionState | null;
}

export interface HandoverStats {
  /** Chunks of another term, dropped. */
  staleTermChunks: number;
  /** Handovers whose chunks did not match their manifest, dropped (asked for again). */
  corrupt: number;
}

/**
 * Collects the guest's handover (SPEC chunks and a manifest, as a
 * checkpoint carries them) for one promotion and checks it against its
 * manifest before anything is taken.
 */
export class HandoverReceiver {
  readonly stats: HandoverStats = { staleTermChunks: 0, corrupt: 0 };
  #epoch = -1;
  readonly #chunks = new Map<number, CheckpointChunk>();
  #manifest: CheckpointChunk | null = null;

  constructor(readonly term: number) {}

  /** Adds a chunk; returns the handover once it is complete and verified, else null. */
  add(chunk: CheckpointChunk): Handover | null {
    if (chunk.term !== this.term) {
      this.stats.staleTermChunks++;
      return null;
    }
    // Every answer to a request is the same image: chunks of another epoch mean a newer answer, start over.
    if (chunk.epoch !== this.#epoch) {
      this.#epoch = chunk.epoch;
      this.#chunks.clear();
      this.#manifest = null;
    }
    if (chunk.source === ChunkSource.MANIFEST) this.#manifest = chunk;
    else if (chunk.source === ChunkSource.SPEC && this.#chunks.size < MAX_HANDOVER_CHUNKS) this.#chunks.set(chunk.index, chunk);
    const manifest = this.#manifest;
    if (manifest === null) return null;
    const chunks = [...this.#chunks.values()].sort(chunkOrder);
    if (chunks.length === 0 || chunks.length < chunks[0]!.count) return null;
    if (!matchesManifest(manifest, chunks)) {
      this.stats.corrupt++;
      this.#chunks.clear();
      this.#manifest = null;
      return null;
    }
    const delta = decodeSpecDelta(Buffer.concat(chunks.map((c) => c.data)));
    return { epoch: chunk.epoch, startSeq: delta.startSeq, bytes: delta.bytes, connection: delta.connection };
  }
}
