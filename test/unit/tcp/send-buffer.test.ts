import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../../lib/errors.js';
import { SendBuffer } from '../../../lib/tcp/send-buffer.js';

/** The byte the application writes at stream sequence number `seq`. */
const byteAt = (seq: number): number => (seq * 131 + 7) & 0xff;
const fillStream = (dst: Uint8Array, seq: number): void => {
  for (let i = 0; i < dst.length; i++) dst[i] = byteAt(seq + i);
};
const expected = (seq: number, len: number): number[] => Array.from({ length: len }, (_, i) => byteAt(seq + i));

type Op = { kind: 'write'; n: number } | { kind: 'release'; k: number } | { kind: 'copy'; a: number; b: number };
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('write' as const), n: fc.integer({ min: 0, max: 100 }) }),
  fc.record({ kind: fc.constant('release' as const), k: fc.nat() }),
  fc.record({ kind: fc.constant('copy' as const), a: fc.nat(), b: fc.nat() }),
);

describe('SendBuffer', () => {
  it('fills in at most two contiguous pieces and copies out exactly the bytes written, across any number of ring wraps', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 0, max: 1_000_000 }), fc.array(op, { maxLength: 200 }), (capacity, firstSeq, ops) => {
        const buf = new SendBuffer(capacity, firstSeq);
        let start = firstSeq;
        let end = firstSeq;
        for (const o of ops) {
          if (o.kind === 'write') {
            const pieces: [number, number][] = [];
            const took = buf.append(o.n, (dst, seq) => {
              pieces.push([seq, dst.length]);
              fillStream(dst, seq);
            });
            expect(took).toBe(Math.min(o.n, capacity - (end - start)));
            // At most two pieces (the ring wraps once), contiguous from the old end.
            expect(pieces.length).toBeLessThanOrEqual(2);
            let next = end;
            for (const [seq, n] of pieces) {
              expect(seq).toBe(next);
              next += n;
            }
            expect(next).toBe(end + took);
            end += took;
          } else if (o.kind === 'release') {
            // Anywhere from below the start to beyond the end.
            const seq = start - 2 + (o.k % (end - start + 5));
            buf.release(seq);
            start = Math.max(start, Math.min(seq, end));
          } else {
            const held = end - start;
            const a = start + (o.a % (held + 1));
            const len = o.b % (end - a + 1);
            expect(Array.from(buf.copyOut(a, len))).toEqual(expected(a, len));
            const views = buf.views(a, len).pieces;
            expect(views.length).toBeLessThanOrEqual(2);
            expect(views.flatMap((v) => Array.from(v))).toEqual(expected(a, len));
          }
          expect([buf.startSeq, buf.endSeq, buf.usedBytes, buf.freeBytes]).toEqual([start, end, end - start, capacity - (end - start)]);
        }
      }),
    );
  });

  it('copies out a range that wraps the end of the ring', () => {
    const buf = new SendBuffer(10, 0);
    buf.append(8, fillStream);
    buf.release(6);
    buf.append(6, fillStream); // stream [8, 14) occupies slots 8, 9, 0, 1, 2, 3
    expect(Array.from(buf.copyOut(7, 6))).toEqual(expected(7, 6));
  });

  it('views a range that wraps as the ring itself, in two pieces (no copy: a later write shows through)', () => {
    const buf = new SendBuffer(10, 0);
    buf.append(8, fillStream);
    buf.release(6);
    buf.append(6, fillStream);
    const { pieces } = buf.views(7, 6);
    expect(pieces.map((p) => p.length)).toEqual([3, 3]);
    expect(pieces.flatMap((p) => Array.from(p))).toEqual(expected(7, 6));
    expect(() => buf.views(5, 2)).toThrow(InvariantError);
  });

  it('splits a write that crosses the end of the ring into two pieces', () => {
    const buf = new SendBuffer(10, 0);
    buf.append(7, fillStream);
    buf.release(7);
    const calls: [number, number][] = [];
    buf.append(6, (dst, seq) => {
      calls.push([seq, dst.length]);
      fillStream(dst, seq);
    });
    expect(calls).toEqual([
      [7, 3],
      [10, 3],
    ]);
  });

  it('accepts only what fits and nothing when full', () => {
    const buf = new SendBuffer(5, 0);
    expect(buf.append(3, fillStream)).toBe(3);
    expect(buf.append(3, fillStream)).toBe(2);
    expect(buf.append(3, fillStream)).toBe(0);
    expect(buf.freeBytes).toBe(0);
  });

  it('returns a copy that later writes into the same ring slots do not change', () => {
    const buf = new SendBuffer(4, 0);
    buf.append(4, fillStream);
    const copy = buf.copyOut(0, 4);
    buf.release(4);
    buf.append(4, (dst) => dst.fill(0xee));
    expect(Array.from(copy)).toEqual(expected(0, 4));
  });

  it('refuses to copy out bytes already released or not yet written', () => {
    const buf = new SendBuffer(10, 0);
    buf.append(6, fillStream);
    buf.release(2);
    expect(() => buf.copyOut(1, 2)).toThrow(InvariantError);
    expect(() => buf.copyOut(4, 3)).toThrow(InvariantError);
  });

  it('ignores a release below the current start and clamps one beyond the end', () => {
    const buf = new SendBuffer(10, 100);
    buf.append(5, fillStream);
    buf.release(103);
    buf.release(101);
    expect(buf.startSeq).toBe(103);
    buf.release(1_000);
    expect(buf.startSeq).toBe(105);
    expect(buf.usedBytes).toBe(0);
  });
});
