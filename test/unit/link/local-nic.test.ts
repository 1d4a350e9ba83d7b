import { describe, expect, it } from 'vitest';
import { TcpFlag, type Segment } from '../../../lib/codec/messages.js';
import { LinkDirection, serializedBytesOf, TCP_IP_HEADER_BYTES } from '../../../lib/link/index.js';
import { DROPPED } from '../../../lib/runtime/sim/sim-runtime.js';
import { Rng } from '../../../lib/rng.js';
import { GSO_MAX_BYTES } from '../../../lib/config/run-config.js';
import { LocalNic, TCP_LIMIT_OUTPUT_BYTES, tcpSmallQueueLimitBytes, tsoAutosizeSegments } from '../../../lib/link/local-nic.js';

const GBIT = 1e9;
const MSS = 1448;
const PACKET = MSS + TCP_IP_HEADER_BYTES;
/** µs a full packet takes on the wire at 1 Gbit/s. */
const PACKET_US = (serializedBytesOf(PACKET) * 8) / 1000;

/** A local NIC of `rateBitsPerSec` and `queueBytes` for a 1 ms round trip. */
const nicOf = (rateBitsPerSec: number, queueBytes: number, minRttUs = 1_000): LocalNic => new LocalNic({ rateBitsPerSec, queueBytes, mssBytes: MSS, minRttUs });

const segment = (seq: number, len = MSS, connId = 1): Segment => ({
  type: 'segment', vmId: 'vm', term: 0, epoch: 0, connId, seq, ack: 1, window: 100, flags: TcpFlag.ACK, payload: new Uint8Array(len),
  mss: 0, wscale: undefined, sackPermitted: false, sackBlocks: [], tsValUs: 1, tsEcrUs: 1, speculative: false,
});

