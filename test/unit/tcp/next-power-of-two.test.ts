import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../../lib/errors.js';
import { nextPowerOfTwo } from '../../../lib/tcp/endpoint.js';

describe('nextPowerOfTwo', () => {
  it('is 2 ** ceil(log2(n)) for every n it takes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 30 }), (n) => {
        expect(nextPowerOfTwo(n)).toBe(2 ** Math.ceil(Math.log2(n)));
      }),
    );
    for (let k = 0; k <= 30; k++) {
      expect(nextPowerOfTwo(2 ** k)).toBe(2 ** k);
      if (k < 30) expect(nextPowerOfTwo(2 ** k + 1)).toBe(2 ** (k + 1));
    }
  });

  it('refuses what it cannot answer in 32 bits', () => {
    expect(() => nextPowerOfTwo(0)).toThrow(InvariantError);
    expect(() => nextPowerOfTwo(2 ** 30 + 1)).toThrow(InvariantError);
    expect(() => nextPowerOfTwo(1.5)).toThrow(InvariantError);
  });
});
