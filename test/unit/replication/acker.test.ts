import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesEqual, sha256 } from '../../../lib/checkpoint/hash.js';
import { ChunkSource, TcpFlag, type Segment } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { START, type Effect } from '../../../lib/runtime/types.js';
import { defaultTcpOptions } from '../../../lib/tcp/options.js';
import { SendBuffer } from '../../../lib/tcp/send-buffer.js';
import { AckerCore, type AckerOptions } from '../../../services/acker/core.js';
import { decodeSpecDelta } from '../../../lib/checkpoint/spec-delta.js';
import { chunksOn, concat, message, segment, segmentsOn, sentOn, streamBytes, timer, timersSet, VM } from './support.js';

const s = subjects(VM);
const MSS = 1000;
const CLIENT_ISN = 1000;
const GUEST_ISN = 5000;
/** First data byte of the guest's stream. */
const D = GUEST_ISN + 1;
const CLIENT_WSCALE = 7;
const CLIENT_WINDOW = 1000; // × 2^7 = 128000 bytes

interface Setup {
  readonly specBufferBytes?: number;
  readonly chunkBytes?: number;
  readonly clientWscale?: number | undefined;
  readonly guestWscale?: number | undefined;
}

class Harness {
  readonly acker: AckerCore;
  nowUs = 0;

  constructor(
    readonly options: AckerOptions,
  ) {
    this.acker = new AckerCore(options);
  }

  run(subject: string, msg: Segment | Parameters<typeof message>[1]): Effect[] {
    this.nowUs += 10;
    return this.acker.handle(message(subject, msg), this.nowUs);
  }

  /** A guest data segment; its header (ack, window, timestamps) names its epoch. */
  guest(epoch: number, seq: number, len: number): Effect[] {
    return this.run(s.tx, guestSegment(epoch, seq, len));
  }

  epochEnd(epoch: number, base = false): Effect[] {
    // The guest, the acker and the checkpointer serve one term: the acker ignores any other.
    return this.run(s.txEpoch, { type: 'epochEnd', vmId: VM, term: this.acker.term, epoch, txEndSeq: 0, base });
  }

  commit(epoch: number): Effect[] {
    return this.run(s.commit, { type: 'epochCommit', vmId: VM, term: this.acker.term, epoch });
  }

  clientAck(ack: number, extra: Partial<Segment> = {}): Effect[] {
    return this.run(s.wireIn, segment({ seq: CLIENT_ISN + 1, ack, window: CLIENT_WINDOW, flags: TcpFlag.ACK, ...extra }));
  }

  timer(name: string): Effect[] {
    this.nowUs += 10;
    return this.acker.handle(timer(name), this.nowUs);
  }
}

const guestSegment = (epoch: number, seq: number, len: number): Segment =>
  segment({ epoch, seq, ack: CLIENT_ISN + 1, window: 100 + epoch, tsValUs: 1000 * epoch + 1, tsEcrUs: 500 * epoch, flags: TcpFlag.ACK | TcpFlag.PSH, payload: streamBytes(seq, len) });

const ackerOptions = (setup: Setup = {}, mode: 'spec' | 'remus' = 'spec'): AckerOptions => ({
  vmId: VM,
  mode,
  subjects: s,
  tcp: defaultTcpOptions({ mssBytes: MSS }),
  specBufferBytes: setup.specBufferBytes ?? 64 * 1024,
  chunkBytes: setup.chunkBytes ?? 4096,
  recordDigests: false,
});

/** The handshake as the acker sees it: client SYN in, guest SYN-ACK out, client ACK in. */
function connected(setup: Setup = {}): Harness {
  const h = new Harness(ackerOptions(setup));
  const clientWscale = 'clientWscale' in setup ? setup.clientWscale : CLIENT_WSCALE;
  const guestWscale = 'guestWscale' in setup ? setup.guestWscale : 7;
  const syn = segment({ seq: CLIENT_ISN, flags: TcpFlag.SYN, window: 65535, wscale: clientWscale, mss: MSS });
  const fwd = h.run(s.wireIn, syn);
  expect(sentOn(fwd, s.rx)).toEqual([syn]); // the guest's own handshake, unchanged
  expect(fwd).toHaveLength(1);
  expect(h.run(s.tx, segment({ epoch: 1, seq: GUEST_ISN, ack: CLIENT_ISN + 1, flags: TcpFlag.SYN | TcpFlag.ACK, window: 500, wscale: guestWscale, mss: MSS }))).toEqual([]);
  h.clientAck(D);
  return h;
}

