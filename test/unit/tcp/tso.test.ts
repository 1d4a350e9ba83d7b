import { describe, expect, it } from 'vitest';
import { Cubic, NewReno } from '../../../lib/tcp/congestion/index.js';
import { TcpSender, type SenderHost } from '../../../lib/tcp/sender.js';
import { defaultTcpOptions } from '../../../lib/tcp/options.js';

const MSS = 1000;
const ACK = { carriesData: false, rttSampleUs: 100, sackBlocks: [], echoedSentAtUs: null } as const;

function sender(dataEnd: () => number, tsoBytes: number | undefined) {
  const sent: { seq: number; len: number; retransmit: boolean }[] = [];
  const timers = new Map<string, number>();
  const host: SenderHost = {
    dataEndSeq: dataEnd,
    emitData: (seq, len, retransmit) => sent.push({ seq, len, retransmit }),
    emitFin: () => undefined,
    emitProbe: () => undefined,
    setTimer: (name, atUs) => timers.set(name, atUs),
    cancelTimer: (name) => timers.delete(name),
  };
  const s = new TcpSender({ ...defaultTcpOptions({ mssBytes: MSS, initialWindowSegments: 100 }), nagle: false, ...(tsoBytes === undefined ? {} : { tsoBytes }) }, host, 't', 1);
  return { s, sent, timers };
}

describe('TcpSender with TSO', () => {
  it('sends new data in segments of whole MSS up to tsoBytes, the tail alone, and counts packets', () => {
    const { s, sent } = sender(() => 1 + 70 * MSS + 300, 32_500);
    s.initWindow(1_000 * MSS, 0);
    s.trySend(0);
    expect(sent.map((x) => x.len)).toEqual([32 * MSS, 32 * MSS, 6 * MSS, 300]);
    expect(s.stats.segmentsSent).toBe(32 + 32 + 6 + 1);
  });

  it('sends what the window allows, rounded down to whole MSS', () => {
    const { s, sent } = sender(() => 1 + 100 * MSS, 64 * MSS);
    s.initWindow(10 * MSS + 500, 0);
    s.trySend(0);
    // 10 MSS in one segment; the last 500 bytes of window are a silly segment, held back.
    expect(sent).toEqual([{ seq: 1, len: 10 * MSS, retransmit: false }]);
  });

  it('is off below two MSS: one MSS per segment', () => {
    for (const tso of [undefined, 0, MSS, 2 * MSS - 1]) {
      const { s, sent } = sender(() => 1 + 5 * MSS, tso);
      s.initWindow(100 * MSS, 0);
      s.trySend(0);
      expect(sent.map((x) => x.len)).toEqual(Array(5).fill(MSS));
    }
  });

  it('retransmits after a timeout one MSS at a time', () => {
    const { s, sent, timers } = sender(() => 1 + 40 * MSS, 20 * MSS);
    s.initWindow(100 * MSS, 0);
    s.trySend(0);
    expect(sent.map((x) => x.len)).toEqual([20 * MSS, 20 * MSS]);
    sent.length = 0;
    s.onRto(timers.get(s.rtoTimer)!);
    expect(sent).toEqual([{ seq: 1, len: MSS, retransmit: true }]);
    sent.length = 0;
    // Its ACK opens cwnd to two MSS: the go-back-N resends are still one MSS each.
    const ackAtUs = timers.get(s.rtoTimer)! + 100;
    s.onAck({ ...ACK, seq: 1, ack: 1 + MSS, windowBytes: 100 * MSS }, ackAtUs);
    s.trySend(ackAtUs);
    expect(sent).toEqual([
      { seq: 1 + MSS, len: MSS, retransmit: true },
      { seq: 1 + 2 * MSS, len: MSS, retransmit: true },
    ]);
  });

  it('slow start grows by every byte a TSO segment’s ACK covers (Linux), where one MSS segments grow by two MSS per ACK at most (RFC 3465)', () => {
    for (const [tso, growth] of [
      [32 * MSS, 32 * MSS],
      [undefined, 2 * MSS],
    ] as const) {
      const { s } = sender(() => 1 + 1_000 * MSS, tso);
      s.initWindow(1_000 * MSS, 0);
      s.trySend(0);
      const before = s.cc.cwndBytes;
      s.onAck({ ...ACK, seq: 1, ack: 1 + 32 * MSS, windowBytes: 1_000 * MSS }, 100);
      expect(s.cc.cwndBytes - before).toBe(growth);
    }
  });

  it('TSO below two MSS is off for slow start too: two MSS per ACK', () => {
    const cc = new NewReno({ mssBytes: MSS, initialWindowBytes: 10 * MSS, tsoBytes: 2 * MSS - 1 });
    cc.onAck(100 * MSS, 0, 100, true);
    expect(cc.cwndBytes).toBe(12 * MSS);
  });

  it('the controllers take the same limit: two TSO segments per ACK', () => {
    for (const cc of [new NewReno({ mssBytes: MSS, initialWindowBytes: 10 * MSS, tsoBytes: 8 * MSS }), new Cubic({ mssBytes: MSS, initialWindowBytes: 10 * MSS, tsoBytes: 8 * MSS, hystart: false })]) {
      cc.onAck(100 * MSS, 0, 100, true);
      expect(cc.cwndBytes).toBe(10 * MSS + 16 * MSS);
    }
  });
});
