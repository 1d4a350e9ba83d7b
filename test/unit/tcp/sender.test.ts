import { describe, expect, it } from 'vitest';
import { TcpSender, type SenderHost } from '../../../lib/tcp/sender.js';
import { defaultTcpOptions } from '../../../lib/tcp/options.js';

const MSS = 1000;

function sender(dataEnd: () => number, options: { tlp?: boolean; congestionControl?: 'newreno' | 'cubic' } = {}) {
  const sent: { seq: number; len: number }[] = [];
  const timers = new Map<string, number>();
  const host: SenderHost = {
    dataEndSeq: dataEnd,
    emitData: (seq, len) => sent.push({ seq, len }),
    emitFin: () => undefined,
    emitProbe: () => sent.push({ seq: -1, len: 0 }),
    setTimer: (name, atUs) => timers.set(name, atUs),
    cancelTimer: (name) => timers.delete(name),
  };
  const s = new TcpSender({ ...defaultTcpOptions({ mssBytes: MSS, ...options }), nagle: false }, host, 't', 1);
  return { s, sent, timers };
}

describe('TcpSender with a small window', () => {
  it('does not stall when the peer offers a window below one MSS and half its largest window', () => {
    const { s, sent, timers } = sender(() => 1 + 10 * MSS);
    s.initWindow(8 * MSS, 0);
    s.trySend(0);
    expect(sent.map((x) => x.len)).toEqual(Array(8).fill(MSS));
    // Everything is ACKed, but the peer's application has read little: a 300-byte window.
    s.onAck({ seq: 1, ack: 1 + 8 * MSS, windowBytes: 300, carriesData: false, rttSampleUs: 1000, sackBlocks: [], echoedSentAtUs: null }, 1000);
    s.trySend(1000);
    expect(sent).toHaveLength(8); // silly-window avoidance holds the small segment back
    const persistAt = timers.get(s.persistTimer);
    expect(persistAt).toBeDefined(); // …but a timer will move things on
    s.onPersist(persistAt!);
    expect(sent.at(-1)).toEqual({ seq: 1 + 8 * MSS, len: 300 });
  });

  it('probes a zero window instead of sending data', () => {
    const { s, sent, timers } = sender(() => 1 + 2 * MSS);
    s.initWindow(0, 0);
    s.trySend(0);
    expect(sent).toHaveLength(0);
    s.onPersist(timers.get(s.persistTimer)!);
    expect(sent).toEqual([{ seq: -1, len: 0 }]);
    expect(timers.get(s.persistTimer)).toBeDefined();
  });
});

describe('TcpSender with SACK after a timeout', () => {
  it('does not count SACKed bytes it skips against cwnd: one segment of window still sends a whole segment (vopr seed 657)', () => {
    // A short segment, then two full ones; the peer SACKs the short one, its cumulative ACK is lost, the timer fires.
    let dataEnd = 1 + 500;
    // The timeout itself, not the tail loss probe that would come first.
    const { s, sent, timers } = sender(() => dataEnd, { tlp: false });
    s.sackEnabled = true;
    s.initWindow(64 * MSS, 0);
    s.trySend(0);
    dataEnd += 2 * MSS;
    s.trySend(0);
    expect(sent).toEqual([
      { seq: 1, len: 500 },
      { seq: 501, len: MSS },
      { seq: 1501, len: MSS },
    ]);
    s.onAck({ seq: 1, ack: 1, windowBytes: 64 * MSS, carriesData: false, rttSampleUs: null, sackBlocks: [1, 501], echoedSentAtUs: null }, 1000);
    sent.length = 0;
    s.onRto(timers.get(s.rtoTimer)!);
    // cwnd is one segment: go-back-N skips the SACKed 500 bytes and sends the next segment whole, not 500 bytes of it
    // (which silly-window avoidance would hold back, at every timeout, for ever).
    expect(sent).toEqual([{ seq: 501, len: MSS }]);
  });
});

