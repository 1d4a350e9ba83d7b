import { describe, expect, it } from 'vitest';
import { median, medianWallMs } from '../../../bench/measure.js';

describe("the benchmarks' median", () => {
  it('is the middle value of an odd count and the mean of the two middle values of an even one, whatever the order', () => {
    expect(median([5, 1, 3])).toBe(3);
    // Six interleaved pairs (nats-tracing): not the upper of the two middle values.
    expect(median([40, 10, 30, 20, 60, 50])).toBe(35);
    expect(median([7])).toBe(7);
  });

  it('refuses no values rather than answering undefined', () => {
    expect(() => median([])).toThrow(RangeError);
  });

  it('of timed calls, lies between the fastest and the slowest', () => {
    const { medianMs, minMs, maxMs, last } = medianWallMs(3, () => 42);
    expect(last).toBe(42);
    expect(minMs).toBeLessThanOrEqual(medianMs);
    expect(medianMs).toBeLessThanOrEqual(maxMs);
  });
});
