import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../../lib/errors.js';
import { PAGE_BYTES, PagedMemory } from '../../../lib/memory/paged-memory.js';

const PAGES = 12;

describe('PagedMemory dirty tracking', () => {
  it('marks exactly the pages a write touches, and takeDirtyPages returns them ascending and starts over', () => {
    const touch = fc.record({ addr: fc.integer({ min: 0, max: PAGES * PAGE_BYTES - 1 }), len: fc.integer({ min: 0, max: 3 * PAGE_BYTES }), viaMark: fc.boolean() });
    fc.assert(
      fc.property(fc.array(fc.array(touch, { maxLength: 8 }), { minLength: 1, maxLength: 4 }), (rounds) => {
        const memory = new PagedMemory(PAGES * PAGE_BYTES);
        for (const touches of rounds) {
          const expected = new Set<number>();
          for (const t of touches) {
            const len = Math.min(t.len, PAGES * PAGE_BYTES - t.addr);
            if (t.viaMark) memory.markDirty(t.addr, len);
            else memory.write(t.addr, new Uint8Array(len).fill(1));
            for (let p = Math.floor(t.addr / PAGE_BYTES); len > 0 && p <= Math.floor((t.addr + len - 1) / PAGE_BYTES); p++) expected.add(p);
          }
          expect(memory.dirtyPageCount).toBe(expected.size);
          expect(memory.takeDirtyPages()).toEqual([...expected].sort((a, b) => a - b));
          expect(memory.dirtyPageCount).toBe(0);
          expect(memory.takeDirtyPages()).toEqual([]);
        }
      }),
    );
  });

  it('marks both pages of a write across a page boundary, and none for an empty write', () => {
    const memory = new PagedMemory(3 * PAGE_BYTES);
    memory.write(PAGE_BYTES - 1, new Uint8Array(2));
    memory.markDirty(2 * PAGE_BYTES, 0);
    expect(memory.takeDirtyPages()).toEqual([0, 1]);
    memory.write(2 * PAGE_BYTES - 1, new Uint8Array(1));
    expect(memory.takeDirtyPages()).toEqual([1]);
  });

  it('does not mark a page written through a region view until markDirty', () => {
    const memory = new PagedMemory(2 * PAGE_BYTES);
    const view = memory.region(PAGE_BYTES + 8, 4);
    view.set([1, 2, 3, 4]);
    expect(memory.dirtyPageCount).toBe(0);
    expect(memory.page(1)[8]).toBe(1);
    memory.markDirty(PAGE_BYTES + 8, 4);
    expect(memory.takeDirtyPages()).toEqual([1]);
  });

  it('gives page views of PAGE_BYTES onto the memory', () => {
    const memory = new PagedMemory(2 * PAGE_BYTES);
    memory.write(PAGE_BYTES, new Uint8Array([42]));
    expect(memory.page(1)).toHaveLength(PAGE_BYTES);
    expect(memory.page(1)[0]).toBe(42);
    expect(memory.pageCount).toBe(2);
  });

  it('rejects a size that is not a positive multiple of the page size, and a region outside memory', () => {
    expect(() => new PagedMemory(PAGE_BYTES + 1)).toThrow(InvariantError);
    expect(() => new PagedMemory(0)).toThrow(InvariantError);
    expect(() => new PagedMemory(PAGE_BYTES).region(PAGE_BYTES - 2, 4)).toThrow(InvariantError);
  });
});