describe('TcpSender undoing a spurious timeout (Linux tcp_try_undo_loss, RFC 3522 detection by timestamps)', () => {
  /** Eight segments out at t = 0, the timer fires at `rtoAt` and goes back N with one segment of cwnd. */
  function timedOut() {
    const h = sender(() => 1 + 8 * MSS);
    h.s.initWindow(64 * MSS, 0);
    h.s.trySend(0);
    expect(h.sent).toHaveLength(8);
    const cwndBefore = h.s.cc.cwndBytes;
    const rtoAt = h.timers.get(h.s.rtoTimer)!;
    h.sent.length = 0;
    expect(h.s.onRto(rtoAt)).toBe(true);
    expect(h.sent).toEqual([{ seq: 1, len: MSS }]);
    expect(h.s.cc.cwndBytes).toBe(MSS);
    return { ...h, cwndBefore, rtoAt };
  }
  const ackOf = (ack: number, echoedSentAtUs: number | null) => ({ seq: 1, ack, windowBytes: 64 * MSS, carriesData: false, rttSampleUs: null, sackBlocks: [], echoedSentAtUs });

  it('restores cwnd and ssthresh and resends nothing more when the first advancing ACK echoes an original', () => {
    const { s, sent, cwndBefore, rtoAt } = timedOut();
    // The originals were delayed (held for an epoch), not lost: the ACK echoes t = 0, before the retransmission.
    s.onAck(ackOf(1 + 2 * MSS, 0), rtoAt + 10);
    expect(s.stats.timeoutsUndone).toBe(1);
    expect(s.cc.cwndBytes).toBeGreaterThanOrEqual(cwndBefore);
    expect(s.sndNxt).toBe(s.sndMax); // the rest of the window counts as in flight again: go-back-N stops
    s.trySend(rtoAt + 10);
    expect(sent).toEqual([{ seq: 1, len: MSS }]); // nothing retransmitted beyond the timeout's own segment
  });

  it('keeps the reduction when the ACK echoes the retransmission (the loss was real), even if a later ACK echoes an original', () => {
    const { s, rtoAt } = timedOut();
    s.onAck(ackOf(1 + MSS, rtoAt), rtoAt + 10);
    expect(s.stats.timeoutsUndone).toBe(0);
    expect(s.cc.cwndBytes).toBeLessThanOrEqual(2 * MSS); // slow start from one segment
    s.onAck(ackOf(1 + 2 * MSS, 0), rtoAt + 20);
    expect(s.stats.timeoutsUndone).toBe(0);
    expect(s.cc.cwndBytes).toBeLessThanOrEqual(3 * MSS);
  });

  it('never undoes without timestamps (the acker’s wire side)', () => {
    const { s, rtoAt } = timedOut();
    s.onAck(ackOf(1 + 2 * MSS, null), rtoAt + 10);
    expect(s.stats.timeoutsUndone).toBe(0);
    expect(s.cc.cwndBytes).toBeLessThanOrEqual(3 * MSS);
    expect(s.sndNxt).toBeLessThan(s.sndMax);
  });

  it('a backed-off second timeout keeps what the first took, and a snapshot carries it', () => {
    const { s, timers, cwndBefore, rtoAt } = timedOut();
    expect('timeoutUndo' in sender(() => 1).s.snapshot()).toBe(false); // none pending: the state is as long as it always was
    const second = timers.get(s.rtoTimer)!;
    expect(second).toBeGreaterThan(rtoAt);
    s.onRto(second);
    const twin = sender(() => 1 + 8 * MSS).s;
    twin.restore(s.snapshot());
    // An ACK echoing a send from between the two timeouts answers the first retransmission: the loss was real.
    twin.onAck(ackOf(1 + MSS, rtoAt + 1), second + 10);
    expect(twin.stats.timeoutsUndone).toBe(0);
    const again = sender(() => 1 + 8 * MSS).s;
    again.restore(s.snapshot());
    again.onAck(ackOf(1 + 8 * MSS, 0), second + 10);
    expect(again.stats.timeoutsUndone).toBe(1);
    expect(again.cc.cwndBytes).toBeGreaterThanOrEqual(cwndBefore);
  });
});

describe('TcpSender behind a NIC that pushes back (SenderHost.mayTransmit)', () => {
  it('leaves a refused segment unsent, counts nothing as a retransmission, and sends it when tried again', () => {
    let room = 3;
    const sent: { seq: number; len: number }[] = [];
    const host: SenderHost = {
      dataEndSeq: () => 1 + 8 * MSS,
      emitData: (seq, len) => sent.push({ seq, len }),
      emitFin: () => undefined,
      emitProbe: () => undefined,
      setTimer: () => undefined,
      cancelTimer: () => undefined,
      mayTransmit: () => room > 0,
    };
    const s = new TcpSender({ ...defaultTcpOptions({ mssBytes: MSS }), nagle: false }, { ...host, emitData: (seq, len) => (room--, host.emitData(seq, len, false, 0)) }, 't', 1);
    s.initWindow(64 * MSS, 0);
    s.trySend(0);
    expect(sent.map((x) => x.seq)).toEqual([1, 1 + MSS, 1 + 2 * MSS]);
    expect(s.sndNxt).toBe(1 + 3 * MSS);
    room = 10;
    s.trySend(10);
    expect(sent).toHaveLength(8);
    expect(s.stats.retransmits).toBe(0);
  });
});

