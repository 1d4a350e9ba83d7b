import { describe, expect, it } from 'vitest';
import { dropFirstOf, TcpPair, type Side } from './tcp-pair.js';

const MSS = 1000;
const ONE_WAY_US = 10_000;
const MIN_RTO_US = 200_000;
// NewReno keeps the window arithmetic checkable: a loss halves the flight (RFC 5681).
const base = { mssBytes: MSS, congestionControl: 'newreno' as const, sack: true, minRtoUs: MIN_RTO_US };
const pair = (a: object = {}, b: object = {}) => new TcpPair({ a: { ...base, ...a }, b: { ...base, ...b } }, ONE_WAY_US);
const seg = (k: number) => 1 + k * MSS;


/** a's data segments sent after `fromIndex` of its transmissions, as [time, seq, bytes]. */
const dataSentSince = (p: TcpPair, fromIndex: number) =>
  p.io.a.sent
    .slice(fromIndex)
    .filter((s) => s.seg.payload.length > 0)
    .map((s) => [s.atUs, s.seg.seq, s.seg.payload.length]);

/** a sends its one loss probe exactly at `probeAtUs` (none a µs before), and it is `segment` again, one MSS. */
function expectProbeAt(p: TcpPair, probeAtUs: number, sentBefore: number, segment: number): void {
  p.runUntil(probeAtUs - 1);
  expect(p.a.sender.stats.lossProbes).toBe(0);
  p.runUntil(probeAtUs);
  expect(p.a.sender.stats.lossProbes).toBe(1);
  expect(dataSentSince(p, sentBefore).at(-1)).toEqual([probeAtUs, segment, MSS]);
}

/** Four segments from a, the last one lost, run until the first three are ACKed; `sentBefore` counts a's transmissions before them. */
function lastOfFourLost(options: object = {}) {
  const p = pair(options, options).open();
  p.filter = dropFirstOf('a', [seg(3)]);
  const sentBefore = p.io.a.sent.length;
  p.write('a', 4 * MSS);
  p.runFor(2 * ONE_WAY_US + 1);
  return { p, sentBefore };
}

