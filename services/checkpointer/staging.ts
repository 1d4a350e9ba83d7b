import { chunkCountFits, chunkOrder } from '../../lib/checkpoint/chunks.js';
import type { CheckpointChunk, ChunkSource } from '../../lib/codec/messages.js';

/**
 * The parts of one checkpoint as its sources (guest, acker) deliver them.
 * Complete when every expected source has sent all of its chunks.
 */
export class StagedCheckpoint {
  readonly #parts = new Map<ChunkSource, Map<number, CheckpointChunk>>();
  bytes = 0;
  rawBytes = 0;
  /** Distinct chunks added so far: progress, which a repeat does not make. */
  chunksAdded = 0;

  constructor(
    readonly epoch: number,
    readonly expectedSources: readonly ChunkSource[],
    /** Chunks one source sends at most (maxChunksPerSource): each source's map holds no more. */
    readonly maxChunksPerSource: number,
  ) {}

  /**
   * Adds a chunk. 'repeat': its (source, index) is held already, and it is
   * ignored. 'foreign': another epoch's or an unexpected source's.
   * 'malformed': its index and count fit no checkpoint, or its count is not
   * its source's (forged, refused).
   */
  add(chunk: CheckpointChunk): 'added' | 'repeat' | 'foreign' | 'malformed' {
    if (chunk.epoch !== this.epoch || !this.expectedSources.includes(chunk.source)) return 'foreign';
    if (!chunkCountFits(chunk, this.maxChunksPerSource)) return 'malformed';
    let part = this.#parts.get(chunk.source);
    if (part === undefined) {
      part = new Map();
      this.#parts.set(chunk.source, part);
    } else if ((part.values().next().value as CheckpointChunk).count !== chunk.count) return 'malformed';
    if (part.has(chunk.index)) return 'repeat';
    part.set(chunk.index, chunk);
    this.chunksAdded++;
    this.bytes += chunk.data.length;
    this.rawBytes += chunk.rawBytes;
    return 'added';
  }

  get complete(): boolean {
    return this.expectedSources.every((source) => this.#hasAll(source));
  }

  /** The sources held in full, as a bit set (bit 1 << source): what a repeated barrier need not ask for. */
  get completeSources(): number {
    let bits = 0;
    for (const source of this.expectedSources) if (this.#hasAll(source)) bits |= 1 << source;
    return bits;
  }

  #hasAll(source: ChunkSource): boolean {
    const part = this.#parts.get(source);
    if (part === undefined) return false;
    const first = part.values().next().value as CheckpointChunk;
    return part.size === first.count;
  }

  /** All chunks in manifest order. */
  chunks(): CheckpointChunk[] {
    return [...this.#parts.values()].flatMap((part) => [...part.values()]).sort(chunkOrder);
  }
}