describe('TcpSender and an ACK of data never sent', () => {
  it('drops it with its window, counts it, and sends on as before (RFC 9293 3.10.7.4)', () => {
    const { s, sent } = sender(() => 1 + 4 * MSS);
    s.initWindow(2 * MSS, 0);
    s.trySend(0);
    expect(sent).toHaveLength(2);
    // A forged ACK past snd.max, opening the window wide: neither the ACK nor its window counts.
    expect(s.onAck({ seq: 1, ack: 1 + 3 * MSS, windowBytes: 64 * MSS, carriesData: false, rttSampleUs: null, sackBlocks: [], echoedSentAtUs: null }, 100)).toBe(0);
    expect(s.stats.acksAboveSndMax).toBe(1);
    expect(s.sndUna).toBe(1);
    s.trySend(100);
    expect(sent).toHaveLength(2);
    // The real ACK moves it on.
    expect(s.onAck({ seq: 1, ack: 1 + 2 * MSS, windowBytes: 2 * MSS, carriesData: false, rttSampleUs: 1000, sackBlocks: [], echoedSentAtUs: null }, 1000)).toBe(2 * MSS);
    s.trySend(1000);
    expect(sent.length).toBeGreaterThan(2);
  });
});

describe('TcpSender at repeated timeouts (Linux tcp_enter_loss)', () => {
  /** 40 segments out at t = 0 with cwnd 40: a timeout's first reduction sets ssthresh to 28 segments (CUBIC) or 20 (NewReno). */
  function flying(congestionControl: 'newreno' | 'cubic') {
    const h = sender(() => 1 + 40 * MSS, { tlp: false, congestionControl });
    h.s.initWindow(64 * MSS, 0);
    h.s.cc.cwndBytes = 40 * MSS;
    h.s.trySend(0);
    expect(h.sent).toHaveLength(40);
    return h;
  }
  const ackOf = (ack: number, rttSampleUs: number | null = null) => ({ seq: 1, ack, windowBytes: 64 * MSS, carriesData: false, rttSampleUs, sackBlocks: [], echoedSentAtUs: null });

  it('keeps the first timeout\'s ssthresh at a repeated one (CUBIC would take 0.7 of a one-segment window: two)', () => {
    const { s, timers } = flying('cubic');
    s.onRto(timers.get(s.rtoTimer)!);
    const first = s.cc.ssthreshBytes;
    expect(first).toBe(28 * MSS);
    s.onRto(timers.get(s.rtoTimer)!);
    expect(s.cc.ssthreshBytes).toBe(first);
    expect(s.cc.cwndBytes).toBe(MSS);
    // A snapshot carries the episode: the restored twin keeps ssthresh at its next timeout as well.
    const twin = sender(() => 1 + 40 * MSS, { tlp: false, congestionControl: 'cubic' });
    twin.s.restore(s.snapshot());
    twin.s.onRto(s.rtoDeadlineUs!);
    expect(twin.s.cc.ssthreshBytes).toBe(first);
  });

  it('reduces again at a timeout after an ACK advanced within the episode, and at one after the episode ended', () => {
    const { s, timers } = flying('newreno');
    const rtoAt = timers.get(s.rtoTimer)!;
    s.onRto(rtoAt);
    s.onAck(ackOf(1 + MSS), rtoAt + 10); // progress: the retransmission arrived
    s.onRto(timers.get(s.rtoTimer)!);
    expect(s.cc.ssthreshBytes).toBe(39 * MSS / 2); // half the 39 segments outstanding
    const second = s.cc.ssthreshBytes;
    s.onAck(ackOf(1 + 40 * MSS), s.rtoDeadlineUs! - 1); // the episode ends: everything is acknowledged
    expect('lossEpisode' in s.snapshot()).toBe(false);
    expect(s.cc.ssthreshBytes).toBe(second);
  });

  it('keeps a fast recovery\'s ssthresh at a timeout inside it', () => {
    const { s, timers } = flying('cubic');
    s.onAck(ackOf(1 + MSS), 100);
    for (let i = 0; i < 3; i++) s.onAck(ackOf(1 + MSS), 101 + i); // three duplicates: NewReno's fast retransmit halves the flight
    expect(s.inRecovery).toBe(true);
    const fast = s.cc.ssthreshBytes;
    expect(fast).toBe(Math.floor(40 * MSS * 0.7)); // CUBIC's β of the window, which the recovery then inflates
    s.onRto(timers.get(s.rtoTimer)!);
    expect(s.cc.ssthreshBytes).toBe(fast);
    expect(s.cc.cwndBytes).toBe(MSS);
  });

  it('ends the backoff only on an ACK with an RTT sample (RFC 6298 §5.7, Linux tcp_ack_update_rtt)', () => {
    const { s, timers } = flying('newreno');
    const base = s.rtt.rtoUs;
    s.onRto(timers.get(s.rtoTimer)!);
    expect(s.rtt.rtoUs).toBe(2 * base);
    s.onAck(ackOf(1 + MSS), 1); // advancing, but no sample (no timestamps, a retransmission: Karn)
    expect(s.rtt.rtoUs).toBe(2 * base);
    s.onAck(ackOf(1 + 2 * MSS, 500), 2);
    expect(s.rtt.rtoUs).toBeLessThan(2 * base);
  });
});

