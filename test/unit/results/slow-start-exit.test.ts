import { describe, expect, it } from 'vitest';
import { slowStartExitSegments } from '../../../lib/results/run-result.js';

describe('slowStartExitSegments: the mean window at which slow start ended', () => {
  it('is null when slow start never ended', () => {
    expect(slowStartExitSegments(0, 0, 1448)).toBeNull();
  });

  it('is the summed exit windows over the exits, in segments, to one decimal', () => {
    // One exit at 80 full segments.
    expect(slowStartExitSegments(1, 80 * 1448, 1448)).toBe(80);
    // Two senders, one leaving at 272 segments and one at 56: a mean of 164.
    expect(slowStartExitSegments(2, (272 + 56) * 1448, 1448)).toBe(164);
    // Three exits at 10, 11 and 11 segments: 32 / 3 = 10.666…, 10.7.
    expect(slowStartExitSegments(3, 32 * 1448, 1448)).toBe(10.7);
    // A window that is not a whole number of segments: 100,000 B of 1,000 B segments over two exits is 50.
    expect(slowStartExitSegments(2, 100_000, 1000)).toBe(50);
  });
});
