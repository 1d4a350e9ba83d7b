import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TcpFlag, type Segment } from '../../../lib/codec/messages.js';
import { Rng } from '../../../lib/rng.js';
import { TcpPair, type Side } from './tcp-pair.js';

const MSS = 1000;
const ONE_WAY_US = 10_000;
const DELACK_US = 40_000;
const MIN_RTO_US = 200_000;
// NewReno without SACK: the loss-recovery cases check RFC 5681 / RFC 6582 arithmetic (ssthresh = flight / 2); CUBIC's
// is tested on its own, SACK recovery in sack.test.ts.
const base = { mssBytes: MSS, congestionControl: 'newreno' as const, sack: false };
const pair = (a: object = {}, b: object = {}) => new TcpPair({ a: { ...base, ...a }, b: { ...base, ...b } }, ONE_WAY_US);

const isSyn = (s: Segment) => (s.flags & TcpFlag.SYN) !== 0;
const isFin = (s: Segment) => (s.flags & TcpFlag.FIN) !== 0;
/** [time, seq] of every data segment `side` sent. */
const dataTimes = (p: TcpPair, side: Side) => p.io[side].sent.filter((s) => s.seg.payload.length > 0).map((s) => [s.atUs, s.seg.seq]);
/** A filter that drops the first segment matching `match` and passes everything else. */
function dropFirst(from: Side, match: (s: Segment) => boolean): (f: Side, s: Segment) => Segment | null {
  let done = false;
  return (f, s) => {
    if (!done && f === from && match(s)) {
      done = true;
      return null;
    }
    return s;
  };
}

