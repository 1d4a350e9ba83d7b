import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runConfigSchema } from '../../../lib/config/run-config.js';
import { Rng } from '../../../lib/rng.js';
import { DROPPED } from '../../../lib/runtime/sim/sim-runtime.js';
import { clientLinkFor, ETHERNET_FRAMING_BYTES, LinkDirection, replicationLinkFor, serializedBytesOf, TCP_IP_HEADER_BYTES, type LinkOptions } from '../../../lib/link/index.js';
import { replicationLinkGateBytesFor } from '../../../lib/link/link-direction.js';
import { segment } from '../support/segments.js';

const MBIT = 1_000_000;
/** A packet of `wireBytes` on the wire. */
const packet = (wireBytes: number) => segment({ payload: new Uint8Array(wireBytes - TCP_IP_HEADER_BYTES) });
const link = (options: Partial<LinkOptions> = {}, rng = new Rng(1, 'link')) =>
  new LinkDirection({ rateBitsPerSec: MBIT, delayUs: 5_000, queueBytes: 1_000_000, lossRate: 0, jitterUs: 0, ...options }, rng);
/** An Rng stand-in that loses the first packet only. */
const loseFirst = (): Rng => {
  let first = true;
  return {
    chance: () => {
      const lose = first;
      first = false;
      return lose;
    },
    next: () => 0,
  } as unknown as Rng;
};

