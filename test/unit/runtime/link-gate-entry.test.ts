import { describe, expect, it } from 'vitest';
import { LinkGate } from '../../../lib/runtime/nats/link-gate.js';
import { LinkDirection } from '../../../lib/link/link-direction.js';
import { Rng } from '../../../lib/rng.js';
import { segment } from '../support/segments.js';

/** A link gate's hop takes a message from when it was sent (its stamp), as the simulator's hop does, never before the previous one nor after now. */

const DELAY_US = 1_000;

function gateAt(clockUs: { now: number }) {
  const entries: number[] = [];
  const hop = { transit: (_msg: unknown, atUs: number) => (entries.push(atUs), atUs + DELAY_US) };
  const delivered: number[] = [];
  const gate = new LinkGate(hop, 1_000, Infinity, { nowUs: () => clockUs.now, toUnixUs: (r) => r }, (_s, msg) => delivered.push((msg as { seq: number }).seq));
  return { gate, entries, delivered };
}

describe('a link gate starts the hop at the send', () => {
  it('enters a message at its send time when the bus took less than the link: the bus delay is part of the link delay, not added to it', () => {
    const clock = { now: 10_400 };
    const { gate, entries } = gateAt(clock);
    gate.offer('x', segment({ seq: 1 }), 10_000); // 400 µs on the bus
    expect(entries).toEqual([10_000]);
    gate.stop();
  });

  it('enters a message now when it carries no send time', () => {
    const clock = { now: 10_400 };
    const { gate, entries } = gateAt(clock);
    gate.offer('x', segment({ seq: 1 }));
    expect(entries).toEqual([10_400]);
    gate.stop();
  });

  it('never enters a message after now (a sender whose clock is ahead) nor before an earlier message (senders interleaved)', () => {
    const clock = { now: 10_000 };
    const { gate, entries } = gateAt(clock);
    gate.offer('x', segment({ seq: 1 }), 12_000);
    clock.now = 10_500;
    gate.offer('x', segment({ seq: 2 }), 9_000);
    gate.offer('x', segment({ seq: 3 }), 10_200);
    expect(entries).toEqual([10_000, 10_000, 10_200]);
    gate.stop();
  });

  it('delivers a message the bus held longer than the link at once, not early and not a link delay later', async () => {
    const clock = { now: 20_000 };
    const { gate, delivered } = gateAt(clock);
    gate.offer('x', segment({ seq: 7 }), 17_000); // 3 ms on the bus, 1 ms link: due at 18,000, already past
    for (let i = 0; i < 20 && delivered.length === 0; i++) await new Promise((r) => setImmediate(r));
    expect(delivered).toEqual([7]);
    gate.stop();
  });

  it("keeps a real link's serialization: two packets sent together leave one after the other, from the send", () => {
    const clock = { now: 5_000 };
    const link = new LinkDirection({ rateBitsPerSec: 100e6, delayUs: DELAY_US, queueBytes: 1e6, lossRate: 0, jitterUs: 0 }, new Rng(1, 'link'));
    const arrivals: number[] = [];
    const hop = { transit: (msg: Parameters<LinkDirection['transit']>[0], atUs: number) => { const at = link.transit(msg, atUs); arrivals.push(at); return at; } };
    const gate = new LinkGate(hop, 1_000, Infinity, { nowUs: () => clock.now, toUnixUs: (r) => r }, () => undefined);
    const payload = new Uint8Array(1448);
    gate.offer('x', segment({ seq: 1, payload }), 4_000);
    gate.offer('x', segment({ seq: 2, payload }), 4_000);
    // 1,538 wire bytes at 100 Mbit/s: ~123 µs each, from 4,000 µs, then the delay.
    expect(arrivals[0]).toBeGreaterThan(4_000 + DELAY_US);
    expect(arrivals[0]).toBeLessThan(4_000 + DELAY_US + 200);
    expect(arrivals[1]! - arrivals[0]!).toBeGreaterThan(100);
    gate.stop();
  });
});

describe('a link gate on the wall clock', () => {
  const wall = { nowUs: () => performance.now() * 1000, toUnixUs: (r: number) => r };

  it('hands each message on no earlier than the link says, on a wait under 1 ms too, and records how late it was', async () => {
    const delayUs = 700;
    const dueAt = new Map<number, number>();
    const hop = { transit: (msg: { seq: number }, atUs: number) => (dueAt.set(msg.seq, atUs + delayUs), atUs + delayUs) };
    const handedAt = new Map<number, number>();
    const gate = new LinkGate(hop as never, 1_000, Infinity, wall, (_s, msg) => handedAt.set((msg as { seq: number }).seq, wall.nowUs()));
    for (let seq = 1; seq <= 20; seq++) {
      gate.offer('x', segment({ seq }));
      await new Promise((r) => setTimeout(r, 2));
    }
    // A loaded machine may run the last timer before the last poll: wait for it, bounded.
    for (let i = 0; i < 500 && handedAt.size < 20; i++) await new Promise((r) => setTimeout(r, 2));
    expect([...handedAt.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (const [seq, at] of handedAt) expect(at, `segment ${seq}`).toBeGreaterThanOrEqual(dueAt.get(seq)!);
    expect(Object.values(gate.lateUs).reduce((a, b) => a + b, 0)).toBe(20);
    gate.stop();
  });
});