describe('TcpEndpoint handshake', () => {
  it('establishes both sides and reports connected once on each', () => {
    const p = pair().open();
    expect([p.a.state, p.b.state]).toEqual(['established', 'established']);
    expect([p.io.a.connectedCalls, p.io.b.connectedCalls]).toEqual([1, 1]);
  });

  it('offers its MSS and window scale in the SYN and SYN-ACK', () => {
    const p = pair({ rcvBufBytes: 1024 * 1024 }, { rcvBufBytes: 6 * 1024 * 1024 }).open();
    const syn = p.io.a.sent[0]!.seg;
    const synAck = p.io.b.sent[0]!.seg;
    expect([syn.flags, syn.mss, syn.wscale]).toEqual([TcpFlag.SYN, MSS, 5]);
    expect([synAck.flags, synAck.mss, synAck.wscale]).toEqual([TcpFlag.SYN | TcpFlag.ACK, MSS, 7]);
  });

  it('sends with the smaller of the two MSS values on both sides', () => {
    const p = pair({ mssBytes: 1400 }, { mssBytes: 536 }).open();
    expect([p.a.mssBytes, p.b.mssBytes]).toEqual([536, 536]);
    p.write('a', 5_000);
    p.runFor(1_000_000);
    expect(Math.max(...p.io.a.dataSent().map((s) => s.payload.length))).toBe(536);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
  });

  it('scales the advertised window when both sides offer window scaling', () => {
    const p = pair({}, { rcvBufBytes: 1024 * 1024 }).open(); // b: shift 5
    p.write('a', 2 * MSS);
    p.runFor(100_000);
    const ack = p.io.b.sent.at(-1)!.seg;
    expect(ack.window).toBe((1024 * 1024) >> 5);
    expect(p.a.sndWnd).toBe(1024 * 1024);
  });

  it('does not scale when the SYN offers no window scale', () => {
    const p = pair({ windowScaling: false }, { rcvBufBytes: 1024 * 1024 }).open();
    expect(p.io.a.sent[0]!.seg.wscale).toBeUndefined();
    p.write('a', 2 * MSS);
    p.runFor(100_000);
    expect(p.b.receiver.rcvWscale).toBe(0);
    expect(p.io.b.sent.at(-1)!.seg.window).toBe(0xffff);
    expect(p.a.sndWnd).toBe(0xffff);
  });

  it('does not scale its own window when the SYN-ACK offers no window scale', () => {
    const p = pair({ rcvBufBytes: 1024 * 1024 }, { windowScaling: false }).open();
    expect(p.io.b.sent[0]!.seg.wscale).toBeUndefined();
    p.write('b', 2 * MSS);
    p.runFor(100_000);
    expect(p.a.receiver.rcvWscale).toBe(0);
    expect(p.b.sndWnd).toBe(0xffff);
  });

  it('never has more than 64 KiB in flight without window scaling', () => {
    // The whole megabyte in the send buffer at once (no growth with the window): the peer's window is the only limit.
    const p = new TcpPair({ a: { ...base, sndBufAutotune: false }, b: { ...base, windowScaling: false } }, 50_000).open();
    p.write('a', 1_000_000);
    const endUs = p.nowUs + 5_000_000;
    let maxFlight = 0;
    for (let steps = 0; p.step(endUs); steps++) {
      if (steps > 1_000_000) throw new Error('runaway loop');
      maxFlight = Math.max(maxFlight, p.a.flightBytes);
    }
    expect(maxFlight).toBeLessThanOrEqual(0xffff);
    expect(maxFlight).toBeGreaterThan(0xffff - MSS); // the window, not cwnd, was the limit
  });

  it('retransmits a lost SYN after the initial RTO', () => {
    const p = pair();
    p.filter = dropFirst('a', isSyn);
    p.b.listen();
    p.a.connect(p.nowUs);
    p.runFor(2_000_000);
    const syns = p.io.a.sent.filter((s) => isSyn(s.seg)).map((s) => s.atUs);
    expect(syns).toEqual([1_000, 1_001_000]);
    expect([p.a.state, p.b.state]).toEqual(['established', 'established']);
  });

  it('answers a repeated SYN with its SYN-ACK again when the first SYN-ACK was lost', () => {
    const p = pair({}, { initialRtoUs: 3_000_000 });
    p.filter = dropFirst('b', isSyn);
    p.b.listen();
    p.a.connect(p.nowUs);
    p.runFor(1_100_000);
    expect(p.io.b.sent.filter((s) => isSyn(s.seg)).map((s) => s.atUs)).toEqual([11_000, 1_011_000]);
    expect([p.a.state, p.b.state]).toEqual(['established', 'established']);
  });

  it('drops and counts what its state does not take: a listener’s ACK, a reset, anything at a closed endpoint, a SYN-ACK of no SYN', () => {
    const ack = pair().open().io.a.sent.find((s) => !isSyn(s.seg))!.seg;
    expect(ack.flags & TcpFlag.ACK).not.toBe(0);
    const p = pair();
    p.b.onSegment(ack, p.nowUs); // closed
    p.b.listen();
    p.b.onSegment(ack, p.nowUs);
    p.b.onSegment({ ...ack, flags: TcpFlag.RST }, p.nowUs);
    expect(p.b.state).toBe('listen');
    expect(p.io.b.sent).toEqual([]);
    expect(p.b.stats.segmentsOutOfState).toBe(3);
    // A SYN-ACK to a connection that sent no SYN of that number leaves it waiting for its own.
    p.a.connect(p.nowUs);
    p.a.onSegment({ ...ack, flags: TcpFlag.SYN | TcpFlag.ACK, ack: ack.ack + 7 }, p.nowUs);
    expect(p.a.state).toBe('syn-sent');
    expect(p.a.stats.segmentsOutOfState).toBe(1);
    p.runFor(100_000);
    expect([p.a.state, p.b.state]).toEqual(['established', 'established']);
  });
});

/** b as it is once the connection's quick-ack start is over: ACKs are delayed again. */
function pastQuickAck(p: TcpPair): TcpPair {
  p.b.receiver.quickAcks = 0;
  return p;
}

