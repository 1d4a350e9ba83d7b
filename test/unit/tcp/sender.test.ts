import { describe, expect, it } from 'vitest';
import { TcpSender, type SenderHost } from '../../../lib/tcp/sender.js';
import { defaultTcpOptions } from '../../../lib/tcp/options.js';

const MSS = 1000;

function sender(dataEnd: () => number) {
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
  const s = new TcpSender({ ...defaultTcpOptions({ mssBytes: MSS }), nagle: false }, host, 't', 1);
  return { s, sent, timers };
}

describe('TcpSender with a small window', () => {
  it('does not stall when the peer offers a window below one MSS and half its largest window', () => {
    const { s, sent, timers } = sender(() => 1 + 10 * MSS);
    s.initWindow(8 * MSS, 0);
    s.trySend(0);
    expect(sent.map((x) => x.len)).toEqual(Array(8).fill(MSS));
    // Everything is ACKed, but the peer's application has read little: a 300-byte window.
    s.onAck({ seq: 1, ack: 1 + 8 * MSS, windowBytes: 300, carriesData: false, rttSampleUs: 1000, sackBlocks: [] }, 1000);
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
    const { s, sent, timers } = sender(() => dataEnd);
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
    s.onAck({ seq: 1, ack: 1, windowBytes: 64 * MSS, carriesData: false, rttSampleUs: null, sackBlocks: [1, 501] }, 1000);
    sent.length = 0;
    s.onRto(timers.get(s.rtoTimer)!);
    // cwnd is one segment: go-back-N skips the SACKed 500 bytes and sends the next segment whole, not 500 bytes of it
    // (which silly-window avoidance would hold back, at every timeout, for ever).
    expect(sent).toEqual([{ seq: 501, len: MSS }]);
  });
});
