import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { joinRun } from '../../../lib/checkpoint/byte-run.js';
import { ViewQueue } from '../../../lib/checkpoint/view-queue.js';
import { InvariantError } from '../../../lib/errors.js';

/** Stream byte `seq` of the test's stream. */
const streamByte = (seq: number) => (seq * 131 + 7) & 0xff;
const streamBytes = (seq: number, n: number) => Uint8Array.from({ length: n }, (_, i) => streamByte(seq + i));

type Op = { kind: 'append'; pieces: number[] } | { kind: 'release'; by: number } | { kind: 'read'; from: number; len: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), pieces: fc.array(fc.nat({ max: 300 }), { maxLength: 4 }) }),
  fc.record({ kind: fc.constant('release' as const), by: fc.nat({ max: 700 }) }),
  fc.record({ kind: fc.constant('read' as const), from: fc.nat(), len: fc.nat() }),
);

describe('a view queue: a backup speculative buffer that keeps the chunks it was given', () => {
  it('holds exactly the stream bytes [startSeq, endSeq) through any appends, releases and reads', () => {
    fc.assert(
      fc.property(fc.nat({ max: 5000 }), fc.integer({ min: 1, max: 1500 }), fc.array(op, { maxLength: 60 }), (firstSeq, capacityBytes, ops) => {
        const q = new ViewQueue(capacityBytes, firstSeq);
        let start = firstSeq;
        let end = firstSeq;
        for (const o of ops) {
          if (o.kind === 'append') {
            // Pieces cut from one array of the stream, as chunks carry an epoch's bytes; as many as fit.
            let total = o.pieces.reduce((a, b) => a + b, 0);
            total = Math.min(total, capacityBytes - (end - start));
            const data = streamBytes(end, total);
            const pieces: Uint8Array[] = [];
            let at = 0;
            for (const n of o.pieces) {
              const k = Math.min(n, total - at);
              pieces.push(data.subarray(at, at + k));
              at += k;
            }
            q.append({ pieces });
            end += total;
          } else if (o.kind === 'release') {
            q.release(start + o.by);
            start = Math.min(end, Math.max(start, start + o.by));
          } else {
            const used = end - start;
            const from = used === 0 ? 0 : o.from % used;
            const len = o.len % (used - from + 1);
            expect(joinRun(q.views(start + from, len))).toEqual(streamBytes(start + from, len));
          }
          expect([q.startSeq, q.endSeq, q.usedBytes, q.freeBytes]).toEqual([start, end, end - start, capacityBytes - (end - start)]);
        }
        expect(q.copyOut(start, end - start)).toEqual(streamBytes(start, end - start));
      }),
    );
  });

  it('copies nothing in: its views are of the arrays appended', () => {
    const chunk = streamBytes(100, 64);
    const q = new ViewQueue(1024, 100);
    q.append(chunk.subarray(0, 40));
    q.append({ pieces: [chunk.subarray(40, 50), chunk.subarray(50, 64)] });
    const run = q.views(110, 35);
    expect(run.pieces.map((p) => [p.buffer === chunk.buffer, p.byteOffset - chunk.byteOffset, p.length])).toEqual([
      [true, 10, 30],
      [true, 40, 5],
    ]);
  });

  it('copyOut gives a copy, not a view of a chunk', () => {
    const chunk = streamBytes(0, 16);
    const q = new ViewQueue(64, 0);
    q.append(chunk);
    const copy = q.copyOut(0, 16);
    chunk[0] = chunk[0]! ^ 0xff;
    expect(copy[0]).toBe(streamByte(0));
  });

  it('refuses bytes past its bound and reads outside what it holds', () => {
    const q = new ViewQueue(10, 5);
    q.append(streamBytes(5, 8));
    expect(() => q.append(streamBytes(13, 3))).toThrow(InvariantError);
    expect(() => q.views(4, 2)).toThrow(InvariantError);
    expect(() => q.views(12, 2)).toThrow(InvariantError);
    q.release(9);
    expect(() => q.views(8, 1)).toThrow(InvariantError);
    expect(joinRun(q.views(9, 4))).toEqual(streamBytes(9, 4));
  });

  it('keeps the piece list short however long it runs', () => {
    const q = new ViewQueue(4096, 0);
    let seq = 0;
    for (let i = 0; i < 10_000; i++) {
      q.append(streamBytes(seq, 100));
      seq += 100;
      q.release(seq - 300);
    }
    expect(q.usedBytes).toBe(300);
    // Three pieces hold what is used; released ones are dropped from the front in batches.
    expect(q.views(seq - 300, 300).pieces.length).toBe(3);
    expect(q.listLength).toBeLessThanOrEqual(2 * 3 + 64);
    expect(joinRun(q.views(seq - 300, 300))).toEqual(streamBytes(seq - 300, 300));
  });
});