describe('TcpEndpoint delayed ACK', () => {
  it('acknowledges each of the first segments of a connection at once (quick-ack)', () => {
    const p = pair().open();
    const arrivalUs = p.nowUs + ONE_WAY_US;
    p.write('a', 4 * MSS);
    p.runUntil(arrivalUs);
    expect(p.io.b.sent.filter((s) => s.atUs >= arrivalUs).map((s) => s.seg.ack)).toEqual([1 + MSS, 1 + 2 * MSS, 1 + 3 * MSS, 1 + 4 * MSS]);
  });

  it('delays the ACK of a single full segment until the delayed-ACK timer fires', () => {
    const p = pastQuickAck(pair().open());
    const sentUs = p.nowUs;
    p.write('a', MSS);
    const arrivalUs = sentUs + ONE_WAY_US;
    p.runUntil(arrivalUs + DELACK_US - 1);
    expect(p.io.b.sent.filter((s) => s.atUs >= arrivalUs)).toEqual([]);
    p.runUntil(arrivalUs + DELACK_US);
    expect(p.io.b.sent.filter((s) => s.atUs >= arrivalUs).map((s) => [s.atUs, s.seg.ack])).toEqual([[arrivalUs + DELACK_US, 1 + MSS]]);
  });

  it('ACKs every second full segment at once', () => {
    const p = pastQuickAck(pair().open());
    const arrivalUs = p.nowUs + ONE_WAY_US;
    p.write('a', 4 * MSS);
    p.runUntil(arrivalUs);
    expect(p.io.b.sent.filter((s) => s.atUs >= arrivalUs).map((s) => [s.atUs, s.seg.ack])).toEqual([
      [arrivalUs, 1 + 2 * MSS],
      [arrivalUs, 1 + 4 * MSS],
    ]);
  });

  it('ACKs every segment at once when delayed ACKs are off', () => {
    const p = pair({}, { delayedAck: false }).open();
    const arrivalUs = p.nowUs + ONE_WAY_US;
    p.write('a', 3 * MSS);
    p.runUntil(arrivalUs);
    expect(p.io.b.sent.filter((s) => s.atUs >= arrivalUs).map((s) => s.seg.ack)).toEqual([1 + MSS, 1 + 2 * MSS, 1 + 3 * MSS]);
  });
});

