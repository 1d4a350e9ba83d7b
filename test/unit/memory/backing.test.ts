import { describe, expect, it } from 'vitest';
import { prefaultMemories, recycling, zeroedMemory } from '../../../lib/memory/backing.js';
import { PAGE_BYTES, PagedMemory } from '../../../lib/memory/paged-memory.js';

const SIZE = 64 * PAGE_BYTES;

describe('guest memory backing', () => {
  it('gives fresh zeroed arrays outside a recycling scope', () => {
    const a = zeroedMemory(SIZE);
    a.fill(7);
    const b = zeroedMemory(SIZE);
    expect(b).not.toBe(a);
    expect(b.every((x) => x === 0)).toBe(true);
  });

  it('reuses what an earlier run gave back, zeroed wherever it was written', () => {
    const first = recycling(() => {
      const m = new PagedMemory(SIZE);
      m.write(5, new Uint8Array([1, 2, 3]));
      m.write(SIZE - 1, new Uint8Array([9]));
      m.bytes.fill(4, 10 * PAGE_BYTES, 12 * PAGE_BYTES + 17);
      return m.bytes;
    });
    const second = recycling(() => new PagedMemory(SIZE).bytes);
    expect(second).toBe(first);
    expect(second.every((x) => x === 0)).toBe(true);
  });

  it('keeps what a run that threw still held', () => {
    let held: Uint8Array | null = null;
    expect(() =>
      recycling(() => {
        held = zeroedMemory(SIZE);
        held.fill(1);
        throw new Error('run failed');
      }),
    ).toThrow('run failed');
    const next = recycling(() => zeroedMemory(SIZE));
    expect(next).not.toBe(held);
    expect(held!.every((x) => x === 1)).toBe(true);
  });

  it('refuses nested scopes and sizes that are not whole pages', () => {
    expect(() => recycling(() => recycling(() => 0))).toThrow();
    expect(() => zeroedMemory(PAGE_BYTES + 1)).toThrow();
  });

  it('faults a memory in when made, when asked to (a long-lived service), and leaves it to the first write otherwise', () => {
    const bytes = 128 * 1024 * 1024;
    const residentGrowth = (make: () => Uint8Array) => {
      const before = process.memoryUsage.rss();
      const m = make();
      const grown = process.memoryUsage.rss() - before;
      expect(m.length).toBe(bytes);
      return grown;
    };
    expect(residentGrowth(() => zeroedMemory(bytes))).toBeLessThan(bytes / 4);
    prefaultMemories(true);
    try {
      const m = zeroedMemory(bytes);
      expect(m.every((x) => x === 0)).toBe(true);
      expect(residentGrowth(() => zeroedMemory(bytes))).toBeGreaterThan(bytes * 0.9);
    } finally {
      prefaultMemories(false);
    }
  });
});
