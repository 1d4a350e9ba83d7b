import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteGenerator } from '../../../services/guest/workload/byte-generator.js';

describe('ByteGenerator', () => {
  const g = new ByteGenerator(7, 'test');

  it('matches what it filled, at any offset and length (across the pattern’s end too), and nothing with a byte changed', () => {
    fc.assert(
      fc.property(fc.nat({ max: 1_000_000 }), fc.integer({ min: 16, max: 200_000 }), fc.nat(), (offset, length, flipAt) => {
        const backing = new Uint8Array(length + 16);
        const chunk = backing.subarray(7, 7 + length); // a view at an odd place, as a segment's payload is
        g.fill(chunk, offset);
        expect(g.matches(chunk, offset)).toBe(true);
        expect(g.matches(chunk, offset + 1)).toBe(false);
        chunk[flipAt % length]! ^= 0x01;
        expect(g.matches(chunk, offset)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});
