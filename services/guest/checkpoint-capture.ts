import { makeChunks, splitBytes } from '../../lib/checkpoint/chunks.js';
import { hex, sha256 } from '../../lib/checkpoint/hash.js';
import { packPages } from '../../lib/checkpoint/page-chunks.js';
import { ChunkSource, type CheckpointChunk } from '../../lib/codec/messages.js';
import { PageDigest } from '../../lib/memory/page-digest.js';
import { PagedMemory } from '../../lib/memory/paged-memory.js';

export interface CaptureOptions {
  readonly vmId: string;
  readonly chunkBytes: number;
  readonly pageDelta: boolean;
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
}

/**
 * Stop-and-copy of one epoch, as the hypervisor does it: take the dirty
 * pages (XOR+RLE against the backup's copy when that is smaller) and the
 * guest's serialized device/TCP/app state, as hashed checkpoint chunks.
 */
export class CheckpointCapture {
  readonly stats: CaptureStats = { checkpoints: 0, pagesSent: 0, pageBytesRaw: 0, pageBytesEncoded: 0 };
  /** Digest of the image each checkpoint describes (recordDigests only). */
  readonly digests = new Map<number, ImageDigest>();
  /** The backup's copy of every page, for deltas. */
  readonly #shadow: PagedMemory | null;
  readonly #digest: PageDigest | null;

  constructor(
    readonly memory: PagedMemory,
    readonly options: CaptureOptions,
  ) {
    this.#shadow = options.pageDelta ? new PagedMemory(memory.sizeBytes) : null;
    this.#digest = options.recordDigests ? new PageDigest(memory) : null;
  }

  capture(term: number, epoch: number, state: Uint8Array): CheckpointChunk[] {
    const header = { vmId: this.options.vmId, term, epoch };
    const pages = this.memory.takeDirtyPages();
    const packed = packPages(this.memory, this.#shadow, pages, this.options.chunkBytes);
    this.stats.checkpoints++;
    this.stats.pagesSent += pages.length;
    for (const c of packed.chunks) this.stats.pageBytesEncoded += c.length;
    for (const r of packed.rawBytes) this.stats.pageBytesRaw += r;
    if (this.#digest !== null) {
      this.#digest.update(pages);
      this.digests.set(epoch, { memory: hex(this.#digest.digest()), state: hex(sha256(state)) });
    }
    return [...makeChunks(header, ChunkSource.PAGES, packed.chunks, packed.rawBytes), ...makeChunks(header, ChunkSource.STATE, splitBytes(state, this.options.chunkBytes))];
  }
}