describe('LinkDirection', () => {
  it('takes (bytes + Ethernet framing)·8/rate to serialize a packet, then the propagation delay', () => {
    // 1500 bytes in a 1538-byte frame (preamble, header, FCS, gap) at 1 Mbit/s: 12 304 µs on the wire, then 5 000 µs of delay.
    expect(link().transit(packet(1500), 0)).toBe(17_304);
  });

  it('frames a larger message (a checkpoint chunk) once per MTU', () => {
    expect(serializedBytesOf(1500)).toBe(1500 + ETHERNET_FRAMING_BYTES);
    expect(serializedBytesOf(1501)).toBe(1501 + 2 * ETHERNET_FRAMING_BYTES);
    expect(serializedBytesOf(64)).toBe(64 + ETHERNET_FRAMING_BYTES);
    // The payload share of the line rate with MSS 1448 and timestamps: 94.15%.
    expect(1448 / serializedBytesOf(1448 + TCP_IP_HEADER_BYTES)).toBeCloseTo(0.9415, 4);
  });

  it('counts the TCP/IP headers as wire bytes', () => {
    const l = link();
    l.transit(segment({ payload: new Uint8Array(100) }), 0);
    expect(l.stats.wireBytes).toBe(100 + TCP_IP_HEADER_BYTES);
  });

  it('queues a packet behind the one in transmission', () => {
    const l = link();
    l.transit(packet(1500), 0);
    expect(l.transit(packet(1500), 1_000)).toBe(29_608);
  });

  it('starts transmitting at once on an idle link', () => {
    const l = link();
    l.transit(packet(1500), 0);
    expect(l.transit(packet(1500), 50_000)).toBe(67_304);
  });

  it('keeps fractional serialization times without drift over many packets', () => {
    // 100 bytes in a 138-byte frame at 3 Mbit/s is 368 µs; 2 500 of them take exactly 920 000 µs; 137 bytes (99 + 38) take 365.33 µs, 3 000 of them exactly 1 096 000 µs.
    const l = link({ rateBitsPerSec: 3 * MBIT, delayUs: 0 });
    let last = 0;
    for (let i = 0; i < 2500; i++) last = l.transit(packet(100), 0);
    expect(last).toBe(920_000);
    const odd = link({ rateBitsPerSec: 3 * MBIT, delayUs: 0 });
    for (let i = 0; i < 3000; i++) last = odd.transit(packet(99), 0);
    expect(Math.abs(last - 1_096_000)).toBeLessThanOrEqual(1); // the float sum's last bit, rounded up to a µs

  });

  it('drops a packet that would overflow the byte bound of the queue', () => {
    const l = link({ queueBytes: 3_000 });
    expect(l.transit(packet(1500), 0)).not.toBe(DROPPED);
    expect(l.transit(packet(1500), 0)).not.toBe(DROPPED);
    expect(l.transit(packet(TCP_IP_HEADER_BYTES + 1), 0)).toBe(DROPPED);
    expect(l.stats.queueDrops).toBe(1);
  });

  it('drops a packet that would wait longer than the time bound, at the current rate, and takes any packet on an idle link', () => {
    // 1500 bytes take 12 ms at 1 Mbit/s.
    const l = link({ maxQueueDelayUs: 20_000 });
    expect(l.transit(packet(1500), 0)).not.toBe(DROPPED); // idle: starts at once
    expect(l.transit(packet(1500), 0)).not.toBe(DROPPED); // starts after 12 ms
    expect(l.transit(packet(1500), 0)).toBe(DROPPED); // would start after 24 ms
    expect(l.stats.queueDrops).toBe(1);
    // Ten times slower: even a lone large packet goes (it waits for nothing), the next one is dropped.
    l.setRate(MBIT / 10);
    expect(l.transit(packet(1500), 24_000)).not.toBe(DROPPED);
    expect(l.transit(packet(100), 24_000)).toBe(DROPPED);
  });

  it('accepts a packet that exactly fills the queue', () => {
    const l = link({ queueBytes: 3_000 });
    l.transit(packet(1500), 0);
    expect(l.transit(packet(1500), 0)).not.toBe(DROPPED);
    expect(l.queuedBytes).toBe(3_000);
  });

  it('frees queue space when a packet finishes transmission', () => {
    const l = link({ queueBytes: 3_000 });
    l.transit(packet(1500), 0);
    l.transit(packet(1500), 0);
    expect(l.transit(packet(1500), 12_303)).toBe(DROPPED);
    expect(l.transit(packet(1500), 12_304)).toBe(41_912);
  });

  it('never lets queued bytes exceed the bound, for any arrival pattern', () => {
    const arrivals = fc.array(fc.tuple(fc.integer({ min: 0, max: 5_000 }), fc.integer({ min: TCP_IP_HEADER_BYTES, max: 1500 })), { maxLength: 300 });
    fc.assert(
      fc.property(arrivals, (steps) => {
        const l = link({ queueBytes: 10_000 });
        let now = 0;
        for (const [gap, size] of steps) {
          now += gap;
          l.transit(packet(size), now);
          expect(l.queuedBytes).toBeLessThanOrEqual(10_000);
        }
        expect(l.stats.maxQueuedBytes).toBeLessThanOrEqual(10_000);
      }),
    );
  });

  it('loses packets at the configured rate, within a binomial bound, for a fixed seed', () => {
    const n = 20_000;
    const p = 0.1;
    const l = link({ lossRate: p, rateBitsPerSec: 1e12 }, new Rng(42, 'loss'));
    let dropped = 0;
    for (let i = 0; i < n; i++) if (l.transit(packet(100), i * 1_000) === DROPPED) dropped++;
    const sigma = Math.sqrt(n * p * (1 - p));
    expect(Math.abs(dropped - n * p)).toBeLessThan(5 * sigma);
    expect(l.stats.randomLosses).toBe(dropped);
    expect(l.stats.queueDrops).toBe(0);
  });

  it('never loses a packet when the loss rate is 0', () => {
    const l = link({ lossRate: 0 });
    for (let i = 0; i < 1_000; i++) expect(l.transit(packet(100), i * 1_000)).not.toBe(DROPPED);
  });

  it('still spends transmission time on a packet lost on the wire', () => {
    const l = link({ lossRate: 0.5 }, loseFirst());
    expect(l.transit(packet(1500), 0)).toBe(DROPPED);
    expect(l.transit(packet(1500), 0)).toBe(29_608);
  });

  it('adds jitter within [0, jitterUs) on top of the delay', () => {
    const l = link({ jitterUs: 2_000 }, new Rng(3));
    for (let i = 0; i < 500; i++) {
      const sent = i * 100_000;
      const arrival = l.transit(packet(1500), sent);
      expect(arrival).toBeGreaterThanOrEqual(sent + 17_304);
      expect(arrival).toBeLessThanOrEqual(sent + 17_304 + 2_000);
    }
  });

  it('never reorders packets, whatever the jitter and spacing', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 1, max: 100_000 }), fc.array(fc.integer({ min: 0, max: 20_000 }), { maxLength: 200 }), (seed, jitterUs, gaps) => {
        const l = link({ jitterUs, rateBitsPerSec: 100 * MBIT }, new Rng(seed));
        let now = 0;
        let lastArrival = -1;
        for (const gap of gaps) {
          now += gap;
          const arrival = l.transit(packet(1500), now);
          expect(arrival).toBeGreaterThanOrEqual(lastArrival);
          lastArrival = arrival;
        }
      }),
    );
  });

  it('gives integer arrival times', () => {
    const l = link({ rateBitsPerSec: 3 * MBIT, jitterUs: 777 }, new Rng(5));
    for (let i = 0; i < 100; i++) expect(Number.isInteger(l.transit(packet(333), i * 10))).toBe(true);
  });
});

