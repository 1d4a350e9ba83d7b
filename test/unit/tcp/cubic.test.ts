import { describe, expect, it } from 'vitest';
import { Cubic } from '../../../lib/tcp/congestion/cubic.js';

const MSS = 1000;
const IW = 10 * MSS;
const C = 0.4;
const BETA = 0.7;
const RTT_US = 100_000;
const cubic = (initialWindowBytes = IW) => new Cubic({ mssBytes: MSS, initialWindowBytes });

/** The RFC 9438 window curve, in segments, t in seconds. */
const wCubic = (t: number, wMaxSeg: number, kS: number) => C * (t - kS) ** 3 + wMaxSeg;
const kFor = (wMaxSeg: number, cwndEpochSeg: number) => Math.cbrt((wMaxSeg - cwndEpochSeg) / C);

/** A controller that lost at `cwndSeg` segments and has just left recovery. */
function afterLossAt(cwndSeg: number): Cubic {
  const cc = cubic();
  cc.cwndBytes = cwndSeg * MSS;
  cc.onFastRetransmit(cwndSeg * MSS);
  cc.onRecoveryExit();
  return cc;
}

/**
 * ACKs one whole window per round trip, starting at `startUs`, and returns
 * [time of the ACK in seconds since the start, cwnd in segments after it].
 */
function windowPerRtt(cc: Cubic, startUs: number, rounds: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < rounds; i++) {
    const nowUs = startUs + i * RTT_US;
    cc.onAck(cc.cwndBytes, nowUs, RTT_US, true);
    out.push([(nowUs - startUs) / 1e6, cc.cwndBytes / MSS]);
  }
  return out;
}

