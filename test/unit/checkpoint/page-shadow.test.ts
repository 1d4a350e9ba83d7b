import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../../lib/checkpoint/hash.js';
import { InvariantError } from '../../../lib/errors.js';
import { packPages, unpackPages } from '../../../lib/checkpoint/page-chunks.js';
import { PageShadow } from '../../../lib/checkpoint/page-shadow.js';
import { PAGE_BYTES, PagedMemory } from '../../../lib/memory/paged-memory.js';

const PAGES = 8;
const MEMORY_BYTES = PAGES * PAGE_BYTES;

/** Writes `value` over page `page` of `memory` (a page of a constant, or a ramp when odd, so deltas differ). */
function fillPage(memory: PagedMemory, page: number, value: number): void {
  const bytes = new Uint8Array(PAGE_BYTES);
  for (let k = 0; k < PAGE_BYTES; k++) bytes[k] = value % 2 === 0 ? value : (value + k) & 0xff;
  memory.write(page * PAGE_BYTES, bytes);
}

describe('PageShadow', () => {
  it('keeps what was written to a page, and reads zeros everywhere after a reset', () => {
    const shadow = new PageShadow(MEMORY_BYTES);
    shadow.store(3, new Uint8Array(PAGE_BYTES).fill(7));
    expect(shadow.page(3).every((b) => b === 7)).toBe(true);
    shadow.reset();
    expect(shadow.page(3).every((b) => b === 0)).toBe(true);
    expect(shadow.bytes[3 * PAGE_BYTES], 'a reset does not touch the memory').toBe(7);
    shadow.store(3, new Uint8Array(PAGE_BYTES).fill(9));
    expect(shadow.page(3).every((b) => b === 9), 'a page stored after the reset keeps its content').toBe(true);
    expect(shadow.page(4).every((b) => b === 0)).toBe(true);
  });

  it('stores only the pages that changed: a new guest\'s zero pages stay untouched', () => {
    const memory = new PagedMemory(MEMORY_BYTES);
    fillPage(memory, 2, 5);
    fillPage(memory, 6, 3);
    const shadow = new PageShadow(MEMORY_BYTES);
    shadow.reset();
    const stored: number[] = [];
    const spy = { page: (i: number) => shadow.page(i), store: (i: number, content: Uint8Array) => (stored.push(i), shadow.store(i, content)) };
    const all = Array.from({ length: PAGES }, (_, i) => i);
    const backup = new PagedMemory(MEMORY_BYTES);
    for (const chunk of packPages(memory, spy, all, 4 * PAGE_BYTES).pieces) unpackPages(chunk, backup);
    expect(stored).toEqual([2, 6]);
    expect(bytesEqual(backup.bytes, memory.bytes)).toBe(true);
    // Sent again unchanged: nothing is stored.
    stored.length = 0;
    for (const chunk of packPages(memory, spy, all, 4 * PAGE_BYTES).pieces) unpackPages(chunk, backup);
    expect(stored).toEqual([]);
    expect(bytesEqual(backup.bytes, memory.bytes)).toBe(true);
  });

  it('reads zeros from a new shadow without touching its memory: one shared zero page until a page is stored', () => {
    const shadow = new PageShadow(MEMORY_BYTES);
    expect(shadow.page(1)).toBe(shadow.page(5));
    expect(shadow.page(1).every((b) => b === 0)).toBe(true);
    shadow.store(5, new Uint8Array(PAGE_BYTES).fill(4));
    expect(shadow.page(5)).not.toBe(shadow.page(1));
    expect(shadow.page(5).every((b) => b === 4)).toBe(true);
  });

  it('refuses a page outside the image', () => {
    expect(() => new PageShadow(MEMORY_BYTES).page(PAGES)).toThrow(InvariantError);
  });

  it('gives deltas that rebuild the memory on a backup that starts empty at each reset (a new backup joining)', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ base: fc.boolean(), writes: fc.array(fc.tuple(fc.integer({ min: 0, max: PAGES - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }) }), { minLength: 1, maxLength: 6 }), (epochs) => {
        const memory = new PagedMemory(MEMORY_BYTES);
        const shadow = new PageShadow(MEMORY_BYTES);
        let backup = new PagedMemory(MEMORY_BYTES);
        for (const { base, writes } of epochs) {
          for (const [page, value] of writes) fillPage(memory, page, value);
          let pages = memory.takeDirtyPages();
          if (base) {
            // A new backup: an empty image, and every page owed to it.
            shadow.reset();
            backup = new PagedMemory(MEMORY_BYTES);
            pages = Array.from({ length: PAGES }, (_, i) => i);
          }
          for (const chunk of packPages(memory, shadow, pages, 4 * PAGE_BYTES).pieces) unpackPages(chunk, backup);
          expect(bytesEqual(backup.bytes, memory.bytes)).toBe(true);
        }
      }),
    );
  });
});
