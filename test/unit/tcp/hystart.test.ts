import { describe, expect, it } from 'vitest';
import { Cubic } from '../../../lib/tcp/congestion/cubic.js';
import { Hystart, hystartAckDelayUs } from '../../../lib/tcp/congestion/hystart.js';
import { RTT_SAMPLER_MAX_REMEMBERED, RttSampler } from '../../../lib/tcp/rtt-sampler.js';

const MSS = 1000;

/** ACKs of a round of `n` at `gapUs` apart from `t0`, each with `rttUs`; snd.una passes the round's end first. */
function round(h: Hystart, t0: number, n: number, gapUs: number, rttUs: number, endSeq: number, cwndSegments = 20): { foundAt: number | null; next: number } {
  let foundAt: number | null = null;
  for (let i = 0; i < n; i++) {
    const now = t0 + i * gapUs;
    if (h.onAck({ rttUs, sndUna: endSeq + 1 + i, sndNxt: endSeq + 100_000 }, cwndSegments, now, false) && foundAt === null) foundAt = i;
  }
  return { foundAt, next: endSeq + 100_000 };
}

describe('HyStart (Linux tcp_cubic)', () => {
  it('ends slow start when the smallest of a round\'s first 8 RTTs exceeds the minimum by the clamped eighth (4 ms here)', () => {
    const h = new Hystart();
    // ACKs 3 ms apart: no ACK train; RTTs at the minimum.
    expect(round(h, 0, 12, 3_000, 1_000, 0).foundAt).toBeNull();
    // 4 ms above the minimum is not enough; 4.001 ms is, once 8 samples are in.
    expect(round(h, 100_000, 12, 3_000, 5_000, 200_000).foundAt).toBeNull();
    const late = round(h, 200_000, 12, 3_000, 5_001, 400_000);
    expect(late.foundAt).toBe(8);
    expect(h.found).toBe(true);
  });

  it('ends slow start on an ACK train longer than half the minimum RTT', () => {
    const h = new Hystart();
    // Minimum RTT 10 ms; ACKs 1 ms apart: the train passes 5 ms at the sixth ACK after the round began.
    const r = round(h, 0, 10, 1_000, 10_000, 0);
    expect(r.foundAt).toBe(6);
  });

  it('lets the ACK train run longer by the ACK delay, half of it without pacing (hystart_ack_delay)', () => {
    // Minimum RTT 10 ms, ACKs 1 ms apart: without a delay the train passes 10 / 2 = 5 ms at the sixth ACK; with 4 ms, (10 + 4) / 2 = 7 ms at the eighth.
    expect(round(new Hystart(), 0, 10, 1_000, 10_000, 0).foundAt).toBe(6);
    let foundAt: number | null = null;
    const h = new Hystart();
    for (let i = 0; i < 10 && foundAt === null; i++) if (h.onAck({ rttUs: 10_000, sndUna: i + 1, sndNxt: 100_000 }, 20, i * 1_000, false, 4_000)) foundAt = i;
    expect(foundAt).toBe(8);
  });

  it('computes the ACK delay as Linux does: four 64 KiB GSO packets at the pacing rate, at most 1 ms', () => {
    // 1448 B × 100 segments / 10 ms, doubled in slow start: 28.96 MB/s; 262,144 B take 9.05 ms: capped.
    expect(hystartAckDelayUs(1448, 100, 1e9, 10_000)).toBe(1_000);
    // 1448 B × 1000 segments / 1 ms × 2 = 2.896 GB/s: 90 µs.
    expect(hystartAckDelayUs(1448, 1000, 1e9, 1_000)).toBe(90);
    // Past half ssthresh the rate is 1.2 × cwnd / SRTT: 150 µs.
    expect(hystartAckDelayUs(1448, 1000, 1500, 1_000)).toBe(150);
    // No RTT measured yet: no rate, no delay.
    expect(hystartAckDelayUs(1448, 10, 1e9, 0)).toBe(0);
  });

  it('lets an ACK gap over 2 ms break the train for the rest of the round', () => {
    const h = new Hystart();
    expect(h.onAck({ rttUs: 10_000, sndUna: 1, sndNxt: 100 }, 20, 0, false)).toBe(false);
    expect(h.onAck({ rttUs: 10_000, sndUna: 2, sndNxt: 100 }, 20, 3_000, false)).toBe(false); // a 3 ms gap
    for (let t = 4_000; t < 20_000; t += 1_000) expect(h.onAck({ rttUs: 10_000, sndUna: 3, sndNxt: 100 }, 20, t, false)).toBe(false);
  });

  it('waits for 16 segments, and ignores ACKs without an RTT or right after a recovery', () => {
    const h = new Hystart();
    expect(round(h, 0, 20, 100, 10_000, 0, 15).foundAt).toBeNull();
    expect(h.onAck({ rttUs: null, sndUna: 1, sndNxt: 2 }, 20, 0, false)).toBe(false);
    const fresh = new Hystart();
    for (let i = 0; i < 50; i++) expect(fresh.onAck({ rttUs: 10_000, sndUna: i + 1, sndNxt: 1_000 }, 20, i * 100, true)).toBe(false);
  });

  it('watches slow start again after a timeout', () => {
    const h = new Hystart();
    round(h, 0, 10, 1_000, 10_000, 0);
    expect(h.found).toBe(true);
    h.reset();
    expect(h.found).toBe(false);
    expect(round(h, 1_000_000, 10, 1_000, 10_000, 500_000).foundAt).toBe(6);
  });

  it('forgets the smallest delay at a timeout (Linux bictcp_reset): a path slower since is not read as a queue', () => {
    const h = new Hystart();
    // Rounds at 10 ms, 3 ms apart (no ACK train), then a timeout; the path now takes 30 ms.
    expect(round(h, 0, 12, 3_000, 10_000, 0).foundAt).toBeNull();
    h.reset();
    expect(h.snapshot().delayMinUs).toBe(0);
    expect(round(h, 1_000_000, 12, 3_000, 30_000, 200_000).foundAt).toBeNull();
    // Kept, the 10 ms minimum would have ended slow start at the eighth sample: 30 ms > 10 + 4 ms.
    expect(round(h, 2_000_000, 12, 3_000, 34_001, 400_000).foundAt).toBe(8);
  });

  it('makes CUBIC set ssthresh to cwnd, so the next ACK grows it in congestion avoidance', () => {
    const cc = new Cubic({ mssBytes: MSS, initialWindowBytes: 20 * MSS });
    const t = { now: 0, una: 0 };
    const ack = (rttUs: number) => {
      t.now += 1_000;
      t.una += MSS;
      cc.onAck(MSS, t.now, 10_000, true, { rttUs, sndUna: t.una, sndNxt: 1_000_000 });
    };
    for (let i = 0; i < 6; i++) ack(10_000);
    expect(cc.ssthreshBytes).toBe(Number.MAX_SAFE_INTEGER);
    ack(10_000); // the train has lasted over 5 ms
    expect(cc.ssthreshBytes).toBeLessThan(Number.MAX_SAFE_INTEGER);
    // The same ACK then grows it as congestion avoidance does: by a fraction of a segment.
    expect(cc.cwndBytes - cc.ssthreshBytes).toBeGreaterThanOrEqual(0);
    expect(cc.cwndBytes - cc.ssthreshBytes).toBeLessThan(MSS);
    const off = new Cubic({ mssBytes: MSS, initialWindowBytes: 20 * MSS, hystart: false });
    for (let i = 0; i < 20; i++) off.onAck(MSS, (i + 1) * 1_000, 10_000, true, { rttUs: 10_000, sndUna: (i + 1) * MSS, sndNxt: 1_000_000 });
    expect(off.ssthreshBytes).toBe(Number.MAX_SAFE_INTEGER);
    expect(cc.snapshot().hystart.found).toBe(true);
  });
});

