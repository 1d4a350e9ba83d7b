import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AckDecision, MAX_QUICKACKS, TcpReceiver, windowScaleFor } from '../../../lib/tcp/receiver.js';

const MSS = 100;
const IRS = 999; // the peer's SYN; data starts at 1000
const bytes = (seq: number, len: number) => Uint8Array.from({ length: len }, (_, i) => (seq + i) & 0xff);

/** A receiver after the handshake, and what it delivered to the application. */
function setup(rcvBufBytes = 10_000, wscale = 0, quickAck = false) {
  const rx = new TcpReceiver(rcvBufBytes, wscale);
  rx.init(IRS);
  // Past the quick-ack start of the connection, unless a test is about it.
  if (!quickAck) rx.quickAcks = 0;
  const delivered: number[] = [];
  const accept = (seq: number, len: number, opts: { fin?: boolean; tsValUs?: number } = {}) =>
    rx.accept(seq, bytes(seq, len), opts.fin ?? false, opts.tsValUs ?? 0, MSS, (chunk) => delivered.push(...chunk));
  /** What the endpoint does when it sends an ACK. */
  const acked = () => {
    rx.lastAckSent = rx.rcvNxt;
    rx.unackedSegments = 0;
  };
  return { rx, delivered, accept, acked };
}

describe('TcpReceiver', () => {
  it('expects the byte after the peer’s SYN', () => {
    const { rx } = setup();
    expect(rx.rcvNxt).toBe(1000);
    expect(rx.lastAckSent).toBe(1000);
  });

  it('delivers an in-order segment and delays the ACK for the first full segment', () => {
    const { rx, delivered, accept } = setup();
    expect(accept(1000, MSS)).toBe(AckDecision.Delay);
    expect(delivered).toEqual(Array.from(bytes(1000, MSS)));
    expect(rx.rcvNxt).toBe(1000 + MSS);
  });

  it('asks for an ACK now on the second full segment since the last ACK', () => {
    const { accept } = setup();
    accept(1000, MSS);
    expect(accept(1100, MSS)).toBe(AckDecision.Now);
  });

  it('moves rcv_nxt past the bytes before the application sees them, in order and from reassembly: an answer sent at once acknowledges its request', () => {
    const rx = new TcpReceiver(10_000, 0);
    rx.init(IRS);
    const seenAtDelivery: number[] = [];
    const deliver = (chunk: Uint8Array) => seenAtDelivery.push(rx.rcvNxt, chunk.length);
    rx.accept(1100, bytes(1100, MSS), false, 0, MSS, deliver); // out of order: held
    expect(seenAtDelivery).toEqual([]);
    rx.accept(1000, bytes(1000, MSS), false, 0, MSS, deliver);
    // Each chunk is counted received before it is handed over (vopr seed 49770: an answer carried the ACK from before its request).
    expect(seenAtDelivery).toEqual([1100, MSS, 1200, MSS]);
  });

  it('delays again after an ACK was sent', () => {
    const { accept, acked } = setup();
    accept(1000, MSS);
    accept(1100, MSS);
    acked();
    expect(accept(1200, MSS)).toBe(AckDecision.Delay);
  });

  it('acknowledges the first 16 segments of a connection at once (quick-ack), then every other one', () => {
    const { accept, acked } = setup(100_000, 0, true);
    const decisions: AckDecision[] = [];
    for (let i = 0; i < 20; i++) {
      const d = accept(1000 + i * MSS, MSS);
      decisions.push(d);
      if (d === AckDecision.Now) acked();
    }
    expect(decisions.slice(0, MAX_QUICKACKS)).toEqual(Array(MAX_QUICKACKS).fill(AckDecision.Now));
    expect(decisions.slice(MAX_QUICKACKS)).toEqual([AckDecision.Delay, AckDecision.Now, AckDecision.Delay, AckDecision.Now]);
  });

  it('goes back to quick-ack after data out of order', () => {
    const { rx, accept, acked } = setup();
    expect(accept(1000, MSS)).toBe(AckDecision.Delay);
    expect(accept(1200, MSS)).toBe(AckDecision.Now); // a hole
    expect(rx.quickAcks).toBe(MAX_QUICKACKS);
    expect(accept(1100, MSS)).toBe(AckDecision.Now); // fills it
    acked();
    expect(accept(1300, MSS)).toBe(AckDecision.Now); // quick-ack, not delayed
    expect(rx.quickAcks).toBe(MAX_QUICKACKS - 1);
  });

  it('asks for an ACK now on a short segment', () => {
    const { accept } = setup();
    expect(accept(1000, MSS - 1)).toBe(AckDecision.Now);
  });

  it('holds an out-of-order segment, delivers nothing and asks for an immediate (duplicate) ACK', () => {
    const { rx, delivered, accept } = setup();
    expect(accept(1100, MSS)).toBe(AckDecision.Now);
    expect(delivered).toEqual([]);
    expect(rx.rcvNxt).toBe(1000);
    expect(rx.outOfOrderBytes).toBe(MSS);
    expect(rx.outOfOrderSegments).toBe(1);
  });

  it('delivers held data in order once the hole is filled, and ACKs at once', () => {
    const { rx, delivered, accept } = setup();
    accept(1200, MSS);
    accept(1100, MSS);
    expect(accept(1000, MSS)).toBe(AckDecision.Now);
    expect(delivered).toEqual(Array.from(bytes(1000, 3 * MSS)));
    expect(rx.rcvNxt).toBe(1300);
    expect(rx.outOfOrderBytes).toBe(0);
  });

  it('delivers every byte exactly once whatever order and overlap the segments arrive in', () => {
    const piece = fc.tuple(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 1, max: MSS }));
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 60 }), (pieces) => {
        const { rx, delivered, accept } = setup();
        for (const [off, len] of pieces) accept(1000 + off, Math.min(len, 1000 - off));
        // Then the whole stream once more, in order, as a go-back-N retransmission would.
        for (let off = 0; off < 1000; off += MSS) accept(1000 + off, MSS);
        expect(delivered).toEqual(Array.from(bytes(1000, 1000)));
        expect(rx.rcvNxt).toBe(2000);
        expect(rx.outOfOrderBytes).toBe(0);
      }),
    );
  });

  it('counts a segment wholly below rcvNxt as a duplicate and asks for an ACK now', () => {
    const { rx, delivered, accept } = setup();
    accept(1000, MSS);
    delivered.length = 0;
    expect(accept(1000, MSS)).toBe(AckDecision.Now);
    expect(delivered).toEqual([]);
    expect(rx.dupSegments).toBe(1);
  });

  it('delivers only the new part of a segment that overlaps delivered data', () => {
    const { delivered, accept } = setup();
    accept(1000, 50);
    delivered.length = 0;
    accept(1000, MSS);
    expect(delivered).toEqual(Array.from(bytes(1050, 50)));
  });

  it('ignores a pure ACK and answers a segment below rcvNxt without data (a window probe)', () => {
    const { accept } = setup();
    expect(accept(1000, 0)).toBe(AckDecision.None);
    expect(accept(999, 0)).toBe(AckDecision.Now);
  });

  it('drops a segment that starts beyond the window and asks for an ACK', () => {
    const { rx, accept } = setup(1_000);
    expect(accept(2000, MSS)).toBe(AckDecision.Now);
    expect(rx.outOfOrderBytes).toBe(0);
  });

  it('keeps only the part of a segment inside the window', () => {
    const { rx, accept } = setup(1_000);
    accept(1950, MSS);
    expect(rx.outOfOrderBytes).toBe(50);
  });

  it('accepts a FIN once: it consumes a sequence number and asks for an ACK now', () => {
    const { rx, accept } = setup();
    expect(accept(1000, 10, { fin: true })).toBe(AckDecision.Now);
    expect(rx.finReceived).toBe(true);
    expect(rx.rcvNxt).toBe(1011);
  });

  it('treats a retransmitted FIN as a duplicate', () => {
    const { rx, accept } = setup();
    accept(1000, 10, { fin: true });
    expect(accept(1000, 10, { fin: true })).toBe(AckDecision.Now);
    expect(rx.rcvNxt).toBe(1011);
    expect(rx.dupSegments).toBe(1);
  });

  it('holds an out-of-order FIN until the data before it arrives', () => {
    const { rx, accept } = setup();
    accept(1100, 10, { fin: true });
    expect(rx.finReceived).toBe(false);
    accept(1000, MSS);
    expect(rx.finReceived).toBe(true);
    expect(rx.rcvNxt).toBe(1111);
  });

  it('ignores the FIN of a segment cut short by the window', () => {
    const { rx, accept } = setup(1_000);
    accept(1950, MSS, { fin: true });
    accept(1000, 950);
    expect(rx.finReceived).toBe(false);
    expect(rx.rcvNxt).toBe(2000);
  });

  it('advertises free space unscaled in a SYN, capped at 65 535', () => {
    expect(new TcpReceiver(40_000, 7).windowField(true)).toBe(40_000);
    expect(new TcpReceiver(6 * 1024 * 1024, 7).windowField(true)).toBe(0xffff);
  });

  it('advertises free space shifted by its window scale outside a SYN', () => {
    const rx = new TcpReceiver(6 * 1024 * 1024, 7);
    rx.init(IRS);
    expect(rx.windowField(false)).toBe((6 * 1024 * 1024) >> 7);
  });

  it('caps an unscaled window at 65 535 bytes', () => {
    const rx = new TcpReceiver(6 * 1024 * 1024, 0);
    rx.init(IRS);
    expect(rx.windowField(false)).toBe(0xffff);
  });

  it('never moves the right edge of its advertised window to the left', () => {
    const { rx, accept } = setup(1_000);
    expect(rx.windowField(false)).toBe(1_000); // right edge 2000
    accept(1500, 400); // held out of order: free space drops to 600
    expect(rx.windowField(false)).toBe(1_000);
  });

  it('takes TS.Recent from a segment that starts at or before the last ACK sent', () => {
    const { rx, accept } = setup();
    accept(1000, MSS, { tsValUs: 500 });
    expect(rx.tsRecentUs).toBe(500);
  });

  it('does not take TS.Recent from an out-of-order segment beyond the last ACK sent', () => {
    const { rx, accept } = setup();
    accept(1100, MSS, { tsValUs: 500 });
    expect(rx.tsRecentUs).toBe(0);
  });

  it('does not move TS.Recent backwards', () => {
    const { rx, accept, acked } = setup();
    accept(1000, MSS, { tsValUs: 500 });
    acked();
    accept(1100, MSS, { tsValUs: 400 });
    expect(rx.tsRecentUs).toBe(500);
  });
});

describe('windowScaleFor', () => {
  it('picks the smallest shift that fits the buffer in 16 bits, up to 14', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), (buf) => {
        const s = windowScaleFor(buf);
        expect(s).toBeGreaterThanOrEqual(0);
        expect(s).toBeLessThanOrEqual(14);
        if (s < 14) expect(buf / 2 ** s).toBeLessThanOrEqual(0xffff);
        if (s > 0) expect(buf / 2 ** (s - 1)).toBeGreaterThan(0xffff);
      }),
    );
  });

  it('needs no shift for 64 KiB − 1 and shift 7 for 6 MiB', () => {
    expect(windowScaleFor(0xffff)).toBe(0);
    expect(windowScaleFor(0x10000)).toBe(1);
    expect(windowScaleFor(6 * 1024 * 1024)).toBe(7);
  });
});
