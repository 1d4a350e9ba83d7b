import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RunReader, copyFromRun, joinRun, runLength, type ByteRun } from '../../../lib/checkpoint/byte-run.js';
import { decodeSpecDeltas, encodeSpecDeltas, type AckerConnectionState } from '../../../lib/checkpoint/spec-delta.js';
import { DecodeError } from '../../../lib/errors.js';

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** `data` cut at the given offsets (sorted, deduplicated), as pieces that view it. */
function cut(data: Uint8Array, offsets: readonly number[]): ByteRun {
  const points = [...new Set([0, ...offsets.filter((o) => o > 0 && o < data.length), data.length])].sort((a, b) => a - b);
  return { pieces: points.slice(1).map((end, i) => data.subarray(points[i]!, end)) };
}

const connection: AckerConnectionState = { connId: 1, clientWscale: 7, clientSynWindow: 65535, guestOfferedWscale: true, clientNxt: 100, guestHeader: { epoch: 3, ack: 100, window: 512, tsValUs: 9, tsEcrUs: 8 } };

describe('byte runs: bytes in pieces, read as one stream', () => {
  it('copies, joins and measures a run wherever it is cut', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 600 }), fc.array(fc.nat({ max: 600 }), { maxLength: 6 }), fc.nat(), fc.nat(), (n, offsets, a, b) => {
        const data = bytes(n, 5);
        const run = cut(data, offsets);
        expect(runLength(run)).toBe(n);
        expect(joinRun(run)).toEqual(data);
        const from = n === 0 ? 0 : a % n;
        const length = n - from === 0 ? 0 : b % (n - from + 1);
        const dst = new Uint8Array(length);
        copyFromRun(run, from, dst);
        expect(dst).toEqual(data.subarray(from, from + length));
      }),
    );
  });

  it('reads varints and takes bytes across the cuts, as views (no copy) where they lie in one piece', () => {
    const data = Uint8Array.from([0xac, 0x02, 7, 8, 9, 10, 11]); // varint 300, then five bytes
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 7 }), { maxLength: 6 }), (offsets) => {
        const r = new RunReader(cut(data, offsets));
        expect(r.varint()).toBe(300);
        expect(joinRun(r.take(3))).toEqual(Uint8Array.from([7, 8, 9]));
        expect(r.remaining).toBe(2);
        expect(joinRun(r.take(2))).toEqual(Uint8Array.from([10, 11]));
        expect(() => r.byte()).toThrow(DecodeError);
      }),
    );
    const whole = new RunReader(data);
    whole.varint();
    const view = whole.take(5);
    expect(view).toBeInstanceOf(Uint8Array);
    expect((view as Uint8Array).buffer).toBe(data.buffer);
  });

  it('refuses to read past the end: a varint cut short, more bytes than are left', () => {
    expect(() => new RunReader({ pieces: [Uint8Array.from([0x80]), Uint8Array.from([0x80])] }).varint()).toThrow(DecodeError);
    expect(() => new RunReader(bytes(4, 1)).take(5)).toThrow(DecodeError);
  });

  it('decodes a speculative part from the chunks that carried it, cut anywhere, as from the part whole', () => {
    const part = encodeSpecDeltas([{ startSeq: 1000, clientAckSeq: 900, connection, bytes: bytes(3000, 2) }]);
    fc.assert(
      fc.property(fc.array(fc.nat({ max: part.length }), { maxLength: 8 }), (offsets) => {
        const [delta] = decodeSpecDeltas(cut(part, offsets));
        expect(delta).toMatchObject({ startSeq: 1000, clientAckSeq: 900, connection });
        expect(joinRun(delta!.bytes)).toEqual(bytes(3000, 2));
      }),
    );
  });

  it('encodes a delta given in pieces (a ring that wraps) byte for byte as one given whole', () => {
    const data = bytes(5000, 3);
    const whole = encodeSpecDeltas([{ startSeq: 1, clientAckSeq: 1, connection, bytes: data }]);
    expect(encodeSpecDeltas([{ startSeq: 1, clientAckSeq: 1, connection, bytes: cut(data, [1234]) }])).toEqual(whole);
  });
});
