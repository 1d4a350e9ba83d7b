import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../../lib/errors.js';
import { HostClock, MAX_DRIFT_PPM, TRUE_CLOCK } from '../../../lib/runtime/sim/host-clock.js';

const offsetUs = fc.integer({ min: 0, max: 1_000_000 });
const driftPpm = fc.oneof(fc.integer({ min: -100_000, max: 100_000 }), fc.double({ min: -100_000, max: 100_000, noNaN: true }));
const trueTime = fc.integer({ min: 0, max: 1e10 });
const localTime = fc.integer({ min: 0, max: 1e10 });

describe('HostClock', () => {
  it('reads true time plus its offset plus ⌊true·drift/10⁶⌋', () => {
    const clock = new HostClock({ offsetUs: 250, driftPpm: 1_000 });
    expect(clock.localUs(0)).toBe(250);
    expect(clock.localUs(999)).toBe(999 + 250 + 0);
    expect(clock.localUs(1_000)).toBe(1_000 + 250 + 1);
    expect(clock.localUs(1_000_000)).toBe(1_000_000 + 250 + 1_000);
    const slow = new HostClock({ offsetUs: 250, driftPpm: -1_000 });
    expect(slow.localUs(1)).toBe(1 + 250 - 1);
    expect(slow.localUs(1_000_000)).toBe(1_000_000 + 250 - 1_000);
  });

  it('without drift, is true time shifted by its offset both ways', () => {
    const clock = new HostClock({ offsetUs: 700, driftPpm: 0 });
    expect(clock.localUs(1_234)).toBe(1_934);
    expect(clock.trueUs(1_934)).toBe(1_234);
    // A local time the clock read before true time 0 is reached at once.
    expect(clock.trueUs(500)).toBe(0);
  });

  it('is exact only with neither offset nor drift, and the default is exact', () => {
    expect(new HostClock().exact).toBe(true);
    expect(new HostClock(TRUE_CLOCK).exact).toBe(true);
    expect(new HostClock({ offsetUs: 1, driftPpm: 0 }).exact).toBe(false);
    expect(new HostClock({ offsetUs: 0, driftPpm: 1 }).exact).toBe(false);
  });

  it('never goes back: localUs is non-decreasing in true time', () => {
    fc.assert(
      fc.property(offsetUs, driftPpm, trueTime, trueTime, (offset, drift, a, b) => {
        const clock = new HostClock({ offsetUs: offset, driftPpm: drift });
        const [t1, t2] = a <= b ? [a, b] : [b, a];
        expect(clock.localUs(t1)).toBeLessThanOrEqual(clock.localUs(t2));
        expect(clock.localUs(t1)).toBeLessThanOrEqual(clock.localUs(t1 + 1));
        expect(clock.localUs(0)).toBe(offset);
      }),
      { numRuns: 2_000 },
    );
  });

  it('trueUs(L) is the least true time at which the clock reads at least L', () => {
    fc.assert(
      fc.property(offsetUs, driftPpm, localTime, (offset, drift, local) => {
        const clock = new HostClock({ offsetUs: offset, driftPpm: drift });
        const t = clock.trueUs(local);
        expect(Number.isSafeInteger(t)).toBe(true);
        expect(t).toBeGreaterThanOrEqual(0);
        expect(clock.localUs(t)).toBeGreaterThanOrEqual(local);
        if (t > 0) expect(clock.localUs(t - 1)).toBeLessThan(local);
      }),
      { numRuns: 2_000 },
    );
  });

  it('trueUs of a reading the clock takes is the first instant it takes it', () => {
    fc.assert(
      fc.property(offsetUs, driftPpm, trueTime, (offset, drift, t) => {
        const clock = new HostClock({ offsetUs: offset, driftPpm: drift });
        const local = clock.localUs(t);
        const first = clock.trueUs(local);
        expect(first).toBeLessThanOrEqual(t);
        expect(clock.localUs(first)).toBe(local);
      }),
      { numRuns: 1_000 },
    );
  });

  it('accepts drift up to ±MAX_DRIFT_PPM', () => {
    expect(() => new HostClock({ offsetUs: 0, driftPpm: MAX_DRIFT_PPM })).not.toThrow();
    expect(() => new HostClock({ offsetUs: 0, driftPpm: -MAX_DRIFT_PPM })).not.toThrow();
  });

  it('rejects a negative or non-integer offset', () => {
    for (const offset of [-1, -1_000_000, 0.5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      expect(() => new HostClock({ offsetUs: offset, driftPpm: 0 }), String(offset)).toThrow(InvariantError);
    }
  });

  it('rejects drift beyond ±MAX_DRIFT_PPM, or not a number', () => {
    for (const drift of [MAX_DRIFT_PPM + 1, -MAX_DRIFT_PPM - 1, MAX_DRIFT_PPM + 0.5, 1e6, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN]) {
      expect(() => new HostClock({ offsetUs: 0, driftPpm: drift }), String(drift)).toThrow(InvariantError);
    }
  });
});
