import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../../../lib/checkpoint/byte-writer.js';

describe('ByteWriter', () => {
  it('gives back exactly what was written, take after take, whatever its initial size', () => {
    fc.assert(
      fc.property(fc.nat(64), fc.array(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), { maxLength: 6 }), (initialBytes, rounds) => {
        const w = new ByteWriter(initialBytes);
        for (const pieces of rounds) {
          for (const p of pieces) w.bytes(p);
          const expected = Buffer.concat(pieces);
          expect(w.length).toBe(expected.length);
          expect(Buffer.from(w.take())).toEqual(expected);
          expect(w.length).toBe(0);
        }
      }),
    );
  });

  it('hands over a buffer at least half full without copying, and copies from an emptier one', () => {
    const w = new ByteWriter(8);
    w.bytes([1, 2, 3, 4, 5]);
    const full = w.take();
    w.bytes([9]);
    expect(Array.from(full)).toEqual([1, 2, 3, 4, 5]); // not overwritten by the next write
    expect(full.buffer.byteLength).toBe(8);
    w.bytes([7]);
    const sparse = w.take();
    expect(Array.from(sparse)).toEqual([9, 7]);
    expect(sparse.buffer.byteLength).toBe(2);
  });

  it('writes varints as protobuf does', () => {
    const w = new ByteWriter();
    for (const v of [0, 1, 127, 128, 300, 2 ** 35]) w.varint(v);
    expect(Array.from(w.take())).toEqual([0, 1, 127, 0x80, 1, 0xac, 2, 0x80, 0x80, 0x80, 0x80, 0x80, 1]);
  });
});
