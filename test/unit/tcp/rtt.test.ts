import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RttEstimator } from '../../../lib/tcp/rtt.js';

const MIN_RTO = 200_000;
const MAX_RTO = 120_000_000;
const INITIAL_RTO = 1_000_000;
const G = 1_000;
const estimator = () => new RttEstimator(MIN_RTO, MAX_RTO, INITIAL_RTO, G);

describe('RttEstimator (RFC 6298 smoothing, Linux RTO)', () => {
  it('uses the initial RTO before any sample', () => {
    const rtt = estimator();
    expect(rtt.hasSample).toBe(false);
    expect(rtt.rtoUs).toBe(INITIAL_RTO);
  });

  it('sets SRTT = R and RTO = R + 4·R/2 on the first sample', () => {
    const rtt = estimator();
    rtt.sample(100_000);
    expect(rtt.hasSample).toBe(true);
    expect(rtt.srttUs).toBe(100_000);
    expect(rtt.rtoUs).toBe(300_000);
  });

  it('updates RTTVAR from the old SRTT before updating SRTT on later samples', () => {
    const rtt = estimator();
    rtt.sample(100_000); // SRTT 100 000, RTTVAR 50 000
    rtt.sample(200_000); // RTTVAR = ¾·50 000 + ¼·|100 000 − 200 000| = 62 500; SRTT = ⅞·100 000 + ⅛·200 000 = 112 500
    expect(rtt.srttUs).toBe(112_500);
    expect(rtt.rtoUs).toBe(112_500 + 4 * 62_500);
  });

  it('follows the RFC 6298 recurrences over any sequence of samples', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 10_000_000 }), { minLength: 1, maxLength: 50 }), (samples) => {
        const rtt = new RttEstimator(1, Number.MAX_SAFE_INTEGER, INITIAL_RTO, G);
        let srtt = 0;
        let rttvar = 0;
        samples.forEach((r, i) => {
          if (i === 0) [srtt, rttvar] = [r, r / 2];
          else [rttvar, srtt] = [(3 / 4) * rttvar + (1 / 4) * Math.abs(srtt - r), (7 / 8) * srtt + (1 / 8) * r];
          rtt.sample(r);
          expect(rtt.srttUs).toBeCloseTo(srtt, 3);
          expect(Math.abs(rtt.rtoUs - (srtt + Math.max(G, 4 * rttvar)))).toBeLessThanOrEqual(1);
        });
      }),
    );
  });

  it('uses the clock granularity when 4·RTTVAR is smaller', () => {
    const rtt = new RttEstimator(1, MAX_RTO, INITIAL_RTO, 10_000);
    for (let i = 0; i < 40; i++) rtt.sample(50_000); // RTTVAR decays towards 0
    expect(rtt.rtoUs).toBe(60_000);
  });

  it('adds the minimum to the SRTT, as Linux does (RFC 6298 would floor the sum)', () => {
    const rtt = estimator();
    rtt.sample(1_000);
    expect(rtt.rtoUs).toBe(1_000 + MIN_RTO);
    // A long, steady RTT: 4·RTTVAR has decayed below the floor, so the RTO is one floor above the SRTT, not the floor.
    const steady = estimator();
    for (let i = 0; i < 100; i++) steady.sample(150_000);
    expect(steady.rtoUs).toBeGreaterThanOrEqual(150_000 + MIN_RTO);
    expect(steady.rtoUs).toBeLessThan(150_000 + MIN_RTO + 1_000);
  });

  it('clamps the RTO to the maximum', () => {
    const rtt = estimator();
    rtt.sample(100_000_000);
    expect(rtt.rtoUs).toBe(MAX_RTO);
  });

  it('doubles the RTO on each backoff', () => {
    const rtt = estimator();
    rtt.sample(100_000);
    rtt.backoff();
    expect(rtt.rtoUs).toBe(600_000);
    rtt.backoff();
    expect(rtt.rtoUs).toBe(1_200_000);
  });

  it('stops doubling at the maximum RTO', () => {
    const rtt = estimator();
    rtt.sample(100_000);
    for (let i = 0; i < 30; i++) rtt.backoff();
    expect(rtt.rtoUs).toBe(MAX_RTO);
  });

  it('returns to the estimated RTO when the backoff is reset', () => {
    const rtt = estimator();
    rtt.sample(100_000);
    for (let i = 0; i < 30; i++) rtt.backoff();
    rtt.resetBackoff();
    expect(rtt.rtoUs).toBe(300_000);
  });

  it('backs off the initial RTO when no sample has been taken', () => {
    const rtt = estimator();
    rtt.backoff();
    expect(rtt.rtoUs).toBe(2 * INITIAL_RTO);
  });

  it('treats a zero RTT sample as one microsecond', () => {
    const rtt = new RttEstimator(1, MAX_RTO, INITIAL_RTO, G);
    rtt.sample(0);
    expect(rtt.srttUs).toBe(1);
  });
});
