import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TcpFlag, type Segment } from '../../../lib/codec/messages.js';
import { SackScoreboard } from '../../../lib/tcp/sack-scoreboard.js';
import { dropFirstOf, TcpPair } from './tcp-pair.js';

const MSS = 1000;
const ONE_WAY_US = 10_000;
// NewReno keeps the arithmetic checkable: ssthresh = flight / 2 (RFC 5681), PRR then paces toward it.
const base = { mssBytes: MSS, congestionControl: 'newreno' as const, sack: true };
const seg = (k: number) => 1 + k * MSS;
const pair = (a: object = {}, b: object = {}) => new TcpPair({ a: { ...base, ...a }, b: { ...base, ...b } }, ONE_WAY_US);


describe('SACK negotiation (RFC 2018 §2)', () => {
  it('offers SACK-permitted in the SYN and the SYN-ACK, and both ends use it', () => {
    const p = pair().open();
    expect([p.io.a.sent[0]!.seg.sackPermitted, p.io.b.sent[0]!.seg.sackPermitted]).toEqual([true, true]);
    expect([p.a.sender.sackEnabled, p.b.sender.sackEnabled, p.a.receiver.sackEnabled, p.b.receiver.sackEnabled]).toEqual([true, true, true, true]);
  });

  it('answers a SYN without SACK-permitted with a SYN-ACK without it, and neither end SACKs', () => {
    const p = pair({ sack: false }).open();
    expect([p.io.a.sent[0]!.seg.sackPermitted, p.io.b.sent[0]!.seg.sackPermitted]).toEqual([false, false]);
    expect([p.a.sender.sackEnabled, p.b.sender.sackEnabled, p.b.receiver.sackEnabled]).toEqual([false, false, false]);
  });

  it('does not SACK when only the listener turned it off', () => {
    const p = pair({}, { sack: false }).open();
    expect([p.io.a.sent[0]!.seg.sackPermitted, p.io.b.sent[0]!.seg.sackPermitted]).toEqual([true, false]);
    expect([p.a.sender.sackEnabled, p.b.receiver.sackEnabled]).toEqual([false, false]);
  });
});

describe('SACK blocks a receiver sends (RFC 2018 §4)', () => {
  /** b's ACKs, as [ack, blocks] pairs, after a sends ten segments with the listed ones lost. */
  function acksAfterLosing(lost: readonly number[]): [number, number[]][] {
    const p = pair().open();
    const before = p.io.b.sent.length;
    p.filter = dropFirstOf('a', lost.map((k) => 1 + k * MSS));
    p.write('a', 10 * MSS);
    p.runFor(ONE_WAY_US + 1);
    return p.io.b.sent.slice(before).map((s) => [s.seg.ack, [...s.seg.sackBlocks]]);
  }

  it('names the block holding the segment that just arrived first, and the earlier blocks after it', () => {
    // Segments 0..9 sent; 2 and 5 lost. Segments 3, 4 make one block; 6..9 a second, reported first once it exists.
    const acks = acksAfterLosing([2, 5]).filter(([, blocks]) => blocks.length > 0);
    expect(acks).toEqual([
      [1 + 2 * MSS, [1 + 3 * MSS, 1 + 4 * MSS]],
      [1 + 2 * MSS, [1 + 3 * MSS, 1 + 5 * MSS]],
      [1 + 2 * MSS, [1 + 6 * MSS, 1 + 7 * MSS, 1 + 3 * MSS, 1 + 5 * MSS]],
      [1 + 2 * MSS, [1 + 6 * MSS, 1 + 8 * MSS, 1 + 3 * MSS, 1 + 5 * MSS]],
      [1 + 2 * MSS, [1 + 6 * MSS, 1 + 9 * MSS, 1 + 3 * MSS, 1 + 5 * MSS]],
      [1 + 2 * MSS, [1 + 6 * MSS, 1 + 10 * MSS, 1 + 3 * MSS, 1 + 5 * MSS]],
    ]);
  });

  it('sends at most three blocks beside the timestamp option, the most recent ones', () => {
    const acks = acksAfterLosing([1, 3, 5, 7]);
    const last = acks.at(-1)!;
    expect(last).toEqual([1 + MSS, [1 + 8 * MSS, 1 + 10 * MSS, 1 + 6 * MSS, 1 + 7 * MSS, 1 + 4 * MSS, 1 + 5 * MSS]]);
  });

  it('drops the blocks that a filled hole made cumulative, and merges the ones it joined', () => {
    const p = pair().open();
    p.filter = dropFirstOf('a', [1 + 2 * MSS, 1 + 5 * MSS]);
    p.write('a', 10 * MSS);
    p.runFor(10_000_000);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
    // Once the stream is whole, ACKs carry no blocks.
    expect(p.io.b.sent.at(-1)!.seg.sackBlocks).toEqual([]);
    // The ACK that answered the repair of [2001, 3001) moved to the second hole and kept only the block above it.
    const repaired = p.io.b.sent.find((s) => s.seg.ack === 1 + 5 * MSS)!;
    expect(repaired.seg.sackBlocks).toEqual([1 + 6 * MSS, 1 + 10 * MSS]);
  });
});

