import { describe, expect, it } from 'vitest';
import { sim } from '../support/run.js';

/**
 * Loss recovery against the analytic model: Reno-style AIMD (`--cc newreno`,
 * SACK on, as in Linux) under random loss, over a grid of loss rates and
 * RTTs, 60 s per run, 3 seeds per point. The model is Mathis et al.'s
 * MSS/RTT · C/√p with C = 1.31, their constant for random (not periodic)
 * loss; byte counting (RFC 3465) makes delayed ACKs not slow the window's
 * growth, so the constant without delayed ACKs applies. Padhye's model adds
 * timeouts; with SACK they are rare (reported per 1000 segments below), and
 * it then under-predicts, so Mathis is the one to hold the model to.
 *
 * Goodput is measured from the client's cumulative ACK after a 10 s warm-up:
 * the models describe the steady state, and at a 100 ms RTT the initial slow
 * start at 1 Gbit/s would otherwise carry a third of a 60 s run's bytes.
 */
const LOSS_RATES = [0.001, 0.005, 0.01, 0.02, 0.03];
const RTTS_MS = [10, 30, 100];
const SEEDS = [1, 2, 3];
const DURATION_S = 60;
const WARM_UP_S = 10;
const MSS_BYTES = 1448;
const MATHIS_RANDOM_LOSS_C = 1.31;
const TOLERANCE = 0.25;
/** Timeouts per 1000 segments above this would mean SACK recovery is failing, whatever the goodput. */
const MAX_TIMEOUTS_PER_1000_SEGMENTS = 3;

const mathisBitsPerSec = (rttMs: number, lossRate: number): number => ((MSS_BYTES * 8) / (rttMs / 1000)) * (MATHIS_RANDOM_LOSS_C / Math.sqrt(lossRate));

interface Point {
  readonly goodputBitsPerSec: number;
  readonly timeoutsPer1000Segments: number;
}

function measure(rttMs: number, lossRate: number, seed: number): Point {
  let ackedAtWarmUp: number | null = null;
  let acked = 0;
  const r = sim(
    { seed, durationS: DURATION_S, link: { bandwidthBitsPerSec: 1e9, rttMs, lossRate }, tcp: { congestionControl: 'newreno' } },
    {
      // The client is the one actor outside the hosts that sends segments: its cumulative ACK is what was delivered.
      onPublish: (_subject, msg, nowUs, from) => {
        if (msg.type !== 'segment' || from.host !== null) return;
        if (msg.ack > acked) acked = msg.ack;
        if (ackedAtWarmUp === null && nowUs >= WARM_UP_S * 1e6) ackedAtWarmUp = acked;
      },
    },
  );
  expect(r.streamVerified).toBe(true);
  expect(ackedAtWarmUp).not.toBeNull();
  return {
    goodputBitsPerSec: ((acked - ackedAtWarmUp!) * 8) / (DURATION_S - WARM_UP_S),
    timeoutsPer1000Segments: (1000 * r.timeouts) / (r.bytesDelivered / MSS_BYTES),
  };
}

describe(`goodput under random loss tracks Mathis (C = ${MATHIS_RANDOM_LOSS_C}) within ±${TOLERANCE * 100}% (NewReno with SACK, ${SEEDS.length} seeds × ${DURATION_S} s per point)`, () => {
  for (const rttMs of RTTS_MS) {
    it(`at an RTT of ${rttMs} ms, p from ${LOSS_RATES[0]} to ${LOSS_RATES.at(-1)}`, () => {
      const rows: string[] = [];
      for (const lossRate of LOSS_RATES) {
        const points = SEEDS.map((seed) => measure(rttMs, lossRate, seed));
        const goodput = points.reduce((n, p) => n + p.goodputBitsPerSec, 0) / points.length;
        const timeouts = points.reduce((n, p) => n + p.timeoutsPer1000Segments, 0) / points.length;
        const ratio = goodput / mathisBitsPerSec(rttMs, lossRate);
        rows.push(`RTT ${rttMs} ms, p ${lossRate}: ${(goodput / 1e6).toFixed(2)} Mbit/s, ${ratio.toFixed(2)} × Mathis, ${timeouts.toFixed(2)} timeouts per 1000 segments`);
        expect(ratio, rows.at(-1)).toBeGreaterThanOrEqual(1 - TOLERANCE);
        expect(ratio, rows.at(-1)).toBeLessThanOrEqual(1 + TOLERANCE);
        expect(timeouts, rows.at(-1)).toBeLessThan(MAX_TIMEOUTS_PER_1000_SEGMENTS);
      }
      console.log(rows.join('\n'));
    });
  }
});
