import { sha256 } from '../checkpoint/hash.js';
import type { PagedMemory } from './paged-memory.js';

const HASH_BYTES = 32;

/**
 * An incremental digest of a whole memory: a hash per page, refreshed only
 * for pages that changed, and a hash over all page hashes. Both hosts keep
 * one to prove the backup's image equals the primary's.
 */
export class PageDigest {
  readonly #pageHashes: Uint8Array;

  constructor(readonly memory: PagedMemory) {
    this.#pageHashes = new Uint8Array(memory.pageCount * HASH_BYTES);
    const zero = sha256(memory.page(0).slice().fill(0));
    for (let p = 0; p < memory.pageCount; p++) this.#pageHashes.set(zero, p * HASH_BYTES);
  }

  update(pages: Iterable<number>): void {
    for (const p of pages) this.#pageHashes.set(sha256(this.memory.page(p)), p * HASH_BYTES);
  }

  digest(): Uint8Array {
    return sha256(this.#pageHashes);
  }
}
