import { assert } from '../assert.js';
import { zeroedMemory } from '../memory/backing.js';
import { PAGE_BYTES } from '../memory/paged-memory.js';

/** What packPages needs of the backup's copy: each page to read, and a page sent becomes its new content. */
export interface PageSource {
  /** The page's content; read only. */
  page(index: number): Uint8Array;
  store(index: number, content: Uint8Array): void;
}

/** What a stale page reads as; never written. */
const ZERO_PAGE = new Uint8Array(PAGE_BYTES);

/**
 * The primary's copy of the backup's image, for deltas. A new backup starts
 * from an empty image; `reset` says so in O(pages / 4096) by marking every
 * page stale (a stale page reads as zeros and is not touched until a page
 * is stored there), instead of filling the whole copy: the first touch of
 * memory is a page fault, and filling 64 MiB that were never touched costs
 * ~200 ms in one guest input, seconds on a loaded machine. Pages that stay
 * zero (most of a new guest) are never touched at all. A new shadow starts
 * so too: its memory is zeros already, and a page read before any store
 * would cost a page fault of its own (an application dirtying pages at
 * random touches a new one each time, 10–20 µs apiece on a virtual machine).
 */
export class PageShadow implements PageSource {
  readonly bytes: Uint8Array;
  readonly pageCount: number;
  /** 1: the page holds the backup's content; 0: the backup holds zeros there (since the last reset). */
  readonly #current: Uint8Array;

  constructor(readonly sizeBytes: number) {
    assert(sizeBytes > 0 && sizeBytes % PAGE_BYTES === 0, () => `shadow size ${sizeBytes} is not a positive multiple of ${PAGE_BYTES}`);
    this.bytes = zeroedMemory(sizeBytes); // zeros: a shadow starts equal to an empty image
    this.pageCount = sizeBytes / PAGE_BYTES;
    this.#current = new Uint8Array(this.pageCount); // every page stale: read as ZERO_PAGE until stored
  }

  page(index: number): Uint8Array {
    assert(index >= 0 && index < this.pageCount, () => `page ${index} outside a ${this.pageCount}-page shadow`);
    if (this.#current[index] === 0) return ZERO_PAGE;
    return this.bytes.subarray(index * PAGE_BYTES, (index + 1) * PAGE_BYTES);
  }

  store(index: number, content: Uint8Array): void {
    assert(index >= 0 && index < this.pageCount && content.length === PAGE_BYTES, () => `storing ${content.length} B at page ${index} of a ${this.pageCount}-page shadow`);
    this.bytes.set(content, index * PAGE_BYTES);
    this.#current[index] = 1;
  }

  /** The backup's image is empty again (a new backup joins from a base epoch). */
  reset(): void {
    this.#current.fill(0);
  }
}
