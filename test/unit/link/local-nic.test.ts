import { describe, expect, it } from 'vitest';
import { TcpFlag, type Segment } from '../../../lib/codec/messages.js';
import { LinkDirection, serializedBytesOf, TCP_IP_HEADER_BYTES } from '../../../lib/link/index.js';
import { Transmitter } from '../../../lib/link/transmitter.js';
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

describe('Transmitter', () => {
  it('counts what is queued until each packet has left, and says when the queue drains to a level', () => {
    const t = new Transmitter(GBIT);
    for (let i = 0; i < 4; i++) t.admit(PACKET, 0);
    expect(t.queuedBytesAt(0)).toBe(4 * PACKET);
    expect(t.queuedBytesAt(Math.ceil(PACKET_US))).toBe(3 * PACKET);
    expect(t.drainedToUs(PACKET, 0)).toBe(Math.ceil(3 * PACKET_US));
    expect(t.drainedToUs(0, 0)).toBe(Math.ceil(4 * PACKET_US));
    expect(t.drainedToUs(10 * PACKET, 0)).toBe(0); // below the level already
    expect(t.queuedBytesAt(Math.ceil(4 * PACKET_US))).toBe(0);
  });
});

describe('LocalNic (a local sender’s NIC at the head of its link)', () => {
  it('mirrors the link: whatever it lets a sender put in, the link with the same queue never drops', () => {
    const queueBytes = 10 * 1500;
    const nic = new LocalNic(GBIT, queueBytes);
    const link = new LinkDirection({ rateBitsPerSec: GBIT, delayUs: 500, queueBytes, lossRate: 0, jitterUs: 0 }, new Rng(1));
    let seq = 1;
    let sent = 0;
    // A sender that tries a segment every 3 µs for 2 ms, four times faster than the line.
    for (let nowUs = 0; nowUs < 2_000; nowUs += 3) {
      if (!nic.hasRoom(MSS, nowUs)) continue;
      const seg = segment(seq);
      seq += MSS;
      nic.sent(seg, nowUs);
      expect(link.transit(seg, nowUs)).not.toBe(DROPPED);
      sent++;
    }
    expect(link.stats.queueDrops).toBe(0);
    expect(nic.stats.throttles).toBeGreaterThan(0);
    // It pushed back, yet kept the line busy: about 2 ms worth of packets went.
    expect(sent).toBeGreaterThanOrEqual(Math.floor(2_000 / PACKET_US) - 1);
  });

  it('holds at most TCP small queues’ limit of a socket, however deep the device queue', () => {
    const nic = new LocalNic(GBIT, 4 * TCP_LIMIT_OUTPUT_BYTES);
    expect(nic.limitBytes).toBe(TCP_LIMIT_OUTPUT_BYTES);
    let n = 0;
    while (nic.hasRoom(MSS, 0)) {
      nic.sent(segment(1 + n * MSS), 0);
      n++;
    }
    expect(n * PACKET).toBeLessThanOrEqual(TCP_LIMIT_OUTPUT_BYTES);
    expect((n + 1) * PACKET).toBeGreaterThan(TCP_LIMIT_OUTPUT_BYTES - 40);
    // Asked again once half the limit has gone.
    const atUs = nic.roomAtUs(0);
    expect(atUs).toBeGreaterThan(0);
    // …when half the limit fits again: a woken sender puts a burst in, not one packet per wake-up.
    let refill = 0;
    while (nic.hasRoom(MSS, atUs)) {
      nic.sent(segment(1 + (n + refill) * MSS), atUs);
      refill++;
    }
    expect(refill * PACKET).toBeGreaterThanOrEqual(TCP_LIMIT_OUTPUT_BYTES / 2 - 2 * PACKET);
  });

  it('takes the first segment into an empty queue even when the queue is smaller than a segment', () => {
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
    while (nic.admits(MSS, 0, (atUs) => wakes.push(atUs))) nic.sent(segment(1 + MSS * n++), 0);
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
