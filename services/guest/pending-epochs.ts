import { assert } from '../../lib/assert.js';
import { ChunkSource, type CheckpointChunk } from '../../lib/codec/messages.js';

/** An epoch a backup has staged parts of and not applied. */
export interface Pending {
  readonly chunks: ReadonlyMap<string, CheckpointChunk>;
  readonly manifest: CheckpointChunk | null;
  /** When its first part arrived: the apply span starts there. */
  readonly firstAtUs: number;
}

interface MutablePending extends Pending {
  readonly chunks: Map<string, CheckpointChunk>;
  manifest: CheckpointChunk | null;
  /** Bytes of chunk data it holds, its manifest's included. */
  bytes: number;
}

/** What staging a part did. */
export type StageResult =
  /** Taken; `evictedChunks` parts of later epochs were dropped to make room (the primary resends them). */
  | { readonly staged: true; readonly replaced: boolean; readonly evictedChunks: number }
  /** Refused: it does not fit the bound even with every later epoch gone. */
  | { readonly staged: false };

/**
 * The epochs a backup stages before it applies them: at most `maxEpochs`
 * epochs and `bytesMax` bytes of chunk data in all. A part that would pass
 * the byte bound makes room by dropping whole epochs after its own, the
 * latest first; without them it is refused. The epoch applied next so has
 * the whole bound to itself, and a bound one epoch's checkpoint fits in
 * costs resends, never progress. Epochs dropped or refused are counted by
 * the caller and sent again by the primary, which NACKs and probes ask for.
 */
export class PendingEpochs {
  readonly #epochs = new Map<number, MutablePending>();
  #bytes = 0;

  constructor(
    readonly maxEpochs: number,
    readonly bytesMax: number,
  ) {
    assert(Number.isSafeInteger(maxEpochs) && maxEpochs >= 1, () => `a bound of ${maxEpochs} pending epochs`);
    assert(Number.isSafeInteger(bytesMax) && bytesMax >= 1, () => `a bound of ${bytesMax} B of pending epochs`);
  }

  get size(): number {
    return this.#epochs.size;
  }

  /** Bytes of chunk data staged in all epochs. */
  get bytes(): number {
    return this.#bytes;
  }

  get(epoch: number): Pending | undefined {
    return this.#epochs.get(epoch);
  }

  /** The epochs staged, in no particular order. */
  epochs(): number[] {
    return [...this.#epochs.keys()];
  }

  /**
   * Stages a chunk or the manifest of its epoch, opening the epoch at `nowUs`
   * if it has none staged (the caller keeps within maxEpochs); a part held
   * already is replaced. A refused part leaves no empty epoch behind.
   */
  stage(chunk: CheckpointChunk, nowUs: number): StageResult {
    const epoch = chunk.epoch;
    let pending = this.#epochs.get(epoch);
    if (pending === undefined) {
      assert(this.#epochs.size < this.maxEpochs, () => `epoch ${epoch} opened beside ${this.#epochs.size} pending, bound ${this.maxEpochs}`);
      pending = { chunks: new Map(), manifest: null, firstAtUs: nowUs, bytes: 0 };
      this.#epochs.set(epoch, pending);
    }
    const manifest = chunk.source === ChunkSource.MANIFEST;
    const key = manifest ? '' : chunkKey(chunk);
    const held = manifest ? pending.manifest : pending.chunks.get(key);
    const growthBytes = chunk.data.length - (held?.data.length ?? 0);
    let evictedChunks = 0;
    if (this.#bytes + growthBytes > this.bytesMax) {
      const later = this.epochs().filter((e) => e > epoch).sort((a, b) => b - a);
      for (const e of later) {
        if (this.#bytes + growthBytes <= this.bytesMax) break;
        const dropped = this.#epochs.get(e)!;
        evictedChunks += dropped.chunks.size + (dropped.manifest === null ? 0 : 1);
        this.delete(e);
      }
      if (this.#bytes + growthBytes > this.bytesMax) {
        if (pending.chunks.size === 0 && pending.manifest === null) this.#epochs.delete(epoch);
        return { staged: false };
      }
    }
    if (manifest) pending.manifest = chunk;
    else pending.chunks.set(key, chunk);
    pending.bytes += growthBytes;
    this.#bytes += growthBytes;
    assert(this.#bytes <= this.bytesMax, () => `${this.#bytes} B pending, bound ${this.bytesMax} B`);
    return { staged: true, replaced: held !== undefined && held !== null, evictedChunks };
  }

  delete(epoch: number): void {
    const pending = this.#epochs.get(epoch);
    if (pending === undefined) return;
    this.#bytes -= pending.bytes;
    this.#epochs.delete(epoch);
    assert(this.#bytes >= 0, () => `${this.#bytes} B pending after epoch ${epoch} went`);
  }
}

/** A chunk's place in its epoch. */
function chunkKey(chunk: CheckpointChunk): string {
  return `${chunk.source}/${chunk.index}`;
}