const specAcks = (effects: Effect[]) => segmentsOn(effects, s.rx);
const wireOut = (effects: Effect[]) => segmentsOn(effects, s.wireOut);
const specDelta = (effects: Effect[]) => decodeSpecDelta(concat(chunksOn(effects, s.ckptStage).map((c) => c.data)));

describe('AckerCore, spec mode', () => {
  it('subscribes to the guest segments, epoch ends, client segments and commits', () => {
    expect(new AckerCore(ackerOptions()).subscriptions).toEqual([s.tx, s.txEpoch, s.wireIn, s.commit]);
  });

  it('acknowledges each guest data segment at once, speculatively, up to the highest contiguous byte held', () => {
    const h = connected();
    let expectedEnd = D;
    for (const len of [1000, 1000, 500]) {
      const effects = h.guest(1, expectedEnd, len);
      expectedEnd += len;
      const acks = specAcks(effects);
      expect(acks).toHaveLength(1);
      expect(acks[0]).toMatchObject({ ack: expectedEnd, speculative: true, flags: TcpFlag.ACK, seq: CLIENT_ISN + 1, connId: 1, payload: new Uint8Array(0) });
      // The guest's timestamp is echoed so it can measure its (short) RTT to the acker.
      expect(acks[0]!.tsEcrUs).toBe(1001);
      expect(wireOut(effects)).toEqual([]);
    }
    expect(h.acker.specBufferBytes).toBe(2500);
    expect(h.acker.stats.specAcksSent).toBe(3);
  });

  it("advertises the free speculative buffer as the window, scaled by the client's offered shift", () => {
    const h = connected({ specBufferBytes: 64 * 1024 });
    const [ack] = specAcks(h.guest(1, D, 1000));
    expect(ack!.window).toBe(Math.floor((64 * 1024 - 1000) / 2 ** CLIENT_WSCALE));
  });

  it('advertises an unscaled window (at most 65535) when the guest did not offer window scaling', () => {
    const h = connected({ specBufferBytes: 256 * 1024, guestWscale: undefined });
    const [ack] = specAcks(h.guest(1, D, 1000));
    expect(ack!.window).toBe(65535);
    const small = connected({ specBufferBytes: 8000, guestWscale: undefined });
    expect(specAcks(small.guest(1, D, 1000))[0]!.window).toBe(7000);
  });

  it('re-acknowledges a retransmitted segment it already holds without taking its bytes twice', () => {
    const h = connected();
    h.guest(1, D, 1000);
    const again = specAcks(h.guest(1, D, 1000));
    expect(again[0]!.ack).toBe(D + 1000);
    expect(h.acker.specBufferBytes).toBe(1000);
    // An overlapping segment contributes only its new bytes.
    expect(specAcks(h.guest(1, D + 500, 1000))[0]!.ack).toBe(D + 1500);
    expect(h.acker.specBufferBytes).toBe(1500);
  });

  it('refuses and counts a segment beyond the free space, and does not acknowledge it', () => {
    const h = connected({ specBufferBytes: 2500 });
    h.guest(1, D, 2000);
    const effects = h.guest(1, D + 2000, 1000);
    expect(h.acker.stats.segmentsRefused).toBe(1);
    expect(h.acker.specBufferBytes).toBe(2000);
    const [ack] = specAcks(effects);
    expect(ack!.ack).toBe(D + 2000); // a duplicate ACK, not covering the refused bytes
    expect(ack!.window).toBe(Math.floor(500 / 2 ** CLIENT_WSCALE));
    // What fits is taken.
    expect(specAcks(h.guest(1, D + 2000, 500))[0]!.ack).toBe(D + 2500);
    expect(h.acker.stats.specBufferBytesMax).toBe(2500);
  });

  it('refuses and counts a segment that leaves a gap (an earlier one was lost)', () => {
    const h = connected();
    h.guest(1, D, 1000);
    const [ack] = specAcks(h.guest(1, D + 2000, 1000));
    expect(h.acker.stats.segmentsRefused).toBe(1);
    expect(ack!.ack).toBe(D + 1000);
    expect(h.acker.specBufferBytes).toBe(1000);
  });

  it('sends nothing to the client before the commit of an epoch end covering the data', () => {
    const h = connected();
    const effects: Effect[] = [];
    effects.push(...h.guest(1, D, 1000), ...h.guest(1, D + 1000, 1000));
    effects.push(...h.epochEnd(1));
    effects.push(...h.guest(2, D + 2000, 1000));
    // Commit of a later epoch whose end the acker never saw releases nothing of it.
    expect(wireOut(effects)).toEqual([]);
    const out = wireOut(h.commit(1));
    expect(out.map((x) => [x.seq, x.payload.length])).toEqual([
      [D, 1000],
      [D + 1000, 1000],
    ]);
    expect(h.acker.stats.committedSeq).toBe(D + 2000);
    expect(wireOut(h.commit(2))).toEqual([]); // no epoch end for epoch 2 yet: its bytes stay
    expect(h.acker.stats.committedSeq).toBe(D + 2000);
  });

  it('sends committed data with the header of the newest committed guest segment, never an uncommitted one', () => {
    const h = connected();
    h.guest(1, D, 1000);
    h.run(s.tx, segment({ ...guestSegment(1, D + 1000, 0), ack: CLIENT_ISN + 7, window: 111 })); // a pure ACK late in epoch 1
    h.epochEnd(1);
    h.guest(2, D + 1000, 1000); // header of epoch 2: ack CLIENT_ISN + 1, window 102
    h.run(s.tx, segment({ ...guestSegment(2, D + 2000, 0), ack: CLIENT_ISN + 50, window: 222 }));
    h.epochEnd(2);
    const [first] = wireOut(h.commit(1));
    expect(first).toMatchObject({ seq: D, ack: CLIENT_ISN + 7, window: 111, epoch: 1, speculative: false, tsValUs: 1001, tsEcrUs: 500 });
    expect(bytesEqual(first!.payload, streamBytes(D, 1000))).toBe(true);
    expect(first!.flags & TcpFlag.ACK).toBe(TcpFlag.ACK);
    expect(first!.flags & TcpFlag.PSH).toBe(TcpFlag.PSH); // last committed byte
    h.clientAck(D + 1000);
    const [second] = wireOut(h.commit(2));
    expect(second).toMatchObject({ seq: D + 1000, ack: CLIENT_ISN + 50, window: 222, epoch: 2 });
    expect(bytesEqual(second!.payload, streamBytes(D + 1000, 1000))).toBe(true);
  });

  it('ignores a duplicate or old commit', () => {
    const h = connected();
    h.guest(1, D, 1000);
    h.epochEnd(1);
    expect(wireOut(h.commit(1))).toHaveLength(1);
    expect(wireOut(h.commit(1))).toEqual([]);
    expect(wireOut(h.commit(0))).toEqual([]);
  });

  it('ignores commits and guest output of another term: a deposed primary, or its successor', () => {
    const h = connected();
    h.guest(1, D, 1000);
    h.epochEnd(1);
    const foreign = h.run(s.commit, { type: 'epochCommit', vmId: VM, term: h.acker.term + 1, epoch: 1 });
    expect(wireOut(foreign)).toEqual([]);
    expect(h.acker.stats.staleTermDrops).toBe(1);
    expect(wireOut(h.commit(1))).toHaveLength(1);
  });

  it("frees the speculative buffer on the client's ACKs and widens the window it advertises", () => {
    const h = connected({ specBufferBytes: 4000 });
    h.guest(1, D, 3000);
    h.epochEnd(1);
    h.commit(1);
    expect(h.acker.specBufferBytes).toBe(3000);
    h.clientAck(D + 2000);
    expect(h.acker.specBufferBytes).toBe(1000);
    expect(h.acker.stats.clientAckSeq).toBe(D + 2000);
    const [ack] = specAcks(h.guest(2, D + 3000, 1000));
    expect(ack).toMatchObject({ ack: D + 4000, window: Math.floor(2000 / 2 ** CLIENT_WSCALE) });
  });

  it('forwards client segments to the guest with the ACK raised to the speculative ACK and the window of the free buffer', () => {
    const h = connected();
    h.guest(1, D, 3000);
    h.epochEnd(1);
    h.commit(1);
    const request = segment({ seq: CLIENT_ISN + 1, ack: D + 1000, window: CLIENT_WINDOW, flags: TcpFlag.ACK | TcpFlag.PSH, payload: new Uint8Array([1, 2, 3]), tsValUs: 77 });
    const [fwd] = segmentsOn(h.run(s.wireIn, request), s.rx);
    expect(fwd).toMatchObject({ seq: CLIENT_ISN + 1, ack: D + 3000, flags: TcpFlag.ACK | TcpFlag.PSH, payload: new Uint8Array([1, 2, 3]), tsValUs: 77, speculative: false });
    expect(fwd!.window).toBe(Math.floor((64 * 1024 - 2000) / 2 ** CLIENT_WSCALE));
    // The client's ACK beyond the speculative one (its ACK of our FIN, say) is kept.
    const finAck = segmentsOn(h.run(s.wireIn, segment({ seq: CLIENT_ISN + 4, ack: D + 3001, window: CLIENT_WINDOW, flags: TcpFlag.ACK | TcpFlag.FIN })), s.rx);
    expect(finAck[0]!.ack).toBe(D + 3001);
  });

  it('forwards a pure client ACK as a window update only when it freed enough of the buffer', () => {
    const h = connected({ specBufferBytes: 8000 });
    h.guest(1, D, 8000); // the guest is told: window 0
    expect(specAcks(h.guest(1, D + 8000, 0))).toEqual([]); // control segments are the netbuffer's
    h.epochEnd(1);
    h.commit(1);
    expect(segmentsOn(h.clientAck(D + 1000), s.rx)).toEqual([]); // 1000 bytes freed: below min(specBufferBytes / 2, 64 KiB)
    const [update] = segmentsOn(h.clientAck(D + 5000), s.rx);
    expect(update).toMatchObject({ ack: D + 8000, window: Math.floor(5000 / 2 ** CLIENT_WSCALE) });
  });

  it("answers the guest's zero-window probe with the current window, so a lost window update cannot stall the guest", () => {
    const h = connected({ specBufferBytes: 8000 });
    expect(specAcks(h.guest(1, D, 8000))[0]!.window).toBe(0);
    h.epochEnd(1);
    h.commit(1);
    h.clientAck(D + 8000); // frees everything: the window update to the guest is lost on the bus
    // The guest's persist timer sends a probe: an empty segment one below its unacknowledged edge.
    const probe = segment({ ...guestSegment(1, D + 8000 - 1, 0), tsValUs: 4242 });
    const [answer] = specAcks(h.run(s.tx, probe));
    expect(answer).toMatchObject({ ack: D + 8000, window: Math.floor(8000 / 2 ** CLIENT_WSCALE), tsEcrUs: 4242 });
    // A pure ACK at the guest's send edge is not a probe and gets no answer.
    expect(specAcks(h.run(s.tx, guestSegment(1, D + 8000, 0)))).toEqual([]);
  });

  it("emits the epoch's SPEC checkpoint chunks: exactly the epoch's bytes and the client-ACK watermark", () => {
    const h = connected({ chunkBytes: 1024 });
    h.guest(1, D, 1500);
    h.guest(1, D + 1500, 1500);
    const end1 = h.epochEnd(1);
    const chunks = chunksOn(end1, s.ckptStage);
    expect(chunks.length).toBeGreaterThan(1);
    chunks.forEach((c, i) => {
      expect(c).toMatchObject({ source: ChunkSource.SPEC, epoch: 1, term: h.acker.term, index: i, count: chunks.length });
      expect(c.data.length).toBeLessThanOrEqual(1024);
      expect(bytesEqual(c.hash, sha256(c.data))).toBe(true);
    });
    const d1 = specDelta(end1);
    expect(d1.startSeq).toBe(D);
    expect(d1.clientAckSeq).toBe(D);
    expect(bytesEqual(d1.bytes, streamBytes(D, 3000))).toBe(true);
    expect(d1.connection).toMatchObject({ connId: 1, clientWscale: CLIENT_WSCALE, clientSynWindow: 65535, guestOfferedWscale: true, clientNxt: CLIENT_ISN + 1 });
    expect(d1.connection!.guestHeader).toMatchObject({ epoch: 1, window: 101 });

    h.commit(1);
    h.clientAck(D + 2000);
    h.guest(2, D + 3000, 700);
    const d2 = specDelta(h.epochEnd(2));
    expect(d2.startSeq).toBe(D + 3000);
    expect(d2.clientAckSeq).toBe(D + 2000);
    expect(bytesEqual(d2.bytes, streamBytes(D + 3000, 700))).toBe(true);

    // An epoch without data: an empty delta that still carries the watermark.
    const d3 = specDelta(h.epochEnd(3));
    expect(d3).toMatchObject({ startSeq: D + 3700, clientAckSeq: D + 2000 });
    expect(d3.bytes.length).toBe(0);
  });

  it("gives a joining backup's base epoch the whole buffer: every byte the client has not acknowledged", () => {
    const h = connected();
    h.guest(1, D, 3000);
    h.epochEnd(1);
    h.commit(1);
    h.clientAck(D + 1000);
    h.guest(2, D + 3000, 500);
    const base = specDelta(h.epochEnd(2, true));
    expect(base.startSeq).toBe(D + 1000);
    expect(base.clientAckSeq).toBe(D + 1000);
    expect(bytesEqual(base.bytes, streamBytes(D + 1000, 2500))).toBe(true);
    // The next epoch is a delta again.
    h.guest(3, D + 3500, 100);
    expect(specDelta(h.epochEnd(3)).startSeq).toBe(D + 3500);
  });

  it('retransmits the first unacknowledged committed segment on three duplicate client ACKs', () => {
    const h = connected();
    h.guest(1, D, 5000);
    h.epochEnd(1);
    expect(wireOut(h.commit(1))).toHaveLength(5);
    h.clientAck(D + 1000); // the second segment is lost
    for (let i = 0; i < 2; i++) expect(wireOut(h.clientAck(D + 1000))).toEqual([]);
    const [retransmit] = wireOut(h.clientAck(D + 1000));
    expect(retransmit).toMatchObject({ seq: D + 1000, epoch: 1 });
    expect(retransmit!.payload.length).toBe(MSS);
    expect(bytesEqual(retransmit!.payload, streamBytes(D + 1000, MSS))).toBe(true);
    expect(h.acker.wireStats!.fastRetransmits).toBe(1);
  });

  it('retransmits the very first committed segment on three duplicate client ACKs', () => {
    const h = connected();
    h.guest(1, D, 5000);
    h.epochEnd(1);
    h.commit(1);
    for (let i = 0; i < 2; i++) expect(wireOut(h.clientAck(D))).toEqual([]);
    const [retransmit] = wireOut(h.clientAck(D));
    expect(retransmit).toMatchObject({ seq: D });
    expect(h.acker.wireStats!.fastRetransmits).toBe(1);
  });

  it('retransmits from the first unacknowledged byte when the wire RTO fires', () => {
    const h = connected();
    h.guest(1, D, 3000);
    h.epochEnd(1);
    const sent = h.commit(1);
    const rtoAt = timersSet(sent).get('wire.rto');
    expect(rtoAt).toBeDefined();
    h.clientAck(D + 1000);
    const effects = h.timer('wire.rto');
    const [first] = wireOut(effects);
    expect(first).toMatchObject({ seq: D + 1000 });
    expect(bytesEqual(first!.payload, streamBytes(D + 1000, first!.payload.length))).toBe(true);
    expect(h.acker.wireStats!.timeouts).toBe(1);
    expect(timersSet(effects).get('wire.rto')).toBeGreaterThan(h.nowUs);
    // Once all is acknowledged, the timer is cancelled and a late firing sends nothing.
    const done = h.clientAck(D + 3000);
    expect(done).toContainEqual({ kind: 'cancelTimer', name: 'wire.rto' });
    expect(wireOut(h.timer('wire.rto'))).toEqual([]);
  });

  it('ignores timers before the connection exists and unrelated timers after', () => {
    const h = new Harness(ackerOptions());
    expect(h.timer('wire.rto')).toEqual([]);
    expect(h.acker.handle(START, 0)).toEqual([]);
    const c = connected();
    expect(c.timer('ckpt.epoch')).toEqual([]);
  });
});