describe('TcpSender with a fractional congestion window (CUBIC grows cwnd by fractions of a segment)', () => {
  it('CUBIC in congestion avoidance leaves cwnd between whole bytes', () => {
    const { s } = sender(() => 1 + 100 * MSS, { congestionControl: 'cubic' });
    s.cc.ssthreshBytes = 4 * MSS;
    s.cc.cwndBytes = 5 * MSS;
    s.cc.onAck(MSS, 1_000, 1_000, true);
    expect(Number.isInteger(s.cc.cwndBytes)).toBe(false);
  });

  it('sends a whole-byte segment when the persist override lets out what a cwnd below one segment allows', () => {
    const { s, sent, timers } = sender(() => 1 + 10 * MSS, { congestionControl: 'cubic' });
    s.initWindow(64 * MSS, 0);
    s.cc.cwndBytes = 700.25; // below one segment, between bytes
    s.trySend(0);
    expect(sent).toHaveLength(0); // silly-window avoidance holds the short segment back, nothing in flight
    s.onPersist(timers.get(s.persistTimer)!);
    expect(sent).toEqual([{ seq: 1, len: 700 }]);
  });

  it('disarms the persist timer armed while the NIC refused once data goes, and sends whole segments only', () => {
    let nicRoom = false;
    const sent: { seq: number; len: number }[] = [];
    const timers = new Map<string, number>();
    const host: SenderHost = {
      dataEndSeq: () => 1 + 100 * MSS,
      emitData: (seq, len) => sent.push({ seq, len }),
      emitFin: () => undefined,
      emitProbe: () => sent.push({ seq: -1, len: 0 }),
      setTimer: (name, atUs) => timers.set(name, atUs),
      cancelTimer: (name) => timers.delete(name),
      mayTransmit: () => nicRoom,
    };
    const s = new TcpSender({ ...defaultTcpOptions({ mssBytes: MSS, congestionControl: 'cubic' }), nagle: false }, host, 't', 1);
    s.initWindow(64 * MSS, 0);
    s.cc.ssthreshBytes = 4 * MSS;
    s.cc.cwndBytes = 5 * MSS + 500.25; // what CUBIC leaves (above)
    // The NIC is full with nothing in flight: only the persist timer would move things on.
    s.trySend(0);
    expect(sent).toHaveLength(0);
    expect(timers.has(s.persistTimer)).toBe(true);
    // The NIC drains: five whole segments go, and the half segment of cwnd left waits (silly-window avoidance).
    nicRoom = true;
    s.trySend(100);
    expect(sent).toEqual([0, 1, 2, 3, 4].map((i) => ({ seq: 1 + i * MSS, len: MSS })));
    // Data in flight disarmed the persist timer (Linux gives its slot to the retransmission timer). Left armed, it
    // fired as the bus was down and no ACK came, and its override sent the fraction of a segment cwnd had left: every
    // later sequence number was between bytes, and the encoder refused them (an acker died so in a soak).
    expect(timers.has(s.persistTimer)).toBe(false);
    expect(timers.has(s.rtoTimer)).toBe(true);
    for (const x of sent) expect(Number.isSafeInteger(x.seq) && Number.isSafeInteger(x.len), `segment ${JSON.stringify(x)}`).toBe(true);
    // And the next ACK's sends carry whole sequence numbers.
    s.onAck({ seq: 1, ack: 1 + 2 * MSS, windowBytes: 64 * MSS, carriesData: false, rttSampleUs: 1000, sackBlocks: [], echoedSentAtUs: null }, 2_000);
    s.trySend(2_000);
    for (const x of sent) expect(Number.isSafeInteger(x.seq) && Number.isSafeInteger(x.len), `segment ${JSON.stringify(x)}`).toBe(true);
    expect(Number.isSafeInteger(s.sndNxt) && Number.isSafeInteger(s.sndMax)).toBe(true);
  });
});
