import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../../lib/errors.js';
import { averagePauseUs, averageTransferPerEpochUs, earlyEpochEndUs, interactiveEpochCapUs, PAUSE_AVERAGE_WEIGHT } from '../../../lib/epoch-policy/index.js';

const EPOCH = { startUs: 1_000, endUs: 26_000 }; // a 25 ms epoch
const COSTS = { minEpochUs: 2_000, pauseUs: 500 };

describe('earlyEpochEndUs', () => {
  it('ends at once when the minimum epoch has run', () => {
    expect(earlyEpochEndUs(EPOCH, COSTS, 5_000)).toBe(5_000);
  });

  it('ends when the minimum epoch is over, not before', () => {
    expect(earlyEpochEndUs(EPOCH, COSTS, 1_300)).toBe(3_000);
  });

  it('keeps the end it has when ending early would gain the output less than a pause costs', () => {
    expect(earlyEpochEndUs(EPOCH, COSTS, 25_600)).toBeNull(); // 400 µs gained, 500 µs paused
    expect(earlyEpochEndUs(EPOCH, COSTS, 25_499)).toBe(25_499); // 501 µs gained
    expect(earlyEpochEndUs(EPOCH, { ...COSTS, pauseUs: 30_000 }, 2_000)).toBeNull(); // a pause dearer than the whole epoch
  });

  it('never moves an end already chosen later', () => {
    expect(earlyEpochEndUs({ startUs: 1_000, endUs: 3_000 }, COSTS, 1_500)).toBeNull();
  });

  it('stays between start + minimum and the end it had, gains more than a pause whenever it moves it, and keeps it only when no allowed end would', () => {
    const arb = fc.record({ startUs: fc.nat(1e9), lengthUs: fc.nat(1e7), minEpochUs: fc.integer({ min: 1, max: 1e7 }), pauseUs: fc.nat(1e6), afterStartUs: fc.nat(2e7) });
    fc.assert(
      fc.property(arb, ({ startUs, lengthUs, minEpochUs, pauseUs, afterStartUs }) => {
        const epoch = { startUs, endUs: startUs + lengthUs };
        const nowUs = startUs + afterStartUs;
        const endUs = earlyEpochEndUs(epoch, { minEpochUs, pauseUs }, nowUs);
        const earliestUs = Math.max(nowUs, startUs + minEpochUs);
        if (endUs === null) {
          // Kept only when even the earliest end the minimum epoch allows would gain no more than a pause.
          expect(epoch.endUs - earliestUs).toBeLessThanOrEqual(pauseUs);
          return;
        }
        expect(endUs).toBeGreaterThanOrEqual(earliestUs);
        expect(epoch.endUs - endUs).toBeGreaterThan(pauseUs);
      }),
    );
  });

  it('refuses an epoch that ends before it starts, or a minimum of zero', () => {
    expect(() => earlyEpochEndUs({ startUs: 10, endUs: 5 }, COSTS, 10)).toThrow(InvariantError);
    expect(() => earlyEpochEndUs(EPOCH, { minEpochUs: 0, pauseUs: 0 }, 10)).toThrow(InvariantError);
  });
});

describe('averagePauseUs', () => {
  it('starts at the first pause and moves a weight of the way to each next one', () => {
    expect(averagePauseUs(null, 800)).toBe(800);
    expect(averagePauseUs(800, 400)).toBe(800 - PAUSE_AVERAGE_WEIGHT * 400);
  });
});

describe('interactiveEpochCapUs', () => {
  it('is where the transfer a response would wait for reaches one pause', () => {
    expect(interactiveEpochCapUs(COSTS, 0.1)).toBe(5_000); // 500 µs of pause, 0.1 µs of transfer per µs of epoch
    expect(interactiveEpochCapUs(COSTS, 0.01)).toBe(50_000);
  });

  it('never below the minimum epoch, and no cap when the transfer costs nothing', () => {
    expect(interactiveEpochCapUs(COSTS, 5)).toBe(COSTS.minEpochUs);
    expect(interactiveEpochCapUs({ ...COSTS, pauseUs: 0 }, 0.1)).toBe(COSTS.minEpochUs);
    expect(interactiveEpochCapUs(COSTS, 0)).toBe(Number.POSITIVE_INFINITY);
  });

  it('grows with the pause and shrinks with the transfer', () => {
    const arb = fc.record({ pauseUs: fc.nat(1e6), transfer: fc.double({ min: 1e-6, max: 100, noNaN: true }), factor: fc.double({ min: 1, max: 10, noNaN: true }) });
    fc.assert(
      fc.property(arb, ({ pauseUs, transfer, factor }) => {
        const capUs = interactiveEpochCapUs({ minEpochUs: 2_000, pauseUs }, transfer);
        expect(capUs).toBeGreaterThanOrEqual(2_000);
        expect(interactiveEpochCapUs({ minEpochUs: 2_000, pauseUs: pauseUs * factor }, transfer)).toBeGreaterThanOrEqual(capUs);
        expect(interactiveEpochCapUs({ minEpochUs: 2_000, pauseUs }, transfer * factor)).toBeLessThanOrEqual(capUs);
      }),
    );
  });

  it('refuses a negative or infinite transfer', () => {
    expect(() => interactiveEpochCapUs(COSTS, -1)).toThrow(InvariantError);
    expect(() => interactiveEpochCapUs(COSTS, Number.POSITIVE_INFINITY)).toThrow(InvariantError);
  });
});

describe('averageTransferPerEpochUs', () => {
  it('starts at the first epoch and moves a weight of the way to each next one', () => {
    expect(averageTransferPerEpochUs(null, 600, 3_000)).toBe(0.2);
    expect(averageTransferPerEpochUs(0.2, 1_000, 2_000)).toBeCloseTo(0.2 + PAUSE_AVERAGE_WEIGHT * 0.3);
  });

  it('refuses an epoch that did not run', () => {
    expect(() => averageTransferPerEpochUs(null, 600, 0)).toThrow(InvariantError);
  });
});