describe('TcpEndpoint loss recovery', () => {
  it('sends an immediate duplicate ACK for each out-of-order segment', () => {
    const p = pastQuickAck(pair().open());
    p.filter = dropFirst('a', (s) => s.seq === 1 + MSS);
    const arrivalUs = p.nowUs + ONE_WAY_US;
    p.write('a', 4 * MSS);
    p.runUntil(arrivalUs);
    // Segment 1 alone is delayed; 3 and 4 find the hole at 1001 and are answered at once.
    expect(p.io.b.sent.filter((s) => s.atUs >= arrivalUs).map((s) => [s.atUs, s.seg.ack])).toEqual([
      [arrivalUs, 1 + MSS],
      [arrivalUs, 1 + MSS],
    ]);
  });

  /** a has sent ten segments [1, 10 001); b's ACKs are injected by hand. */
  function tenInFlight() {
    const p = pair().open();
    p.filter = (from, s) => (from === 'a' ? null : s);
    p.write('a', 10 * MSS);
    // b's ACKs: a constant window (6 MiB >> 7), as b would advertise it.
    const synAck = p.io.b.sent[0]!.seg;
    const ack = (n: number): Segment => ({ ...synAck, flags: TcpFlag.ACK, seq: 1, ack: n, window: (6 * 1024 * 1024) >> 7, mss: 0, wscale: undefined, tsValUs: p.nowUs, tsEcrUs: p.nowUs });
    const retransmitted = () => p.io.a.dataSent().slice(10).map((s) => s.seq);
    // b's first ACK moves a from the SYN-ACK's unscaled window to the scaled one: not a duplicate.
    p.inject('a', ack(1));
    return { p, ack, retransmitted };
  }

  it('fast-retransmits on the third duplicate ACK, not before', () => {
    const { p, ack, retransmitted } = tenInFlight();
    p.inject('a', ack(1 + MSS));
    p.inject('a', ack(1 + MSS));
    p.inject('a', ack(1 + MSS));
    expect(retransmitted()).toEqual([]);
    p.inject('a', ack(1 + MSS));
    expect(retransmitted()).toEqual([1 + MSS]);
    expect(p.a.stats.fastRetransmits).toBe(1);
    expect(p.a.inRecovery).toBe(true);
  });

  it('sets ssthresh to half the flight and cwnd to ssthresh + 3·MSS on fast retransmit', () => {
    const { p, ack } = tenInFlight();
    for (let i = 0; i < 4; i++) p.inject('a', ack(1 + MSS));
    // Flight at the third duplicate: [1001, 10 001) = 9000 bytes.
    expect(p.a.cc.ssthreshBytes).toBe(4_500);
    expect(p.a.cc.cwndBytes).toBe(4_500 + 3 * MSS);
  });

  it('fast-retransmits when the very first data segment is lost', () => {
    const { p, ack, retransmitted } = tenInFlight();
    for (let i = 0; i < 3; i++) p.inject('a', ack(1));
    expect(retransmitted()).toEqual([1]);
    expect(p.a.inRecovery).toBe(true);
  });

  it('recovers a lost first data segment by fast retransmit, without a timeout', () => {
    const p = pair().open();
    p.filter = dropFirst('a', (s) => s.seq === 1 && s.payload.length > 0);
    p.write('a', 20 * MSS);
    p.runFor(1_000_000);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
    expect([p.a.stats.fastRetransmits, p.a.stats.timeouts]).toEqual([1, 0]);
  });

  it('retransmits the next hole at once on a partial ACK and stays in recovery (RFC 6582)', () => {
    const { p, ack, retransmitted } = tenInFlight();
    for (let i = 0; i < 4; i++) p.inject('a', ack(1 + MSS));
    const cwnd = p.a.cc.cwndBytes;
    p.inject('a', ack(1 + 3 * MSS)); // partial: [3001, 4001) is missing too
    expect(retransmitted()).toEqual([1 + MSS, 1 + 3 * MSS]);
    expect(p.a.inRecovery).toBe(true);
    // Deflated by the 2000 bytes ACKed, plus one MSS back.
    expect(p.a.cc.cwndBytes).toBe(cwnd - 2 * MSS + MSS);
  });

  it('restarts the retransmission timer on the first partial ACK only (RFC 6582 Impatient: no SACK yet)', () => {
    const { p, ack } = tenInFlight();
    for (let i = 0; i < 4; i++) p.inject('a', ack(1 + MSS));
    p.runFor(1_000);
    p.inject('a', ack(1 + 3 * MSS));
    const rtoAfterFirst = p.timer('a', 'rto');
    expect(rtoAfterFirst).toBe(p.nowUs + p.a.rtt.rtoUs);
    p.runFor(1_000);
    p.inject('a', ack(1 + 5 * MSS));
    expect(p.timer('a', 'rto')).toBe(rtoAfterFirst);
  });

  it('sends one new segment beyond cwnd on each of the first two duplicate ACKs (limited transmit, RFC 3042)', () => {
    const { p, ack } = tenInFlight();
    p.write('a', 5 * MSS); // more data than cwnd lets out
    const newData = () => p.io.a.dataSent().filter((s) => s.seq >= 1 + 10 * MSS).map((s) => s.seq);
    expect(newData()).toEqual([]);
    p.inject('a', ack(1 + MSS)); // new data acknowledged: slow start lets two segments out
    expect(newData()).toEqual([1 + 10 * MSS, 1 + 11 * MSS]);
    p.inject('a', ack(1 + MSS)); // the first duplicate
    expect(newData()).toEqual([1 + 10 * MSS, 1 + 11 * MSS, 1 + 12 * MSS]);
    p.inject('a', ack(1 + MSS));
    expect(newData()).toEqual([1 + 10 * MSS, 1 + 11 * MSS, 1 + 12 * MSS, 1 + 13 * MSS]);
    p.inject('a', ack(1 + MSS)); // the third: fast retransmit, not a third new segment
    expect(p.a.inRecovery).toBe(true);
    expect(p.io.a.dataSent().at(-1)!.seq).toBe(1 + MSS);
  });

  it('after a timeout, takes no fast retransmit from duplicate ACKs that cover no more than what was sent before it (RFC 6582 §4)', () => {
    const { p, ack, retransmitted } = tenInFlight();
    p.runFor(2_000_000); // a timeout: recover is [1, 10 001)'s last byte
    expect(p.a.stats.timeouts).toBeGreaterThan(0);
    p.inject('a', ack(1 + 10 * MSS)); // everything acknowledged
    p.write('a', 10 * MSS);
    const sendsOf = (seq: number) => p.io.a.dataSent().filter((s) => s.seq === seq).length;
    // Duplicates naming 10 001 cover exactly recover, not more: they may come from the go-back-N resends.
    for (let i = 0; i < 3; i++) p.inject('a', ack(1 + 10 * MSS));
    expect(p.a.inRecovery).toBe(false);
    expect(sendsOf(1 + 10 * MSS)).toBe(1);
    // Past it, a loss is repaired by fast retransmit again.
    p.inject('a', ack(1 + 11 * MSS));
    for (let i = 0; i < 3; i++) p.inject('a', ack(1 + 11 * MSS));
    expect(p.a.inRecovery).toBe(true);
    expect(sendsOf(1 + 11 * MSS)).toBe(2);
    expect(retransmitted().at(-1)).toBe(1 + 11 * MSS);
  });

  it('leaves recovery on a full ACK with cwnd = min(ssthresh, flight + MSS)', () => {
    const { p, ack } = tenInFlight();
    for (let i = 0; i < 4; i++) p.inject('a', ack(1 + MSS));
    p.inject('a', ack(1 + 3 * MSS));
    p.inject('a', ack(1 + 10 * MSS));
    expect(p.a.inRecovery).toBe(false);
    expect(p.a.cc.cwndBytes).toBe(Math.min(4_500, 0 + MSS + MSS));
  });

  it('recovers one lost segment by fast retransmit, without a timeout', () => {
    const p = pair().open();
    p.filter = dropFirst('a', (s) => s.seq === 1 + 3 * MSS);
    p.write('a', 20 * MSS);
    p.runFor(1_000_000);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
    expect([p.a.stats.fastRetransmits, p.a.stats.timeouts]).toEqual([1, 0]);
  });

  it('retransmits on RTO with exponential backoff while the path is down', () => {
    const p = pair().open();
    p.filter = (from, s) => (from === 'a' && s.payload.length > 0 ? null : s);
    const rto = p.a.rtt.rtoUs;
    const sentUs = p.nowUs;
    p.write('a', 5 * MSS);
    p.runFor(rto * 15 + 1);
    const resent = dataTimes(p, 'a').slice(5);
    expect(resent).toEqual([
      [sentUs + rto, 1],
      [sentUs + 3 * rto, 1],
      [sentUs + 7 * rto, 1],
      [sentUs + 15 * rto, 1],
    ]);
    expect(p.a.stats.timeouts).toBe(4);
  });

  it('sets cwnd to one MSS and ssthresh to half the flight on RTO', () => {
    const p = pair().open();
    p.filter = (from, s) => (from === 'a' && s.payload.length > 0 ? null : s);
    p.write('a', 8 * MSS);
    p.runFor(p.a.rtt.rtoUs);
    expect([p.a.cc.cwndBytes, p.a.cc.ssthreshBytes]).toEqual([MSS, 4 * MSS]);
  });

  it('goes back to the first unacknowledged byte after an RTO and resends the rest in order', () => {
    const p = pair().open();
    let dropped = 0;
    p.filter = (from, s) => (from === 'a' && s.payload.length > 0 && dropped++ < 5 ? null : s);
    p.write('a', 5 * MSS);
    p.runFor(2_000_000);
    expect(p.io.a.dataSent().slice(5).map((s) => s.seq)).toEqual([1, 1001, 2001, 3001, 4001]);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
  });

  it('returns to the unbacked-off RTO once new data is acknowledged', () => {
    const p = pair().open();
    p.filter = dropFirst('a', (s) => s.payload.length > 0);
    p.write('a', MSS);
    p.runFor(3_000_000);
    expect(p.a.stats.timeouts).toBe(1);
    expect(p.a.rtt.rtoUs).toBe(p.a.rtt.snapshot().baseRtoUs);
    expect(p.a.rtt.rtoUs).toBeGreaterThanOrEqual(p.a.rtt.srttUs + MIN_RTO_US);
  });
});

