import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../../lib/errors.js';
import { recycling, zeroedMemory } from '../../../lib/memory/backing.js';
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
    expect(() => recycling(() => recycling(() => 0))).toThrow(InvariantError);
    expect(() => zeroedMemory(PAGE_BYTES + 1)).toThrow(InvariantError);
  });
});