describe('RttSampler (the acker\'s wire side)', () => {
  it('samples each ACK from the newest segment it covers, sent once', () => {
    const s = new RttSampler();
    s.sent(1, 100, false, 1_000);
    s.sent(101, 100, false, 1_200);
    s.sent(201, 100, false, 1_400);
    expect(s.acked(1, 2_000)).toBeNull(); // covers nothing
    expect(s.acked(50, 2_000)).toBeNull(); // no whole segment
    expect(s.acked(150, 2_000)).toBe(2_000 - 1_000);
    expect(s.acked(201, 2_100)).toBe(2_100 - 1_200);
    expect(s.acked(301, 2_500)).toBe(2_500 - 1_400);
    expect(s.acked(301, 2_600)).toBeNull(); // a duplicate
  });

  it('forgets every earlier transmission on a retransmission (Karn)', () => {
    const s = new RttSampler();
    s.sent(1, 100, false, 1_000);
    s.sent(101, 100, false, 1_100);
    s.sent(1, 100, true, 1_500);
    expect(s.acked(201, 2_000)).toBeNull();
    s.sent(201, 100, false, 2_100);
    expect(s.acked(301, 2_400)).toBe(300);
  });

  it('keeps at most RTT_SAMPLER_MAX_REMEMBERED transmissions: the oldest go first, and an ACK of forgotten ones alone gives no sample, never a wrong one', () => {
    const s = new RttSampler();
    const EXTRA = 1_000;
    for (let i = 0; i < RTT_SAMPLER_MAX_REMEMBERED + EXTRA; i++) s.sent(1 + i, 1, false, i);
    expect(s.remembered).toBe(RTT_SAMPLER_MAX_REMEMBERED);
    expect(s.acked(1 + EXTRA, 100_000)).toBeNull();
    expect(s.acked(2 + EXTRA, 100_000)).toBe(100_000 - EXTRA);
    expect(s.acked(1 + RTT_SAMPLER_MAX_REMEMBERED + EXTRA, 100_000)).toBe(100_000 - (RTT_SAMPLER_MAX_REMEMBERED + EXTRA - 1));
  });
});