describe('TcpEndpoint zero window', () => {
  /** b advertises a zero window until `open` is set. */
  function zeroWindow() {
    const state = { open: false };
    const p = pair().open();
    p.filter = (from, s) => (from === 'b' && !state.open ? { ...s, window: 0 } : s);
    return { p, state };
  }
  const probes = (p: TcpPair) => p.io.a.sent.filter((s) => s.seg.payload.length === 0 && s.seg.seq === p.a.sndUna - 1).map((s) => s.atUs);

  it('stops sending and probes the zero window, doubling the interval', () => {
    const { p } = zeroWindow();
    p.write('a', 30 * MSS);
    p.runFor(100_000);
    const sent = p.io.a.dataSent().length;
    const armedAt = p.timer('a', 'persist')!;
    const rto = p.a.rtt.rtoUs;
    p.runUntil(armedAt + 7 * rto);
    expect(p.io.a.dataSent().length).toBe(sent);
    expect(probes(p)).toEqual([armedAt, armedAt + 2 * rto, armedAt + 6 * rto]);
  });

  it('resumes sending when a probe finds the window open', () => {
    const { p, state } = zeroWindow();
    p.write('a', 30 * MSS);
    p.runFor(100_000);
    const sent = p.io.a.dataSent().length;
    state.open = true;
    p.runFor(2_000_000);
    expect(p.io.a.dataSent().length).toBeGreaterThan(sent);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
    expect(p.timer('a', 'persist')).toBeUndefined();
  });
});