describe('SACK loss recovery (RFC 6675 with PRR, RFC 6937)', () => {
  /** a has sent ten segments [1, 10 001); b's ACKs, with SACK blocks, are injected by hand. */
  function tenInFlight(options: object = {}) {
    const p = pair(options, options).open();
    p.filter = (from, s) => (from === 'a' ? null : s);
    p.write('a', 10 * MSS);
    const synAck = p.io.b.sent[0]!.seg;
    const ack = (n: number, ...blocks: number[]): Segment => ({ ...synAck, flags: TcpFlag.ACK, seq: 1, ack: n, window: (6 * 1024 * 1024) >> 7, mss: 0, wscale: undefined, sackPermitted: false, sackBlocks: blocks, tsValUs: p.nowUs, tsEcrUs: p.io.a.dataSent().at(-1)!.tsValUs }); // echoes a's latest segment
    const retransmitted = () => p.io.a.dataSent().slice(10).filter((s) => s.seq < seg(10)).map((s) => [s.seq, s.payload.length]);
    p.inject('a', ack(1)); // the window moves from the SYN-ACK's unscaled one to the scaled one
    return { p, ack, retransmitted };
  }
  it('enters recovery when SACK shows more than two segments above the first hole, and retransmits it', () => {
    const { p, ack, retransmitted } = tenInFlight();
    // Segment 0 lost; 1 and 2 arrive: two duplicates, 2000 bytes SACKed: not yet lost (RFC 6675 IsLost).
    p.inject('a', ack(1, seg(1), seg(2)));
    p.inject('a', ack(1, seg(1), seg(3)));
    expect(p.a.inRecovery).toBe(false);
    p.inject('a', ack(1, seg(1), seg(4)));
    expect(p.a.inRecovery).toBe(true);
    expect(retransmitted()).toEqual([[1, MSS]]);
    expect(p.a.stats.fastRetransmits).toBe(1);
  });

  it('repairs every hole of a window in one round trip, where NewReno needs a partial ACK per hole', () => {
    const { p, ack, retransmitted } = tenInFlight();
    // Segments 1, 4 and 7 lost; the receiver's ACKs name the blocks above each hole.
    p.inject('a', ack(seg(1), seg(2), seg(3)));
    p.inject('a', ack(seg(1), seg(2), seg(4)));
    p.inject('a', ack(seg(1), seg(5), seg(6), seg(2), seg(4)));
    p.inject('a', ack(seg(1), seg(5), seg(7), seg(2), seg(4)));
    p.inject('a', ack(seg(1), seg(8), seg(9), seg(5), seg(7), seg(2), seg(4)));
    p.inject('a', ack(seg(1), seg(8), seg(10), seg(5), seg(7), seg(2), seg(4)));
    // No cumulative ACK moved, yet all three holes went out again, each once and in order.
    expect(retransmitted()).toEqual([
      [seg(1), MSS],
      [seg(4), MSS],
      [seg(7), MSS],
    ]);
    expect(p.a.sender.sackedBytes).toBe(6 * MSS);
  });

  it('sends in proportion to what was delivered while the flight is above ssthresh (PRR)', () => {
    const { p, ack } = tenInFlight();
    p.write('a', 20 * MSS); // new data to send as PRR allows
    // Segment 0 lost; each following ACK SACKs one more segment. The first two duplicates each let a new segment out
    // (SACKed bytes have left the network), so 12 segments are outstanding when the third starts recovery.
    for (let k = 2; k <= 4; k++) p.inject('a', ack(1, seg(1), seg(k)));
    expect(p.a.inRecovery).toBe(true);
    expect(p.a.cc.ssthreshBytes).toBe(6_000);
    const sentAtEntry = p.io.a.dataSent().length;
    for (let k = 5; k <= 9; k++) p.inject('a', ack(1, seg(1), seg(k)));
    // Six segments delivered (SACKed) since recovery began, RecoverFS 12 000, ssthresh 6000: three may have left
    // (RFC 6937: prr_out = ceil(prr_delivered · ssthresh / RecoverFS)), the fast retransmit and two new ones.
    const prr = p.a.sender.snapshot();
    expect([prr.prrDeliveredBytes, prr.recoverFsBytes, prr.prrOutBytes]).toEqual([6_000, 12_000, 3_000]);
    expect(p.io.a.dataSent().length - sentAtEntry).toBe(2);
  });

  it('grows back to ssthresh by at most one segment more than delivered once the flight is below it (PRR-SSRB)', () => {
    const { p, ack, retransmitted } = tenInFlight();
    p.write('a', 20 * MSS);
    // Segments 0..5 lost, 6..9 arrive: the flight collapses far below ssthresh.
    p.inject('a', ack(1, seg(6), seg(7)));
    p.inject('a', ack(1, seg(6), seg(8)));
    p.inject('a', ack(1, seg(6), seg(9)));
    expect(p.a.inRecovery).toBe(true);
    const before = p.io.a.dataSent().length;
    p.inject('a', ack(1, seg(6), seg(10)));
    // Pipe 4000 (two new segments, two retransmissions) < ssthresh 6000; delivered 1000: delivered + MSS = 2000 bytes go.
    expect(p.io.a.dataSent().length - before).toBe(2);
    expect(retransmitted().map(([s]) => s)).toEqual([seg(0), seg(1), seg(2), seg(3)]);
  });

  it('leaves recovery when the cumulative ACK passes what was outstanding at its start, with cwnd = ssthresh', () => {
    const { p, ack } = tenInFlight();
    for (let k = 2; k <= 4; k++) p.inject('a', ack(1, seg(1), seg(k)));
    expect(p.a.inRecovery).toBe(true);
    p.inject('a', ack(seg(10)));
    expect(p.a.inRecovery).toBe(false);
    expect(p.a.cc.ssthreshBytes).toBe(5_000);
    expect(p.a.sender.sackedBytes).toBe(0);
  });

  it('starts a new recovery for a loss of the very segment that follows the last recovery\'s end (RFC 6675: HighACK ≥ RecoveryPoint)', () => {
    const { p, ack } = tenInFlight();
    for (let k = 2; k <= 4; k++) p.inject('a', ack(1, seg(1), seg(k)));
    p.inject('a', ack(seg(10))); // recovery over: everything up to its recover point is acknowledged
    expect(p.a.inRecovery).toBe(false);
    p.write('a', 10 * MSS);
    const before = p.io.a.dataSent().length;
    // Segment 10, the first past the old recover point, lost; 11, 12 and 13 arrive.
    for (let k = 12; k <= 14; k++) p.inject('a', ack(seg(10), seg(11), seg(k)));
    expect(p.a.inRecovery).toBe(true);
    expect(p.a.stats.fastRetransmits).toBe(2);
    expect(p.io.a.dataSent().slice(before).some((s) => s.seq === seg(10))).toBe(true);
  });

  it('after a timeout, resends only what the peer did not SACK (go-back-N over holes)', () => {
    // The timeout itself, not the tail loss probe that would come first.
    const { p, ack } = tenInFlight({ tlp: false });
    // Two duplicates, two ranges, 2000 bytes SACKed: not enough for recovery, so the timer repairs.
    p.inject('a', ack(1, seg(3), seg(4)));
    p.inject('a', ack(1, seg(7), seg(8), seg(3), seg(4)));
    expect(p.a.inRecovery).toBe(false);
    const before = p.io.a.dataSent().length;
    p.runUntil(p.timer('a', 'rto')!);
    expect(p.a.stats.timeouts).toBe(1);
    p.inject('a', ack(seg(1), seg(7), seg(8), seg(3), seg(4)));
    p.inject('a', ack(seg(3), seg(7), seg(8)));
    const resent = p.io.a.dataSent().slice(before).map((s) => (s.seq - 1) / MSS);
    // cwnd 4000 after the two ACKs (slow start, 2 MSS per ACK at most): 4, 5, 6 and 8, the SACKed 3 and 7 skipped.
    expect(resent).toEqual([0, 1, 2, 4, 5, 6, 8]);
  });

  /** When b has the whole stream, with a's counters, after losing the first transmission of segments 3, 7, 11, 15 and 19. */
  function fiveLosses(sack: boolean) {
    const p = pair({ sack }, { sack }).open();
    p.filter = dropFirstOf('a', [3, 7, 11, 15, 19].map(seg));
    p.write('a', 40 * MSS);
    const total = p.expectedStream('a').length;
    for (let i = 0; i < 5_000 && p.io.b.delivered().length < total; i++) p.runFor(1_000);
    expect(p.io.b.delivered()).toEqual(p.expectedStream('a'));
    return { doneUs: p.nowUs, timeouts: p.a.stats.timeouts, retransmits: p.a.stats.retransmits };
  }

  it('recovers several losses per window end to end, each resent once, without a timeout, sooner than NewReno', () => {
    const withSack = fiveLosses(true);
    const without = fiveLosses(false);
    expect([withSack.timeouts, withSack.retransmits]).toEqual([0, 5]);
    // NewReno repairs one hole per round trip (20 ms here); SACK repairs a window's holes in one.
    expect(withSack.doneUs).toBeLessThan(without.doneUs - 2 * 2 * ONE_WAY_US);
  });
});