describe('AckerCore restored on a promoted host', () => {
  const restored = () => {
    const h = new Harness(ackerOptions());
    const spec = new SendBuffer(64 * 1024, 9001);
    const bytes = streamBytes(9001, 3000);
    spec.append(bytes.length, (dst) => dst.set(bytes));
    h.acker.restore(spec, { connId: 1, clientWscale: CLIENT_WSCALE, clientSynWindow: 65535, guestOfferedWscale: true, clientNxt: CLIENT_ISN + 1, guestHeader: { epoch: 4, ack: CLIENT_ISN + 1, window: 104, tsValUs: 4001, tsEcrUs: 2000 } }, 4);
    return h;
  };

  it('resends the restored committed buffer from the client ACK on start, with the restored header', () => {
    const h = restored();
    const out = wireOut(h.acker.handle(START, 0));
    expect(out.map((x) => x.seq)).toEqual([9001, 10001, 11001]);
    expect(out[0]).toMatchObject({ ack: CLIENT_ISN + 1, window: 104, epoch: 4 });
    expect(bytesEqual(concat(out.map((x) => x.payload)), streamBytes(9001, 3000))).toBe(true);
  });

  it('retransmits the first restored segment on three duplicate client ACKs', () => {
    const h = restored();
    h.acker.handle(START, 0);
    h.clientAck(9001); // the client's window differs from its SYN window: an update, not a duplicate
    for (let i = 0; i < 2; i++) expect(wireOut(h.clientAck(9001))).toEqual([]);
    expect(wireOut(h.clientAck(9001)).map((x) => x.seq)).toEqual([9001]);
  });
});