describe('TcpEndpoint FIN', () => {
  it('tells the peer’s application once that the stream ended, after all its data', () => {
    const p = pair().open();
    p.write('a', 3 * MSS);
    p.a.close(p.nowUs);
    p.runFor(1_000_000);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
    expect(p.io.b.peerClosedCalls).toBe(1);
  });

  it('tells the peer’s application once even when the FIN is retransmitted', () => {
    const p = pair().open();
    p.write('a', 3 * MSS);
    p.a.close(p.nowUs);
    // Lose b's ACK of the FIN, so a times out and sends the FIN again.
    p.filter = dropFirst('b', (s) => s.ack === 1 + 3 * MSS + 1);
    p.runFor(2_000_000);
    expect(p.io.a.sent.filter((s) => isFin(s.seg)).length).toBe(2);
    expect(p.io.b.peerClosedCalls).toBe(1);
  });

  it('tells the peer’s application when a FIN that overtook lost data is completed by a fast retransmit', () => {
    const p = pair().open();
    p.filter = dropFirst('a', (s) => s.seq === 1 + MSS && s.payload.length > 0);
    p.write('a', 6 * MSS);
    p.a.close(p.nowUs);
    p.runFor(3_000_000);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
    expect([p.a.stats.fastRetransmits, p.a.stats.timeouts]).toEqual([1, 0]);
    expect(p.b.receiver.finReceived).toBe(true);
    expect(p.io.b.peerClosedCalls).toBe(1);
  });
});

describe('TcpEndpoint Nagle', () => {
  it('holds a short segment while data is unacknowledged, until the ACK arrives', () => {
    const p = pastQuickAck(pair().open());
    const t0 = p.nowUs;
    p.write('a', MSS + 500);
    p.runFor(1_000_000);
    // b delays its ACK of the lone full segment; the short one leaves when it returns.
    expect(dataTimes(p, 'a')).toEqual([
      [t0, 1],
      [t0 + ONE_WAY_US + DELACK_US + ONE_WAY_US, 1 + MSS],
    ]);
  });

  it('sends a short segment at once when nothing is unacknowledged', () => {
    const p = pair().open();
    const t0 = p.nowUs;
    p.write('a', 500);
    expect(dataTimes(p, 'a')).toEqual([[t0, 1]]);
  });

  it('sends a short segment at once when Nagle is off', () => {
    const p = pair({ nagle: false }).open();
    const t0 = p.nowUs;
    p.write('a', MSS + 500);
    expect(dataTimes(p, 'a')).toEqual([
      [t0, 1],
      [t0, 1 + MSS],
    ]);
  });
});

describe('TcpEndpoint stream', () => {
  it('delivers the whole stream once, in order, through random loss both ways', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.constantFrom('newreno' as const, 'cubic' as const), (seed, congestionControl) => {
        const rng = new Rng(seed, 'loss');
        const p = pair({ congestionControl }).open();
        p.filter = (_from, s) => (rng.chance(0.05) ? null : s);
        p.write('a', 60 * MSS + 123);
        p.a.close(p.nowUs);
        p.runFor(120_000_000);
        expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
        expect(p.io.b.peerClosedCalls).toBe(1);
      }),
      { numRuns: 40 },
    );
  });
});