describe('clientLinkFor: which queue a released epoch meets', () => {
  const config = (mode: 'remus' | 'spec', plugRelease: 'paced' | 'burst') => runConfigSchema.parse({ mode, link: { bandwidthBitsPerSec: 100 * MBIT, queueBytes: 10 * 1500 }, buffers: { plugRelease } });
  /** A whole epoch's release at one instant: 100 full-size packets into a 10-packet queue. */
  const releaseEpoch = (l: LinkDirection) => Array.from({ length: 100 }, () => l.transit(packet(1500), 0));

  it('under remus with a paced plug, the plug is the down queue: the released epoch goes out at line rate, none dropped, in order', () => {
    const l = clientLinkFor(config('remus', 'paced'), 'down');
    const arrivals = releaseEpoch(l);
    expect(arrivals).not.toContain(DROPPED);
    expect(l.stats.queueDrops).toBe(0);
    // Line rate: one full frame's serialization apart.
    const frameUs = (serializedBytesOf(1500) * 8) / 100;
    expect(arrivals[99]! - arrivals[0]!).toBeCloseTo(99 * frameUs, -1);
  });

  it("with a burst release (a plug in front of the device's own queue), and for every other sender and direction, the drop-tail queue bounds it", () => {
    for (const l of [clientLinkFor(config('remus', 'burst'), 'down'), clientLinkFor(config('spec', 'paced'), 'down'), clientLinkFor(config('remus', 'paced'), 'up')]) {
      releaseEpoch(l);
      expect(l.stats.queueDrops).toBe(90);
    }
  });
});

describe('replicationLinkGateBytesFor: what a NATS process may hold of the replication link', () => {
  it('is above all the link accepts at once, within a small multiple of it', () => {
    const link = { bandwidthBitsPerSec: 100 * MBIT, rttMs: 2 };
    const l = replicationLinkFor(link, 1, 'down');
    // Everything offered at one instant: the link takes a second of queue and drops the rest.
    let acceptedBytes = 0;
    for (let i = 0; i < 100_000 && l.stats.queueDrops === 0; i++) if (l.transit(packet(64 * 1024), 0) !== DROPPED) acceptedBytes += 64 * 1024;
    expect(l.stats.queueDrops).toBe(1);
    const bound = replicationLinkGateBytesFor(link);
    expect(bound).toBeGreaterThan(acceptedBytes);
    expect(bound).toBeLessThan(8 * acceptedBytes);
  });
});
