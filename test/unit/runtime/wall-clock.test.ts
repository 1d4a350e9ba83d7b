import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CALIBRATION_SPAN_MS, MAX_CALIBRATION_SAMPLES, calibrateWallOffsetMs, wallClock } from '../../../lib/runtime/nats/clock.js';

/**
 * Two clocks over one true time line: the wall clock truncated to whole ms
 * and `offsetMs` ahead, the monotonic one exact. Each read advances true time
 * by `stepMs`, and the reads listed in `stallAfterRead` are followed by a
 * stall (a preemption) of `stallMs`.
 */
function clocks(offsetMs: number, stepMs: number, stallAfterRead: ReadonlySet<number>, stallMs: number) {
  let trueMs = 1_000.123;
  let reads = 0;
  const advance = () => {
    trueMs += stepMs + (stallAfterRead.has(reads) ? stallMs : 0);
    reads++;
  };
  return {
    readWallMs: () => {
      const r = Math.floor(trueMs + offsetMs);
      advance();
      return r;
    },
    readMonotonicMs: () => {
      const r = trueMs;
      advance();
      return r;
    },
    reads: () => reads,
  };
}

describe('calibrateWallOffsetMs', () => {
  it('finds the offset to within the time between two reads, though the wall clock ticks in whole ms', () => {
    const c = clocks(1_796_500_000_000.5, 0.0005, new Set(), 0);
    const offset = calibrateWallOffsetMs(c.readWallMs, c.readMonotonicMs);
    expect(offset).toBeLessThanOrEqual(1_796_500_000_000.5 + 1e-6);
    expect(offset).toBeGreaterThan(1_796_500_000_000.5 - 0.0025);
  });

  it('is never thrown late by a stall between the two reads, where performance.timeOrigin is (by the whole stall)', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1e6, noNaN: true }), fc.uniqueArray(fc.integer({ min: 0, max: 20_000 }), { maxLength: 20 }), fc.double({ min: 0.1, max: 30, noNaN: true }), (offsetMs, stalls, stallMs) => {
        const c = clocks(offsetMs, 0.0005, new Set(stalls), stallMs);
        const offset = calibrateWallOffsetMs(c.readWallMs, c.readMonotonicMs);
        expect(offset).toBeLessThanOrEqual(offsetMs + 1e-6);
        expect(offset).toBeGreaterThan(offsetMs - 0.0025);
      }),
      { numRuns: 200 },
    );
  });

  it('samples for the calibration span, and stops at its bound when the monotonic clock stands still', () => {
    const c = clocks(5, 0.001, new Set(), 0);
    calibrateWallOffsetMs(c.readWallMs, c.readMonotonicMs);
    // Two reads per sample, one µs each: the span is read through and no further.
    expect(c.reads()).toBeGreaterThanOrEqual(CALIBRATION_SPAN_MS * 1_000);
    expect(c.reads()).toBeLessThanOrEqual(CALIBRATION_SPAN_MS * 1_000 + 4);
    let wallReads = 0;
    const stuck = calibrateWallOffsetMs(() => (wallReads++, 7), () => 2);
    expect(stuck).toBe(5);
    expect(wallReads).toBe(MAX_CALIBRATION_SAMPLES);
  });

  it('makes this process’s wall clock agree with Date.now() to the millisecond', () => {
    const clock = wallClock();
    for (let i = 0; i < 100; i++) {
      const before = Date.now();
      const us = clock.nowUs();
      const after = Date.now();
      // Within a millisecond either way: the calibration's few µs, and whatever the clocks drifted since this process's first reading.
      expect(us).toBeGreaterThanOrEqual((before - 1) * 1_000);
      expect(us).toBeLessThan((after + 2) * 1_000);
    }
  });
});
