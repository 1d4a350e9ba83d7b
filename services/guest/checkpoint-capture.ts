import { makeChunks, splitBytes } from '../../lib/checkpoint/chunks.js';
import { hex, sha256 } from '../../lib/checkpoint/hash.js';
import { packPages } from '../../lib/checkpoint/page-chunks.js';
import { PageShadow } from '../../lib/checkpoint/page-shadow.js';
import { ChunkSource, type CheckpointChunk } from '../../lib/codec/messages.js';
import { PageDigest } from '../../lib/memory/page-digest.js';
import type { PagedMemory } from '../../lib/memory/paged-memory.js';

export interface CaptureOptions {
  readonly vmId: string;
  readonly chunkBytes: number;
  readonly pageDelta: boolean;
  /** Pages of a new backup's base image sent per epoch, beside the dirty ones. */
  readonly seedPagesPerEpoch: number;
  /** A simulator hook for tests that prove the backup's copy equal: one digest kept per epoch, for the whole run (a bounded simulated run; never set over NATS). */
  readonly recordDigests: boolean;
}

export interface ImageDigest {
  readonly memory: string;
  readonly state: string;
}

export interface CaptureStats {
  checkpoints: number;
  pagesSent: number;
  pageBytesRaw: number;
  pageBytesEncoded: number;
  /** Base-image pages sent to new backups (re-protection), beside dirty ones. */
  seedPagesSent: number;
}

/**
 * Stop-and-copy of one epoch, as the hypervisor does it: take the dirty
 * pages (XOR+RLE against the backup's copy when that is smaller) and the
 * guest's serialized device/TCP/app state, as hashed checkpoint chunks.
 */
export class CheckpointCapture {
  readonly stats: CaptureStats = { checkpoints: 0, pagesSent: 0, pageBytesRaw: 0, pageBytesEncoded: 0, seedPagesSent: 0 };
  /** Digest of the image each checkpoint describes (recordDigests only). */
  readonly digests = new Map<number, ImageDigest>();
  /** The backup's copy of every page, for deltas. */
  readonly #shadow: PageShadow | null;
  readonly #digest: PageDigest | null;
  /** Pages a new backup does not have yet (1 = owed); null when no base image is being sent. */
  #seedOwed: Uint8Array | null = null;
  #seedOwedCount = 0;
  #seedCursor = 0;

  constructor(
    readonly memory: PagedMemory,
    readonly options: CaptureOptions,
  ) {
    this.#shadow = options.pageDelta ? new PageShadow(memory.sizeBytes) : null;
    this.#digest = options.recordDigests ? new PageDigest(memory) : null;
  }

  /** Pages still owed to a new backup; 0 when none is catching up. */
  get seedPagesOwed(): number {
    return this.#seedOwedCount;
  }

  /**
   * A new backup joins with the next checkpoint: its image is empty, so
   * every page is owed to it. Deltas restart against an empty shadow, and
   * each checkpoint carries up to `seedPagesPerEpoch` owed pages besides
   * the dirty ones, until none is left (a dirty page pays its debt too).
   */
  startBase(): void {
    this.#shadow?.reset();
    this.#seedOwed = new Uint8Array(this.memory.pageCount).fill(1);
    this.#seedOwedCount = this.memory.pageCount;
    this.#seedCursor = 0;
  }

  capture(term: number, epoch: number, state: Uint8Array): CheckpointChunk[] {
    const header = { vmId: this.options.vmId, term, epoch };
    const pages = this.#withSeedPages(this.memory.takeDirtyPages());
    const packed = packPages(this.memory, this.#shadow, pages, this.options.chunkBytes);
    this.stats.checkpoints++;
    this.stats.pagesSent += pages.length;
    for (const c of packed.pieces) this.stats.pageBytesEncoded += c.length;
    for (const r of packed.rawBytes) this.stats.pageBytesRaw += r;
    if (this.#digest !== null) {
      this.#digest.update(pages);
      this.digests.set(epoch, { memory: hex(this.#digest.digest()), state: hex(sha256(state)) });
    }
    return [...makeChunks(header, ChunkSource.PAGES, packed), ...makeChunks(header, ChunkSource.STATE, { pieces: splitBytes(state, this.options.chunkBytes) })];
  }

  /** Adds this epoch's share of owed base pages to the dirty ones (sorted, no repeats). */
  #withSeedPages(dirty: number[]): number[] {
    const owed = this.#seedOwed;
    if (owed === null) return dirty;
    for (const p of dirty) {
      if (owed[p] === 1) {
        owed[p] = 0;
        this.#seedOwedCount--;
      }
    }
    const seeds: number[] = [];
    while (seeds.length < this.options.seedPagesPerEpoch && this.#seedCursor < owed.length) {
      const p = this.#seedCursor++;
      if (owed[p] === 1) {
        owed[p] = 0;
        this.#seedOwedCount--;
        seeds.push(p);
      }
    }
    this.stats.seedPagesSent += seeds.length;
    if (this.#seedOwedCount === 0) this.#seedOwed = null;
    return seeds.length === 0 ? dirty : [...dirty, ...seeds].sort((a, b) => a - b);
  }
}
