import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../../lib/checkpoint/hash.js';
import { applyXorRle, encodeXorRleInto, readVarint, writeVarint, XOR_RLE_PAIR_HEADER_MAX_BYTES } from '../../../lib/checkpoint/page-delta.js';
import { DecodeError } from '../../../lib/errors.js';
import { PAGE_BYTES } from '../../../lib/memory/paged-memory.js';

/** The whole delta, however large: literal runs end at runs of 4 equal bytes, so a page of n bytes has at most n / 4 + 1 pairs. */
const encode = (page: Uint8Array, previous: Uint8Array): Uint8Array => {
  const dst = new Uint8Array(3 * page.length + 16);
  const written = encodeXorRleInto(page, previous, dst, dst.length - XOR_RLE_PAIR_HEADER_MAX_BYTES);
  expect(written).toBeGreaterThanOrEqual(0);
  return dst.subarray(0, written);
};

/** Pseudo-random bytes; with `runs` > 0 repeated in runs of up to 2^(2·runs) bytes. */
function seededPage(size: number, seed: number, runs: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed | 1;
  let value = 0;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    if (runs === 0 || (x & ((1 << (2 * runs)) - 1)) === 0) value = (x >>> 8) & 0xff;
    out[i] = value;
  }
  return out;
}

/** A page and the previous copy it differs from: random, or the previous one with some ranges rewritten. */
const pagePair = (size: number): fc.Arbitrary<[Uint8Array, Uint8Array]> => {
  // Large pages come from a seed (fast to generate); small ones byte by byte (better shrinking).
  const page = size <= 64 ? fc.uint8Array({ minLength: size, maxLength: size }) : fc.tuple(fc.integer(), fc.integer({ min: 0, max: 3 })).map(([seed, runs]) => seededPage(size, seed, runs));
  const edit = fc.record({ at: fc.nat({ max: Math.max(0, size - 1) }), len: fc.integer({ min: 1, max: 64 }), value: fc.integer({ min: 0, max: 255 }), noisy: fc.boolean() });
  const edited = fc.tuple(page, fc.array(edit, { maxLength: 12 })).map(([previous, edits]): [Uint8Array, Uint8Array] => {
    const next = previous.slice();
    for (const e of edits) for (let k = e.at; k < Math.min(size, e.at + e.len); k++) next[k] = e.noisy ? (e.value + k * 31) & 0xff : e.value;
    return [next, previous];
  });
  return fc.oneof(edited, fc.tuple(page, page), page.map((p): [Uint8Array, Uint8Array] => [p, p.slice()]));
};

/** Only DecodeError may escape a decoder given bad input. */
function decodeOrDecodeError(run: () => unknown): void {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DecodeError);
  }
}

/** The format, a byte at a time: the encoder skips unchanged words and must give exactly these bytes. */
function referenceEncode(page: Uint8Array, previous: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < page.length; ) {
    let zeros = 0;
    while (i + zeros < page.length && page[i + zeros] === previous[i + zeros]) zeros++;
    let literals = 0;
    for (let k = i + zeros; k < page.length; k++, literals++) {
      if (k + 3 < page.length && [0, 1, 2, 3].every((d) => page[k + d] === previous[k + d])) break;
    }
    writeVarint(out, zeros);
    writeVarint(out, literals);
    for (let k = i + zeros; k < i + zeros + literals; k++) out.push(page[k]! ^ previous[k]!);
    i += zeros + literals;
  }
  return out;
}

describe('XOR+RLE page delta', () => {
  it('encodes byte for byte as the format says, for aligned and unaligned views alike', () => {
    fc.assert(
      fc.property(pagePair(PAGE_BYTES), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 }), ([page, previous], shiftA, shiftB) => {
        // Copies at byte offsets 0..3 into larger buffers: the word skip applies only when both are aligned.
        const a = new Uint8Array(page.length + 4).subarray(shiftA, shiftA + page.length);
        const b = new Uint8Array(previous.length + 4).subarray(shiftB, shiftB + previous.length);
        a.set(page);
        b.set(previous);
        expect([...encode(a, b)]).toEqual(referenceEncode(page, previous));
      }),
      { numRuns: 200 },
    );
  });

  it('gives up exactly when the whole delta would take the limit or more, at any limit', () => {
    fc.assert(
      fc.property(pagePair(PAGE_BYTES), fc.integer({ min: 1, max: 2 * PAGE_BYTES }), ([page, previous], limitBytes) => {
        const whole = referenceEncode(page, previous);
        const dst = new Uint8Array(limitBytes + XOR_RLE_PAIR_HEADER_MAX_BYTES);
        const written = encodeXorRleInto(page, previous, dst, limitBytes);
        expect(written).toBe(whole.length >= limitBytes ? -1 : whole.length);
        if (written >= 0) expect([...dst.subarray(0, written)]).toEqual(whole);
      }),
      { numRuns: 300 },
    );
  });

  it('gives the page back for any page against any previous page', () => {
    fc.assert(
      fc.property(pagePair(PAGE_BYTES), ([page, previous]) => {
        const delta = encode(page, previous);
        const target = previous.slice();
        expect(applyXorRle(target, delta, 0, delta.length)).toBe(delta.length);
        expect(bytesEqual(target, page)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips pages of any size, including empty and tiny ones, at any offset of the source', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 }).chain((n) => pagePair(n)), fc.uint8Array({ maxLength: 5 }), ([page, previous], prefix) => {
        const delta = encode(page, previous);
        const src = Uint8Array.from([...prefix, ...delta, 0xaa]);
        const target = previous.slice();
        expect(applyXorRle(target, src, prefix.length, prefix.length + delta.length)).toBe(delta.length);
        expect(target).toEqual(page);
      }),
    );
  });

  it('encodes an unchanged page as a single zero run, and a small change compactly', () => {
    const previous = new Uint8Array(PAGE_BYTES).fill(7);
    expect(encode(previous.slice(), previous)).toEqual(Uint8Array.from([0x80, 0x20, 0])); // 4096 zeros, 0 literals
    const page = previous.slice();
    page[100] = 8;
    expect(encode(page, previous).length).toBeLessThan(12);
  });

  it('throws DecodeError, never another error, for any malformed delta', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 64 }), fc.uint8Array({ maxLength: 80 }), fc.nat(), (size, src, cut) => {
        const end = src.length === 0 ? 0 : cut % (src.length + 1);
        decodeOrDecodeError(() => applyXorRle(new Uint8Array(size), src, 0, end));
      }),
      { numRuns: 500 },
    );
  });

  it('throws DecodeError for each way a delta can be malformed', () => {
    const page = () => new Uint8Array(16);
    const cases: Record<string, number[]> = {
      'ends early': [2, 1, 0xff],
      'zero run past the page': [17, 0],
      'literals past the page': [10, 7, 1, 2, 3, 4, 5, 6, 7],
      'literals past the delta': [0, 16, 1, 2],
      'varint runs past the end': [0x80],
      'varint too long': [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    };
    for (const [name, bytes] of Object.entries(cases)) {
      expect(() => applyXorRle(page(), Uint8Array.from(bytes), 0, bytes.length), name).toThrow(DecodeError);
    }
  });

  it('round-trips varints up to 2^49', () => {
    fc.assert(
      fc.property(fc.oneof(fc.nat(), fc.integer({ min: 0, max: 2 ** 49 })), (value) => {
        const out: number[] = [];
        writeVarint(out, value);
        expect(readVarint(Uint8Array.from(out), 0)).toEqual([value, out.length]);
      }),
    );
  });
});
