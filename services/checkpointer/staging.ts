import { chunkOrder } from '../../lib/checkpoint/chunks.js';
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
  ) {}

  /** Adds a chunk; a repeated (source, index) is ignored. Returns false if it does not belong here. */
  add(chunk: CheckpointChunk): boolean {
    if (chunk.epoch !== this.epoch || !this.expectedSources.includes(chunk.source)) return false;
    let part = this.#parts.get(chunk.source);
    if (part === undefined) {
      part = new Map();
      this.#parts.set(chunk.source, part);
    }
    if (part.has(chunk.index)) return true;
    part.set(chunk.index, chunk);
    this.chunksAdded++;
    this.bytes += chunk.data.length;
    this.rawBytes += chunk.rawBytes;
    return true;
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