describe('tail loss probe (RFC 8985 §7, Linux tcp_send_loss_probe)', () => {
  /** When `side`'s retransmission timer was last armed, and for when. */
  const lastArmed = (p: TcpPair, side: Side) => p.io[side].timerSets.filter((t) => t.name === `${side}.rto`).at(-1)!;

  it('probes a lost last segment with its retransmission at min(2 SRTT + the delayed-ACK allowance, RTO), then reduces cwnd: its ACK echoes the probe, not the lost original', () => {
    // Segments 0..2 are ACKed, segment 3 is lost and nothing follows it.
    const { p, sentBefore } = lastOfFourLost();
    const armed = lastArmed(p, 'a');
    const { srttUs, rtoUs } = p.a.sender.rtt;
    // One segment in flight: the peer may hold its ACK, so the probe waits 2 SRTT + TCP_RTO_MIN, capped by the RTO.
    expect(armed.atUs - armed.setAtUs).toBe(Math.min(Math.ceil(2 * srttUs + MIN_RTO_US), rtoUs));
    const cwndBefore = p.a.sender.cc.cwndBytes;
    p.runUntil(armed.atUs);
    expect(dataSentSince(p, sentBefore).filter(([atUs]) => atUs! >= armed.atUs)).toEqual([[armed.atUs, seg(3), MSS]]);
    // A probe, not a timeout: no backoff, no collapse of the window to one segment.
    expect([p.a.sender.stats.lossProbes, p.a.sender.stats.timeouts, p.a.sender.rtt.rtoUs]).toEqual([1, 0, rtoUs]);
    p.runFor(2 * ONE_WAY_US + 1);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
    // The ACK of the probe echoes the probe's timestamp: the original was lost, the probe repaired it.
    expect(p.a.sender.stats.lossProbeRecoveries).toBe(1);
    expect(p.a.sender.cc.cwndBytes).toBeLessThan(cwndBefore);
    expect(p.a.sender.cc.cwndBytes).toBeGreaterThan(MSS);
  });

  it('restarts a pending probe when new data goes (RFC 8985 §7.2): the probe comes a probe timeout after the last new segment, no later than the RTO', () => {
    // One segment in flight: the probe is due at the RTO. A second one, lost too, goes `beforeDueUs` ahead of it: the
    // probe comes 2 SRTT + 2 ms after it (no longer held for a delayed ACK), but never after the RTO it stands in for.
    for (const beforeDueUs of [1_000, 150_000]) {
      const { p, sentBefore } = lastOfFourLost();
      const firstDueUs = p.timer('a', 'rto')!;
      p.runUntil(firstDueUs - beforeDueUs);
      p.filter = dropFirstOf('a', [seg(3), seg(4)]);
      const writtenAtUs = p.nowUs;
      p.write('a', MSS);
      const probeAtUs = Math.min(writtenAtUs + Math.ceil(2 * p.a.sender.rtt.srttUs + 2_000), firstDueUs);
      expect(probeAtUs < firstDueUs).toBe(beforeDueUs === 150_000);
      expectProbeAt(p, probeAtUs, sentBefore, seg(4));
    }
  });

  it('moves a pending probe later when new data goes shortly before it is due', () => {
    const p = pair().open();
    // Two segments in flight and lost: the probe is due 2 SRTT + 2 ms after the last ACK, well before the RTO.
    p.filter = dropFirstOf('a', [seg(4), seg(5), seg(6)]);
    const sentBefore = p.io.a.sent.length;
    p.write('a', 6 * MSS);
    p.runFor(2 * ONE_WAY_US + 1);
    const firstDueUs = p.timer('a', 'rto')!;
    p.runUntil(firstDueUs - 5_000);
    const writtenAtUs = p.nowUs;
    p.write('a', MSS);
    const probeAtUs = writtenAtUs + Math.ceil(2 * p.a.sender.rtt.srttUs + 2_000);
    expectProbeAt(p, probeAtUs, sentBefore, seg(6));
  });

  it('with more than one segment in flight, probes after 2 SRTT + 2 ms with the highest segment', () => {
    const p = pair().open();
    // The last two segments are lost: the last ACK leaves two in flight.
    p.filter = dropFirstOf('a', [seg(4), seg(5)]);
    p.write('a', 6 * MSS);
    p.runFor(2 * ONE_WAY_US + 1);
    const armed = lastArmed(p, 'a');
    expect(armed.atUs - armed.setAtUs).toBe(Math.ceil(2 * p.a.sender.rtt.srttUs + 2_000));
    expect(armed.atUs - armed.setAtUs).toBeLessThan(p.a.sender.rtt.rtoUs);
    p.runUntil(armed.atUs);
    expect(p.io.a.sent.at(-1)!.seg.seq).toBe(seg(5));
    // Its SACK shows the segment below it lost: recovery resends it, no timeout.
    p.runFor(1_000_000);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
    expect([p.a.sender.stats.lossProbes, p.a.sender.stats.timeouts]).toEqual([1, 0]);
  });

  it('sends new data a short write left behind Nagle as the probe, when the last full segment went unacknowledged', () => {
    // As vopr seed 50187's client: a request of one MSS and a 20-byte tail; the ACK of the first segment is lost.
    const p = pair();
    p.open();
    let dropped = false;
    p.filter = (from, s) => {
      if (from === 'b' && !dropped && s.ack === seg(1)) {
        dropped = true;
        return null;
      }
      return s;
    };
    const sentBefore = p.io.a.sent.length;
    p.write('a', MSS + 20);
    p.runFor(ONE_WAY_US + 1);
    // Nagle holds the 20 bytes while the first segment is unacknowledged.
    expect(dataSentSince(p, sentBefore).map(([, seq, n]) => [seq, n])).toEqual([[seg(0), MSS]]);
    const probeAtUs = p.timer('a', 'rto')!;
    p.runUntil(probeAtUs);
    expect(dataSentSince(p, sentBefore).map(([, seq, n]) => [seq, n])).toEqual([
      [seg(0), MSS],
      [seg(1), 20],
    ]);
    p.runFor(2 * ONE_WAY_US + 1);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
    // New data as the probe: no loss was repaired by it, the window stays.
    expect(p.a.sender.stats.lossProbeRecoveries).toBe(0);
    expect(p.a.sender.stats.timeouts).toBe(0);
  });

  it('takes a probe whose original arrived too (a duplicate ACK at the probe) as no loss: cwnd stays', () => {
    const p = pair().open();
    // Segment 3's ACK is lost, not the segment: the probe's retransmission draws a duplicate ACK.
    let dropped = false;
    p.filter = (from, s) => {
      if (from === 'b' && !dropped && s.ack === seg(4)) {
        dropped = true;
        return null;
      }
      return s;
    };
    p.write('a', 4 * MSS);
    p.runFor(2 * ONE_WAY_US + 1);
    const cwndBefore = p.a.sender.cc.cwndBytes;
    p.runUntil(p.timer('a', 'rto')!);
    expect(p.a.sender.stats.lossProbes).toBe(1);
    p.runFor(2 * ONE_WAY_US + 1);
    expect(p.a.sender.stats.lossProbeRecoveries).toBe(0);
    expect(p.a.sender.cc.cwndBytes).toBe(cwndBefore);
    // The episode is over: a later tail may be probed again.
    p.filter = dropFirstOf('a', [seg(5)]);
    p.write('a', 2 * MSS);
    p.runFor(2 * ONE_WAY_US + 1);
    p.runUntil(p.timer('a', 'rto')!);
    expect(p.a.sender.stats.lossProbes).toBe(2);
  });

  it('probes nothing without SACK, or with tlp off: the RTO repairs the tail', () => {
    for (const options of [{ sack: false }, { tlp: false }]) {
      const { p } = lastOfFourLost(options);
      const lastAckUs = p.nowUs - 1;
      const rtoAtUs = p.timer('a', 'rto')!;
      expect(rtoAtUs).toBeGreaterThanOrEqual(lastAckUs + MIN_RTO_US);
      p.runUntil(rtoAtUs);
      expect([p.a.sender.stats.lossProbes, p.a.sender.stats.timeouts]).toEqual([0, 1]);
      p.runFor(1_000_000);
      expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
    }
  });

  it('sends one probe per tail: a lost probe leaves the rest to the RTO', () => {
    const p = pair().open();
    // The last segment and its probe are both lost.
    p.filter = dropFirstOf('a', [seg(3)], 2);
    p.write('a', 4 * MSS);
    p.runFor(2 * ONE_WAY_US + 1);
    p.runUntil(p.timer('a', 'rto')!);
    expect(p.a.sender.stats.lossProbes).toBe(1);
    const rtoAtUs = p.timer('a', 'rto')!;
    expect(rtoAtUs - p.nowUs).toBe(p.a.sender.rtt.rtoUs);
    p.runUntil(rtoAtUs);
    expect([p.a.sender.stats.lossProbes, p.a.sender.stats.timeouts]).toEqual([1, 1]);
    p.runFor(1_000_000);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
  });

  it('sends no probe once duplicate ACKs started a recovery: the timer it was armed on stands for the RTO', () => {
    const p = pair().open();
    // Segment 2 is lost, and so is its fast retransmission: SACK recovery begins on duplicates, and no ACK advances.
    p.filter = dropFirstOf('a', [seg(2)], 2);
    p.write('a', 10 * MSS);
    p.runFor(2 * ONE_WAY_US + 1);
    expect(p.a.inRecovery).toBe(true);
    p.runFor(1_000_000);
    expect([p.a.sender.stats.lossProbes, p.a.sender.stats.timeouts]).toEqual([0, 1]);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
  });

  it('takes the probe SACKed above a hole as that hole lost: recovery repairs it at once, not the RTO (vopr seed 52713)', () => {
    // A request of one MSS and a 20-byte tail: the first segment is lost, Nagle holds the tail, no ACK comes back.
    const p = pair().open();
    p.filter = dropFirstOf('a', [seg(0)]);
    const sentBefore = p.io.a.sent.length;
    p.write('a', MSS + 20);
    const probeAtUs = p.timer('a', 'rto')!;
    p.runUntil(probeAtUs);
    expect(dataSentSince(p, sentBefore).map(([atUs, seq, n]) => [atUs, seq, n]).at(-1)).toEqual([probeAtUs, seg(1), 20]);
    // b SACKs the probe's 20 bytes above the hole: one duplicate ACK, and the hole goes again when it arrives.
    p.runUntil(probeAtUs + 2 * ONE_WAY_US);
    expect(dataSentSince(p, sentBefore).at(-1)).toEqual([probeAtUs + 2 * ONE_WAY_US, seg(0), MSS]);
    p.runFor(2 * ONE_WAY_US + 1);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
    expect(p.a.sender.stats.timeouts).toBe(0);
  });

  it('keeps a pending probe and the RTO behind it across a snapshot', () => {
    const { p } = lastOfFourLost();
    const snapshot = p.a.sender.snapshot();
    expect(snapshot.tlp).toMatchObject({ probeArmed: true, highSeq: null });
    const restored = pair().open();
    restored.a.sender.restore(snapshot);
    expect(restored.a.sender.snapshot()).toEqual(snapshot);
  });
});