describe('AckerCore, remus mode', () => {
  it('forwards client segments to the guest unchanged and emits nothing else', () => {
    const h = new Harness(ackerOptions({}, 'remus'));
    expect(h.acker.subscriptions).toEqual([s.wireIn]);
    const syn = segment({ seq: CLIENT_ISN, flags: TcpFlag.SYN, window: 65535, wscale: 7 });
    const ack = segment({ seq: CLIENT_ISN + 1, ack: D + 1000, window: 10, flags: TcpFlag.ACK });
    const request = segment({ seq: CLIENT_ISN + 1, ack: D, window: 10, flags: TcpFlag.ACK | TcpFlag.PSH, payload: new Uint8Array([9]) });
    for (const seg of [syn, ack, request]) expect(h.run(s.wireIn, seg)).toEqual([{ kind: 'send', subject: s.rx, msg: seg }]);
    // It is not subscribed to anything else; timers and start do nothing either.
    expect(h.timer('wire.rto')).toEqual([]);
    expect(h.acker.handle(START, h.nowUs)).toEqual([]);
    expect(h.acker.stats.segmentsForwarded).toBe(3);
    expect(h.acker.stats.specAcksSent).toBe(0);
  });
});

describe('AckerCore, property', () => {
  type Op =
    | { kind: 'data'; len: number; shift: number }
    | { kind: 'end' }
    | { kind: 'commit' }
    | { kind: 'ack'; frac: number; dup: boolean }
    | { kind: 'rto' };
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('data' as const), len: fc.integer({ min: 1, max: 2500 }), shift: fc.integer({ min: -1500, max: 300 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('end' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('commit' as const) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('ack' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }), dup: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('rto' as const) }) },
  );

  it('sends only committed bytes, exactly as the guest wrote them, and stays within its speculative buffer', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), fc.integer({ min: 2000, max: 20_000 }), (ops, capacity) => {
        const h = connected({ specBufferBytes: capacity });
        let epoch = 1;
        let held = D; // the highest contiguous byte the acker acknowledged
        let clientAck = D;
        let wireMax = D;
        let committed = D;
        const ends: { epoch: number; endSeq: number }[] = [];
        let lastCommitted = 0;
        const check = (effects: Effect[]) => {
          for (const seg of wireOut(effects)) {
            expect(seg.seq + seg.payload.length).toBeLessThanOrEqual(committed);
            expect(seg.seq).toBeGreaterThanOrEqual(D);
            expect(bytesEqual(seg.payload, streamBytes(seg.seq, seg.payload.length))).toBe(true);
            expect(seg.epoch).toBeLessThanOrEqual(lastCommitted);
            wireMax = Math.max(wireMax, seg.seq + seg.payload.length);
          }
          for (const ack of specAcks(effects).filter((x) => x.speculative)) {
            expect(ack.ack).toBeGreaterThanOrEqual(held);
            held = ack.ack;
            expect(ack.window * 2 ** CLIENT_WSCALE).toBeLessThanOrEqual(capacity - (held - clientAck));
          }
          expect(h.acker.specBufferBytes).toBeLessThanOrEqual(capacity);
          expect(h.acker.specBufferBytes).toBe(held - clientAck);
        };
        for (const o of ops) {
          if (o.kind === 'data') check(h.guest(epoch, Math.max(D, held + o.shift), o.len));
          else if (o.kind === 'end') {
            ends.push({ epoch, endSeq: held });
            check(h.epochEnd(epoch));
            epoch++;
          } else if (o.kind === 'commit') {
            const end = ends.find((e) => e.epoch === lastCommitted + 1);
            if (end === undefined) continue;
            lastCommitted = end.epoch;
            committed = end.endSeq;
            check(h.commit(end.epoch));
          } else if (o.kind === 'ack') {
            const ack = o.dup ? clientAck : clientAck + Math.floor(o.frac * (wireMax - clientAck));
            clientAck = ack;
            check(h.clientAck(ack));
          } else {
            check(h.timer('wire.rto'));
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