/** A sender that tries a data segment every `everyUs` for `forUs`, a pure ACK every tenth try, through `nic` onto `link`; data is never dropped. */
function drive(nic: LocalNic, link: LinkDirection, everyUs: number, forUs: number): { sent: number } {
  let seq = 1;
  let sent = 0;
  for (let nowUs = 0, i = 0; nowUs < forUs; nowUs += everyUs, i++) {
    const ack = i % 10 === 9;
    if (!ack && !nic.hasRoom(1, MSS, nowUs)) continue;
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
    const nic = nicOf(GBIT, queueBytes);
    const link = new LinkDirection({ rateBitsPerSec: GBIT, delayUs: 500, queueBytes, lossRate: 0, jitterUs: 0 }, new Rng(1));
    // Four times faster than the line, for 5 ms.
    const { sent } = drive(nic, link, 3, 5_000);
    expect(nic.stats.throttles).toBeGreaterThan(0);
    expect(sent).toBeGreaterThan(0);
    // Pushed back, yet (with a queue of more than a packet) close to 5 ms of packets went.
    if (packets > 1) expect(sent).toBeGreaterThanOrEqual(0.9 * (5_000 / PACKET_US));
  });

  it('holds at most TCP small queues’ share of a socket, two 64 KiB TSO packets at 1 Gbit/s, however deep the device queue', () => {
    const nic = nicOf(GBIT, 4 * TCP_LIMIT_OUTPUT_BYTES);
    // 1 ms of 1 Gbit/s (122 KB) plus 32 KiB for a 1 ms round trip is more than 64 KiB: a TSO packet is 45 segments.
    const limitBytes = 2 * Math.floor(GSO_MAX_BYTES / MSS) * PACKET;
    expect(nic.socketLimitBytes).toBe(limitBytes);
    let n = 0;
    while (nic.hasRoom(1, MSS, 0)) {
      if (n > 100_000) throw new Error('runaway: the NIC never filled');
      nic.sent(segment(1 + MSS * n++), 0);
    }
    // Counted exactly: as many packets as fit, the headers and SACK blocks a data segment may carry allowed for.
    expect(n * PACKET).toBeLessThanOrEqual(limitBytes);
    expect(n * PACKET).toBeGreaterThan(limitBytes - 2 * PACKET);
    expect(nic.socketQueuedBytes(1, 0)).toBe(n * PACKET);
    // Woken when half its share has drained: a woken sender puts a burst in, not one packet per wake-up.
    const atUs = nic.roomAtUs(1, MSS, 0);
    expect(atUs).toBeGreaterThan(0);
    expect(nic.socketQueuedBytes(1, atUs)).toBeLessThanOrEqual(limitBytes / 2);
    let refill = 0;
    while (nic.hasRoom(1, MSS, atUs)) {
      if (refill > 100_000) throw new Error('runaway: the NIC never filled');
      nic.sent(segment(1 + MSS * (n + refill++)), atUs);
    }
    expect(refill * PACKET).toBeGreaterThanOrEqual(limitBytes / 2 - 2 * PACKET);
  });

  it('caps a socket\'s share at tcp_limit_output_bytes on a fast link, and allows 1 ms of its rate where that is more than two TSO packets', () => {
    expect(nicOf(100 * GBIT, 64 * TCP_LIMIT_OUTPUT_BYTES).socketLimitBytes).toBe(TCP_LIMIT_OUTPUT_BYTES);
    // 10 Gbit/s: 1 ms is 1.22 MB, capped; 2 Gbit/s: 1 ms (244 KB) is more than two 64 KiB packets.
    expect(nicOf(2 * GBIT, 64 * TCP_LIMIT_OUTPUT_BYTES).socketLimitBytes).toBe(Math.floor((2 * GBIT) / 8 / 1024));
  });

  it('sizes TSO packets as Linux does: 1 ms of the rate, more for a short round trip, 64 KiB at most, two segments at least', () => {
    // 100 Mbit/s: 12,207 B a ms; a 2 ms round trip (r = 3) adds 8 KiB: 14 segments.
    expect(tsoAutosizeSegments(100e6, MSS, 2_000)).toBe(Math.floor((12_207 + 8_192) / MSS));
    // A round trip of 16.4 ms or more (r ≥ 32) adds nothing: 8 segments.
    expect(tsoAutosizeSegments(100e6, MSS, 20_000)).toBe(Math.floor(12_207 / MSS));
    expect(tsoAutosizeSegments(100e9, MSS, 0)).toBe(Math.floor(GSO_MAX_BYTES / MSS));
    expect(tsoAutosizeSegments(1e6, MSS, 1e6)).toBe(2);
    // So a socket at 100 Mbit/s and 2 ms keeps 3.4 ms of the link queued, and one at 1 Mbit/s with a long round trip four packets.
    expect(tcpSmallQueueLimitBytes(100e6, MSS, 2_000)).toBe(2 * 14 * PACKET);
    expect(tcpSmallQueueLimitBytes(1e6, MSS, 1e6)).toBe(4 * PACKET);
  });

  it('lets a second socket\'s segment in while the first holds its whole share (a response beside a bulk transfer)', () => {
    const nic = nicOf(GBIT, 1000 * 1500);
    let n = 0;
    while (nic.hasRoom(1, MSS, 0)) nic.sent(segment(1 + MSS * n++), 0);
    expect(nic.hasRoom(1, MSS, 0)).toBe(false);
    // The device holds 1,000 packets; the bulk socket's share is two TSO packets: the other socket's data goes now.
    expect(nic.hasRoom(2, MSS, 0)).toBe(true);
    nic.sent(segment(1, MSS, 2), 0);
    expect(nic.socketQueuedBytes(2, 0)).toBe(PACKET);
  });

  it('is held back by the device queue when many sockets fill it, and wakes when half of it has drained', () => {
    const nic = nicOf(GBIT, 10 * 1500);
    let conn = 1;
    while (nic.hasRoom(conn, MSS, 0)) nic.sent(segment(1, MSS, conn++), 0);
    // Each socket holds one packet, far below its share: the 10-packet device is what is full.
    expect(conn - 1).toBeLessThanOrEqual(10);
    expect(nic.socketQueuedBytes(conn, 0)).toBe(0);
    const atUs = nic.roomAtUs(conn, MSS, 0);
    expect(atUs).toBeGreaterThan(0);
    expect(nic.hasRoom(conn, MSS, atUs)).toBe(true);
    expect(nic.queuedBytesAtMost(atUs)).toBeLessThanOrEqual(5 * 1500);
  });

  it('takes the first segment into an empty queue even when the queue is smaller than a segment, and wakes when it is empty', () => {
    const nic = nicOf(GBIT, 1500);
    expect(nic.hasRoom(1, MSS, 0)).toBe(true);
    nic.sent(segment(1), 0);
    expect(nic.hasRoom(1, MSS, 0)).toBe(false);
    const atUs = nic.roomAtUs(1, MSS, 0);
    expect(atUs).toBe(Math.ceil(PACKET_US));
    expect(nic.hasRoom(1, MSS, atUs)).toBe(true);
  });

  it('asks for one wake-up while one is pending, and for the next after it came', () => {
    const nic = nicOf(GBIT, 10 * 1500);
    const wakes: number[] = [];
    let n = 0;
    while (nic.admits(1, MSS, 0, (atUs) => wakes.push(atUs))) {
      if (n > 100_000) throw new Error('runaway: the NIC never filled');
      nic.sent(segment(1 + MSS * n++), 0);
    }
    expect(wakes).toHaveLength(1);
    expect(nic.admits(1, MSS, 1, (atUs) => wakes.push(atUs))).toBe(false);
    expect(wakes).toHaveLength(1); // the pending one will do
    nic.woken();
    expect(nic.admits(1, MSS, wakes[0]!, (atUs) => wakes.push(atUs))).toBe(true);
    for (let i = 0; i < 10 && nic.admits(1, MSS, wakes[0]!, (atUs) => wakes.push(atUs)); i++) nic.sent(segment(1 + MSS * n++), wakes[0]!);
    expect(wakes).toHaveLength(2);
    expect(wakes[1]!).toBeGreaterThan(wakes[0]!);
  });
});