describe('CUBIC', () => {
  it('grows by the bytes ACKed, at most 2·MSS per ACK, in slow start', () => {
    const cc = cubic();
    cc.onAck(MSS, 0, RTT_US, true);
    cc.onAck(5 * MSS, 0, RTT_US, true);
    expect(cc.cwndBytes).toBe(IW + 3 * MSS);
  });

  it('sets ssthresh to β·cwnd with β = 0.7 on fast retransmit', () => {
    const cc = cubic(100 * MSS);
    cc.onFastRetransmit(100 * MSS);
    expect(cc.ssthreshBytes).toBe(70 * MSS);
  });

  it('sets ssthresh to no less than 2·MSS on fast retransmit', () => {
    const cc = cubic(2 * MSS);
    cc.onFastRetransmit(2 * MSS);
    expect(cc.ssthreshBytes).toBe(2 * MSS);
  });

  it('sets cwnd to ssthresh when recovery ends', () => {
    expect(afterLossAt(100).cwndBytes).toBe(70 * MSS);
  });

  it('sets ssthresh to β·cwnd and cwnd to one MSS on timeout', () => {
    const cc = cubic(100 * MSS);
    cc.onTimeout(100 * MSS, 0, true);
    expect(cc.ssthreshBytes).toBe(70 * MSS);
    expect(cc.cwndBytes).toBe(MSS);
  });

  it('forgets Wmax at a timeout, as Linux resets CUBIC on entering Loss: no plateau at the old window', () => {
    const cc = afterLossAt(1000);
    expect(cc.snapshot().wMaxSeg).toBe(1000);
    cc.onTimeout(700 * MSS, 0, true);
    expect(cc.snapshot().wMaxSeg).toBe(0);
    expect(cc.ssthreshBytes).toBe(Math.floor(700 * MSS * BETA));
  });

  it('grows at least 5% per RTT while no loss has set Wmax (left slow start by HyStart), as Linux does', () => {
    const cc = cubic(100 * MSS);
    cc.ssthreshBytes = cc.cwndBytes; // HyStart's exit: no loss, Wmax unknown
    const rounds = windowPerRtt(cc, 0, 20);
    let before = 100;
    for (const [, cwndSeg] of rounds) {
      // RFC 9438's curve from Wmax 0 alone adds 0.4·t³: under a segment in the first two seconds.
      expect(cwndSeg).toBeGreaterThanOrEqual(before * 1.05 - 1e-9);
      before = cwndSeg;
    }
    expect(before).toBeGreaterThan(100 * 1.05 ** 20 - 1e-6);
  });

  it('does not force 5% per RTT once a loss set Wmax: the curve plateaus there', () => {
    const cc = afterLossAt(1000);
    const rounds = windowPerRtt(cc, 0, 40);
    const [, last] = rounds[rounds.length - 1]!;
    // K = 3.9 s: four seconds after the loss the window is at the old one, not at 700·1.05^40.
    expect(last).toBeLessThan(1010);
  });

  // With windows of hundreds of segments W(t) outgrows the Reno-friendly
  // estimate (cwnd_epoch + α per RTT) from about a second after the loss on.

  it('follows W(t) = C·(t − K)³ + Wmax, one RTT ahead, after a loss', () => {
    const cc = afterLossAt(1000);
    const k = kFor(1000, 700);
    const rounds = windowPerRtt(cc, 5_000_000, 200).filter(([t]) => t >= 1);
    for (const [t, cwndSeg] of rounds) expect(cwndSeg).toBeCloseTo(wCubic(t + RTT_US / 1e6, 1000, k), 6);
  });

  it('plateaus at the window of the last loss K seconds after it', () => {
    const cc = afterLossAt(1000);
    const k = kFor(1000, 700);
    const rounds = windowPerRtt(cc, 0, 200);
    const nearK = rounds.reduce((best, r) => (Math.abs(r[0] + 0.1 - k) < Math.abs(best[0] + 0.1 - k) ? r : best));
    expect(Math.abs(nearK[1] - 1000)).toBeLessThan(0.1);
  });

  it('lowers Wmax to cwnd·(1 + β)/2 when a loss comes below the previous Wmax (fast convergence)', () => {
    const cc = afterLossAt(1000); // Wmax 1000
    cc.cwndBytes = 800 * MSS;
    cc.onFastRetransmit(800 * MSS); // Wmax 800·1.7/2 = 680, ssthresh 560
    cc.onRecoveryExit();
    expect(cc.cwndBytes).toBe(560 * MSS);
    const k = kFor(680, 560);
    const rounds = windowPerRtt(cc, 0, 200).filter(([t]) => t >= 1);
    for (const [t, cwndSeg] of rounds) expect(cwndSeg).toBeCloseTo(wCubic(t + RTT_US / 1e6, 680, k), 6);
  });

  it('keeps Wmax at cwnd when a loss comes at or above the previous Wmax', () => {
    const cc = afterLossAt(1000);
    cc.cwndBytes = 1200 * MSS;
    cc.onFastRetransmit(1200 * MSS); // Wmax 1200, ssthresh 840
    cc.onRecoveryExit();
    const k = kFor(1200, 840);
    const rounds = windowPerRtt(cc, 0, 200).filter(([t]) => t >= 1);
    for (const [t, cwndSeg] of rounds) expect(cwndSeg).toBeCloseTo(wCubic(t + RTT_US / 1e6, 1200, k), 6);
  });

  it('grows no faster than 1.5·cwnd per window of ACKs', () => {
    const cc = afterLossAt(100);
    // Long after K the cubic target is far above cwnd.
    cc.onAck(MSS, 0, RTT_US, true);
    const w = cc.cwndBytes;
    cc.onAck(w, 60_000_000, RTT_US, true);
    expect(cc.cwndBytes).toBeCloseTo(1.5 * w, 6);
  });

  it('uses the Reno-friendly estimate W_est where it exceeds W(t)', () => {
    const cc = afterLossAt(100);
    const alpha = (3 * (1 - BETA)) / (1 + BETA);
    // Windows ACKed at the instant of the epoch start: W(0) = 70 < W_est.
    for (let i = 1; i <= 5; i++) {
      cc.onAck(cc.cwndBytes, 0, RTT_US, true);
      expect(cc.cwndBytes / MSS).toBeCloseTo(70 + i * alpha, 9);
    }
  });

  it('does not grow in congestion avoidance when the sender was not cwnd-limited', () => {
    const cc = afterLossAt(100);
    for (let i = 0; i < 50; i++) cc.onAck(10 * MSS, i * RTT_US, RTT_US, false);
    expect(cc.cwndBytes).toBe(70 * MSS);
  });

  it('does not grow in slow start when the sender was not cwnd-limited', () => {
    const cc = cubic();
    cc.onAck(MSS, 0, RTT_US, false);
    expect(cc.cwndBytes).toBe(IW);
  });

  it('restarts from at most the initial window after idle', () => {
    const cc = afterLossAt(1000);
    cc.onIdleRestart();
    expect(cc.cwndBytes).toBe(IW);
  });

  it('starts a new curve at the first ACK in congestion avoidance after an idle restart', () => {
    const cc = afterLossAt(1000); // Wmax 1000, ssthresh 700
    windowPerRtt(cc, 0, 20);
    cc.onIdleRestart();
    for (let acks = 0; cc.cwndBytes < cc.ssthreshBytes; acks++) {
      if (acks > 100_000) throw new Error('runaway: slow start never reached ssthresh');
      cc.onAck(2 * MSS, 10_000_000, RTT_US, true);
    }
    const epochStartSeg = cc.cwndBytes / MSS;
    const k = kFor(1000, epochStartSeg);
    const rounds = windowPerRtt(cc, 20_000_000, 100).filter(([t]) => t >= 1);
    for (const [t, cwndSeg] of rounds) expect(cwndSeg).toBeCloseTo(wCubic(t + RTT_US / 1e6, 1000, k), 6);
  });
});