describe('SackScoreboard', () => {
  /** A byte-by-byte model of what is SACKed above una. */
  const model = (blocks: readonly [number, number][], una: number, max: number) => {
    const sacked = new Set<number>();
    for (const [s, e] of blocks) for (let b = Math.max(s, una); b < Math.min(e, max); b++) sacked.add(b);
    return sacked;
  };

  it('agrees with a byte model on what is SACKed, the holes and the loss boundary', () => {
    const mss = 10;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 1, max: 40 })), { maxLength: 12 }), fc.integer({ min: 0, max: 120 }), (raw, una) => {
        const max = 300;
        const blocks = raw.map(([s, len]) => [s, s + len] as [number, number]);
        const board = new SackScoreboard();
        let added = 0;
        for (const [s, e] of blocks) added += board.add(s, e, 0, max);
        const removed = board.advance(una);
        const bytes = model(blocks, una, max);
        expect(board.sackedBytes).toBe(bytes.size);
        expect(added - removed).toBe(bytes.size);
        for (let seq = una; seq <= max; seq += 7) expect(board.sackedBelow(seq)).toBe([...bytes].filter((b) => b < seq).length);
        const top = Math.max(0, ...bytes) + (bytes.size > 0 ? 1 : 0);
        expect(board.highestSackedEnd).toBe(bytes.size > 0 ? top : 0);
        // The first hole from una: the first byte not SACKed, up to the next SACKed one.
        const hole = board.holeFrom(una);
        let first = una;
        while (bytes.has(first)) first++;
        if (first >= top) expect(hole).toBeNull();
        else {
          let end = first;
          while (!bytes.has(end)) end++;
          expect(hole).toEqual({ start: first, end });
        }
        // IsLost (RFC 6675): a hole byte below the boundary has > 2·MSS SACKed bytes or ≥ 3 ranges above it.
        const boundary = board.lostBelow(una, mss);
        for (let seq = una; seq < top; seq++) {
          if (bytes.has(seq)) continue;
          const above = [...bytes].filter((b) => b > seq);
          const rangesAbove = above.filter((b) => !bytes.has(b - 1) || b - 1 === seq).length;
          expect(seq < boundary).toBe(above.length > 2 * mss || rangesAbove >= 3);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('keeps one range for touching blocks', () => {
    const board = new SackScoreboard();
    board.add(10, 20, 0, 100);
    board.add(30, 40, 0, 100);
    expect(board.add(20, 30, 0, 100)).toBe(10);
    expect(board.snapshot()).toEqual([10, 40]);
  });
});
