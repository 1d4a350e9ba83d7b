import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RttEstimator } from '../../../lib/tcp/rtt.js';

const MIN_RTO = 200_000;
const MAX_RTO = 120_000_000;
const INITIAL_RTO = 1_000_000;
const G = 1_000;
const estimator = () => new RttEstimator(MIN_RTO, MAX_RTO, INITIAL_RTO, G);

/** A sample that ends no round: snd.una stays where the first sample's round began. */
const inRound = (rtt: RttEstimator, rttUs: number): void => rtt.sample(rttUs, 0, 1);
/** A sample whose ACK passed the round's start: the next round begins at `seq`. */
const endingRound = (rtt: RttEstimator, rttUs: number, seq: number): void => rtt.sample(rttUs, seq, seq + 1);

describe('RttEstimator (Linux tcp_rtt_estimator and tcp_set_rto)', () => {
  it('uses the initial RTO before any sample', () => {
    const rtt = estimator();
    expect(rtt.hasSample).toBe(false);
    expect(rtt.rtoUs).toBe(INITIAL_RTO);
  });

  it('sets SRTT = R and RTO = R + max(2R, the minimum) on the first sample', () => {
    const rtt = estimator();
    inRound(rtt, 100_000);
    expect(rtt.hasSample).toBe(true);
    expect(rtt.srttUs).toBe(100_000);
    expect(rtt.rtoUs).toBe(300_000);
    const short = estimator();
    inRound(short, 10_000);
    expect(short.rtoUs).toBe(10_000 + MIN_RTO);
  });

  it('raises the deviation as RFC 6298 does on a longer RTT, from the old SRTT', () => {
    const rtt = estimator();
    inRound(rtt, 100_000); // SRTT 100 000, mdev 200 000 (4·RTTVAR)
    inRound(rtt, 200_000); // mdev = ¾·200 000 + |100 000 − 200 000| = 250 000; SRTT = ⅞·100 000 + ⅛·200 000 = 112 500
    expect(rtt.srttUs).toBe(112_500);
    expect(rtt.rtoUs).toBe(112_500 + 250_000);
  });

  it('lowers the deviation at an eighth of the gain when the RTT falls by more than a quarter of it (Linux, after Eifel)', () => {
    const rtt = new RttEstimator(1, MAX_RTO, INITIAL_RTO, 1);
    inRound(rtt, 100_000); // mdev 200 000
    for (let seq = 2; seq < 200; seq += 2) endingRound(rtt, 100_000, seq); // steady: mdev and rttvar decay
    const before = rtt.rttvarUs;
    inRound(rtt, 100_000 - 8 * before); // falls by eight deviations: RFC 6298 would take 4·RTTVAR to 3·before + 8·before
    expect(rtt.rttvarUs).toBeLessThan(before + (8 * before - before / 4) / 8 + 1);
    expect(rtt.rttvarUs).toBeGreaterThan(before); // raised, by (8·before − before/4)/8 at most
  });

  it('keeps the largest deviation of a round in the RTO until the round ends, then lowers it by a quarter of the gap', () => {
    const rtt = new RttEstimator(1, MAX_RTO, INITIAL_RTO, 1);
    inRound(rtt, 10_000); // mdev 20 000
    for (let seq = 2; seq < 400; seq += 2) endingRound(rtt, 10_000, seq); // rttvar decays toward the floor
    const calm = rtt.rttvarUs;
    expect(calm).toBeLessThan(1_000);
    inRound(rtt, 50_000); // one spike: mdev jumps, rttvar with it
    const spike = rtt.rttvarUs;
    expect(spike).toBeGreaterThan(30_000);
    for (let i = 0; i < 20; i++) inRound(rtt, 10_000); // mdev falls within the round; rttvar holds the round's largest
    expect(rtt.rttvarUs).toBe(spike);
    endingRound(rtt, 10_000, 1_000); // the round ends: a quarter of the gap to this round's largest (the spike's mdev)
    expect(rtt.rttvarUs).toBe(spike);
    endingRound(rtt, 10_000, 1_002); // the next round's largest is small: rttvar falls by a quarter of the gap
    expect(rtt.rttvarUs).toBeLessThan(spike);
    expect(rtt.rttvarUs).toBeGreaterThan(0.7 * spike);
  });

  it('over any samples and rounds: SRTT is RFC 6298’s average, and the RTO is SRTT plus at least the minimum', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 10_000_000 }), fc.boolean()), { minLength: 1, maxLength: 50 }), (samples) => {
        const rtt = estimator();
        let srtt = 0;
        samples.forEach(([r, ends], i) => {
          srtt = i === 0 ? r : (7 / 8) * srtt + (1 / 8) * r;
          rtt.sample(r, ends ? 2 * i + 1 : 0, 2 * i + 2);
          expect(rtt.srttUs).toBeCloseTo(srtt, 3);
          expect(rtt.rtoUs).toBeGreaterThanOrEqual(Math.min(MAX_RTO, Math.floor(srtt + MIN_RTO)));
          expect(rtt.rtoUs).toBeLessThanOrEqual(MAX_RTO);
        });
      }),
    );
  });

  it('uses the clock granularity when it is above the minimum', () => {
    const rtt = new RttEstimator(1, MAX_RTO, INITIAL_RTO, 10_000);
    inRound(rtt, 1_000);
    for (let seq = 2; seq < 200; seq += 2) endingRound(rtt, 1_000, seq); // the deviation decays towards 0
    expect(rtt.rtoUs).toBe(11_000);
  });

  it('adds the minimum to the SRTT, as Linux does (RFC 6298 would floor the sum)', () => {
    const rtt = estimator();
    inRound(rtt, 1_000);
    expect(rtt.rtoUs).toBe(1_000 + MIN_RTO);
    // A long, steady RTT: the deviation has decayed below the floor, so the RTO is one floor above the SRTT, not the floor.
    const steady = estimator();
    for (let i = 0; i < 100; i++) endingRound(steady, 150_000, 2 * i + 1);
    expect(steady.rtoUs).toBeGreaterThanOrEqual(150_000 + MIN_RTO);
    expect(steady.rtoUs).toBeLessThan(150_000 + MIN_RTO + 1_000);
  });

  it('clamps the RTO to the maximum', () => {
    const rtt = estimator();
    inRound(rtt, 100_000_000);
    expect(rtt.rtoUs).toBe(MAX_RTO);
  });

  it('doubles the RTO on each backoff', () => {
    const rtt = estimator();
    inRound(rtt, 100_000);
    rtt.backoff();
    expect(rtt.rtoUs).toBe(600_000);
    rtt.backoff();
    expect(rtt.rtoUs).toBe(1_200_000);
  });

  it('stops doubling at the maximum RTO', () => {
    const rtt = estimator();
    inRound(rtt, 100_000);
    for (let i = 0; i < 30; i++) rtt.backoff();
    expect(rtt.rtoUs).toBe(MAX_RTO);
  });

  it('returns to the estimated RTO when the backoff is reset', () => {
    const rtt = estimator();
    inRound(rtt, 100_000);
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
    inRound(rtt, 0);
    expect(rtt.srttUs).toBe(1);
  });
});
