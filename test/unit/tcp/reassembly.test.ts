import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Reassembly } from '../../../lib/tcp/reassembly.js';

const concat = (chunks: readonly Uint8Array[]): number[] => chunks.flatMap((c) => Array.from(c));

/** A byte string at stream offset `base`, and pieces of it as [start, end) offsets into it. */
interface Scenario {
  readonly base: number;
  readonly data: Uint8Array;
  readonly pieces: readonly (readonly [number, number])[];
}

const rangeIn = (len: number) =>
  fc.tuple(fc.integer({ min: 0, max: len }), fc.integer({ min: 0, max: len })).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const);

/** Arbitrary pieces (overlapping, duplicated, empty, in any order) that may leave holes. */
const anyPieces: fc.Arbitrary<Scenario> = fc
  .tuple(fc.integer({ min: 0, max: 1_000_000 }), fc.uint8Array({ minLength: 1, maxLength: 200 }))
  .chain(([base, data]) => fc.record({ base: fc.constant(base), data: fc.constant(data), pieces: fc.array(rangeIn(data.length), { maxLength: 30 }) }));

/** A partition of the string plus extra overlapping pieces, shuffled: together they cover it all. */
const coveringPieces: fc.Arbitrary<Scenario> = fc
  .tuple(fc.integer({ min: 0, max: 1_000_000 }), fc.uint8Array({ minLength: 1, maxLength: 200 }))
  .chain(([base, data]) =>
    fc
      .tuple(fc.uniqueArray(fc.integer({ min: 0, max: data.length }), { maxLength: 20 }), fc.array(rangeIn(data.length), { maxLength: 20 }))
      .chain(([cuts, extra]) => {
        const points = [...new Set([0, ...cuts, data.length])].sort((a, b) => a - b);
        const partition = points.slice(1).map((end, i) => [points[i]!, end] as const);
        const all = [...partition, ...extra];
        return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }).map((pieces) => ({ base, data, pieces }));
      }),
  );

const insertAll = (r: Reassembly, s: Scenario) => {
  for (const [a, b] of s.pieces) r.insert(s.base + a, s.data.subarray(a, b));
};

/** Offsets of the string covered by at least one piece. */
const covered = (s: Scenario): boolean[] => {
  const c = new Array<boolean>(s.data.length).fill(false);
  for (const [a, b] of s.pieces) for (let i = a; i < b; i++) c[i] = true;
  return c;
};

describe('Reassembly', () => {
  it('pulls back exactly the original bytes once, whatever pieces cover them and in whatever order', () => {
    fc.assert(
      fc.property(coveringPieces, (s) => {
        const r = new Reassembly();
        insertAll(r, s);
        expect(concat(r.pull(s.base))).toEqual(Array.from(s.data));
        expect(r.isEmpty).toBe(true);
        expect(r.bytes).toBe(0);
        expect(r.pull(s.base + s.data.length)).toEqual([]);
      }),
    );
  });

  it('counts each held byte once, however often it was inserted', () => {
    fc.assert(
      fc.property(anyPieces, (s) => {
        const r = new Reassembly();
        const c = new Array<boolean>(s.data.length).fill(false);
        for (const [a, b] of s.pieces) {
          r.insert(s.base + a, s.data.subarray(a, b));
          for (let i = a; i < b; i++) c[i] = true;
          expect(r.bytes).toBe(c.filter(Boolean).length);
        }
      }),
    );
  });

  it('pulls the contiguous run from any point and keeps only what lies beyond the first hole', () => {
    fc.assert(
      fc.property(anyPieces, fc.nat(), (s, k) => {
        const c = covered(s);
        const from = k % (s.data.length + 1);
        let runEnd = from;
        while (runEnd < c.length && c[runEnd]) runEnd++;
        const r = new Reassembly();
        insertAll(r, s);
        expect(concat(r.pull(s.base + from))).toEqual(Array.from(s.data.subarray(from, runEnd)));
        expect(r.bytes).toBe(c.slice(runEnd).filter(Boolean).length);
      }),
    );
  });

  it('returns nothing when the next expected byte is missing', () => {
    const r = new Reassembly();
    r.insert(110, new Uint8Array([1, 2, 3]));
    expect(r.pull(100)).toEqual([]);
    expect(r.bytes).toBe(3);
  });

  it('drops held bytes that lie wholly below the point pulled from', () => {
    const r = new Reassembly();
    r.insert(100, new Uint8Array([1, 2]));
    r.insert(200, new Uint8Array([3]));
    expect(r.pull(150)).toEqual([]);
    expect(r.bytes).toBe(1);
    expect(concat(r.pull(200))).toEqual([3]);
  });

  it('keeps the first copy of a byte when a later overlapping piece disagrees', () => {
    // Retransmissions carry the same bytes; if they ever did not, the first one wins.
    const r = new Reassembly();
    r.insert(10, new Uint8Array([1, 1, 1]));
    r.insert(9, new Uint8Array([2, 2, 2, 2, 2]));
    expect(concat(r.pull(9))).toEqual([2, 1, 1, 1, 2]);
  });
});
