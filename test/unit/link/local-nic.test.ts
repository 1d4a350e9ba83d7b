import { describe, expect, it } from 'vitest';
import { TcpFlag, type Segment } from '../../../lib/codec/messages.js';
import { LinkDirection, serializedBytesOf, TCP_IP_HEADER_BYTES } from '../../../lib/link/index.js';
import { DROPPED } from '../../../lib/runtime/sim/sim-runtime.js';
import { Rng } from '../../../lib/rng.js';
import { LocalNic, TCP_LIMIT_OUTPUT_BYTES } from '../../../lib/link/local-nic.js';

const GBIT = 1e9;
const MSS = 1448;
const PACKET = MSS + TCP_IP_HEADER_BYTES;
/** µs a full packet takes on the wire at 1 Gbit/s. */
const PACKET_US = (serializedBytesOf(PACKET) * 8) / 1000;

const segment = (seq: number, len = MSS): Segment => ({
  type: 'segment', vmId: 'vm', term: 0, epoch: 0, connId: 1, seq, ack: 1, window: 100, flags: TcpFlag.ACK, payload: new Uint8Array(len),
  mss: 0, wscale: undefined, sackPermitted: false, sackBlocks: [], tsValUs: 1, tsEcrUs: 1, speculative: false,
});

/** A sender that tries a data segment every `everyUs` for `forUs`, a pure ACK every tenth try, through `nic` onto `link`; data is never dropped. */
function drive(nic: LocalNic, link: LinkDirection, everyUs: number, forUs: number): { sent: number } {
  let seq = 1;
  let sent = 0;
  for (let nowUs = 0, i = 0; nowUs < forUs; nowUs += everyUs, i++) {
    const ack = i % 10 === 9;
    if (!ack && !nic.hasRoom(MSS, nowUs)) continue;
    const seg = segment(seq, ack ? 0 : MSS);
    if (!ack) seq += MSS;
    nic.sent(seg, nowUs);
    const delivered = link.transit(seg, nowUs) !== DROPPED;
    // A pure ACK is never held back: a full queue may drop it, as it would in Linux. Data is never dropped.
    if (!ack) expect(delivered).toBe(true);
    if (!ack) sent++;
  }
  return { sent };
}

describe('LocalNic (a local sender’s NIC at the head of its link)', () => {
  it.each([1, 10, 100])('never lets through what a %i-packet link queue would drop, and keeps the line busy', (packets) => {
    const queueBytes = packets * 1500;
    const nic = new LocalNic(GBIT, queueBytes);
    const link = new LinkDirection({ rateBitsPerSec: GBIT, delayUs: 500, queueBytes, lossRate: 0, jitterUs: 0 }, new Rng(1));
    // Four times faster than the line, for 5 ms.
    const { sent } = drive(nic, link, 3, 5_000);
    expect(nic.stats.throttles).toBeGreaterThan(0);
    expect(sent).toBeGreaterThan(0);
    // Pushed back, yet (with a queue of more than a packet) close to 5 ms of packets went.
    if (packets > 1) expect(sent).toBeGreaterThanOrEqual(0.9 * (5_000 / PACKET_US));
  });

  it('holds at most TCP small queues’ limit of a socket, however deep the device queue', () => {
    const nic = new LocalNic(GBIT, 4 * TCP_LIMIT_OUTPUT_BYTES);
    expect(nic.limitBytes).toBe(TCP_LIMIT_OUTPUT_BYTES);
    let n = 0;
    while (nic.hasRoom(MSS, 0)) {
      if (n > 100_000) throw new Error('runaway: the NIC never filled');
      nic.sent(segment(1 + MSS * n++), 0);
    }
    expect(n * PACKET).toBeLessThanOrEqual(TCP_LIMIT_OUTPUT_BYTES);
    // The bound reads the wire bytes still to send (framing included, 2.5% more) and one packet more: it costs little.
    expect(n * PACKET).toBeGreaterThan(0.97 * TCP_LIMIT_OUTPUT_BYTES - PACKET);
    // Woken when half the limit has drained: a woken sender puts a burst in, not one packet per wake-up.
    const atUs = nic.roomAtUs(0);
    expect(atUs).toBeGreaterThan(0);
    let refill = 0;
    while (nic.hasRoom(MSS, atUs)) {
      if (refill > 100_000) throw new Error('runaway: the NIC never filled');
      nic.sent(segment(1 + MSS * (n + refill++)), atUs);
    }
    expect(refill * PACKET).toBeGreaterThanOrEqual(0.97 * (TCP_LIMIT_OUTPUT_BYTES / 2) - 2 * PACKET);
  });

  it('takes the first segment into an empty queue even when the queue is smaller than a segment, and wakes when it is empty', () => {
    const nic = new LocalNic(GBIT, 1500);
    expect(nic.hasRoom(MSS, 0)).toBe(true);
    nic.sent(segment(1), 0);
    expect(nic.hasRoom(MSS, 0)).toBe(false);
    const atUs = nic.roomAtUs(0);
    expect(atUs).toBe(Math.ceil(PACKET_US));
    expect(nic.hasRoom(MSS, atUs)).toBe(true);
  });

  it('asks for one wake-up while one is pending, and for the next after it came', () => {
    const nic = new LocalNic(GBIT, 10 * 1500);
    const wakes: number[] = [];
    let n = 0;
    while (nic.admits(MSS, 0, (atUs) => wakes.push(atUs))) {
      if (n > 100_000) throw new Error('runaway: the NIC never filled');
      nic.sent(segment(1 + MSS * n++), 0);
    }
    expect(wakes).toHaveLength(1);
    expect(nic.admits(MSS, 1, (atUs) => wakes.push(atUs))).toBe(false);
    expect(wakes).toHaveLength(1); // the pending one will do
    nic.woken();
    expect(nic.admits(MSS, wakes[0]!, (atUs) => wakes.push(atUs))).toBe(true);
    for (let i = 0; i < 10 && nic.admits(MSS, wakes[0]!, (atUs) => wakes.push(atUs)); i++) nic.sent(segment(1 + MSS * n++), wakes[0]!);
    expect(wakes).toHaveLength(2);
    expect(wakes[1]!).toBeGreaterThan(wakes[0]!);
  });
});
