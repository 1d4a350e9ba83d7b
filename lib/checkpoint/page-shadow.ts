import { assert } from '../assert.js';
import { PAGE_BYTES } from '../memory/paged-memory.js';

/** What packPages needs of the backup's copy: each page, writable, so a page sent becomes its new content. */
export interface PageSource {
  page(index: number): Uint8Array;
}

/**
 * The primary's copy of the backup's image, for deltas. A new backup starts
 * from an empty image; `reset` says so in O(pages / 4096) by marking every
 * page stale (a stale page reads as zeros, and is zeroed when first read),
 * instead of filling the whole copy: filling 64 MiB that were never touched
 * costs ~200 ms of page faults in one guest input, seconds on a loaded
 * machine. The memory, once touched, stays with the process.
 */
export class PageShadow implements PageSource {
  readonly bytes: Uint8Array;
  readonly pageCount: number;
  /** 1: the page holds the backup's content; 0: the backup holds zeros there (since the last reset). */
  readonly #current: Uint8Array;

  constructor(readonly sizeBytes: number) {
    assert(sizeBytes > 0 && sizeBytes % PAGE_BYTES === 0, () => `shadow size ${sizeBytes} is not a positive multiple of ${PAGE_BYTES}`);
    this.bytes = new Uint8Array(sizeBytes); // zeros: a shadow starts equal to an empty image
    this.pageCount = sizeBytes / PAGE_BYTES;
    this.#current = new Uint8Array(this.pageCount).fill(1);
  }

  page(index: number): Uint8Array {
    assert(index >= 0 && index < this.pageCount, () => `page ${index} outside a ${this.pageCount}-page shadow`);
    const view = this.bytes.subarray(index * PAGE_BYTES, (index + 1) * PAGE_BYTES);
    if (this.#current[index] === 0) {
      view.fill(0);
      this.#current[index] = 1;
    }
    return view;
  }

  /** The backup's image is empty again (a new backup joins from a base epoch). */
  reset(): void {
    this.#current.fill(0);
  }
}
