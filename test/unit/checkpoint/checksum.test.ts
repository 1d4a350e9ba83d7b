import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { BegunChecksum, CHECKSUM_BYTES, checksum } from '../../../lib/checkpoint/checksum.js';
import { InvariantError } from '../../../lib/errors.js';
import { bytesEqual } from '../../../lib/checkpoint/hash.js';

describe('chunk checksum (AES-128-GMAC under a fixed key)', () => {
  it('is 16 bytes and a function of the data alone', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), (data) => {
        const a = checksum(data);
        expect(a.length).toBe(CHECKSUM_BYTES);
        expect(bytesEqual(a, checksum(Uint8Array.from(data)))).toBe(true);
      }),
    );
  });

  it('changes when any one bit of the data flips', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 5000 }), fc.nat(), fc.integer({ min: 0, max: 7 }), (data, at, bit) => {
        const flipped = Uint8Array.from(data);
        flipped[at % data.length]! ^= 1 << bit;
        expect(bytesEqual(checksum(data), checksum(flipped))).toBe(false);
      }),
    );
  });

  it('tells apart data of different lengths, trailing zeros included', () => {
    const seen = new Set<string>();
    for (let n = 0; n <= 64; n++) seen.add(Buffer.from(checksum(new Uint8Array(n))).toString('hex'));
    expect(seen.size).toBe(65);
  });

  it('matches the GCM test vector for an empty message under a zero key and nonce', () => {
    // NIST GCM spec, test case 1: K = 0^128, IV = 0^96, P = A = empty → T = 58e2fccefa7e3061367f1d57a4e7455a.
    expect(Buffer.from(checksum(new Uint8Array(0))).toString('hex')).toBe('58e2fccefa7e3061367f1d57a4e7455a');
  });

  it('of data and a tail is the checksum of their concatenation, begun over the data before the tail is known', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.uint8Array({ maxLength: 100 }), (data, tail) => {
        const whole = new Uint8Array(data.length + tail.length);
        whole.set(data);
        whole.set(tail, data.length);
        const begun = new BegunChecksum(data);
        expect(bytesEqual(begun.finish(tail), checksum(whole))).toBe(true);
        expect(bytesEqual(checksum(data, tail), checksum(whole))).toBe(true);
      }),
    );
  });

  it('is finished once: a second finish would read a spent GMAC state', () => {
    const begun = new BegunChecksum(Uint8Array.of(1, 2, 3));
    begun.finish();
    expect(() => begun.finish()).toThrow(InvariantError);
  });
});
