import { describe, expect, it } from 'vitest';
import { MAX_REPEAT_BACKOFF_SHIFT, RepeatGate } from '../../../lib/checkpoint/repeat-gate.js';
import { InvariantError } from '../../../lib/errors.js';

describe('RepeatGate', () => {
  it('answers a repeat before anything was sent, then, after each sending, one a gap later', () => {
    const gate = new RepeatGate(100);
    expect(gate.tryRepeat(5)).toBe(true);
    gate.sent(1_000);
    expect([1_000, 1_050, 1_099].map((t) => gate.tryRepeat(t))).toEqual([false, false, false]);
    expect(gate.tryRepeat(1_100)).toBe(true);
  });

  it('doubles the wait with each answer to one part, up to 2^MAX_REPEAT_BACKOFF_SHIFT gaps, and starts over with a new part', () => {
    const gate = new RepeatGate(100);
    gate.sent(0);
    const answeredAt: number[] = [];
    for (let t = 0; t <= 20_000; t += 10) if (gate.tryRepeat(t)) answeredAt.push(t);
    const waits = answeredAt.map((t, i) => t - (answeredAt[i - 1] ?? 0));
    expect(waits.slice(0, 7)).toEqual([100, 200, 400, 800, 1_600, 3_200, 3_200]);
    expect(Math.max(...waits)).toBe(100 * 2 ** MAX_REPEAT_BACKOFF_SHIFT);
    gate.sent(30_000);
    expect(gate.tryRepeat(30_100)).toBe(true);
  });

  it('waits at least twice the time the replication link takes to carry the part', () => {
    // 16 MiB at 125 MB/s (1 Gbit/s): 134 ms on the link, so no answer within 268 ms of the sending.
    const gate = new RepeatGate(25_000, 125e6);
    gate.sent(0, 16 * 1024 * 1024);
    expect(gate.waitUs).toBe(Math.ceil((2 * 16 * 1024 * 1024 * 1e6) / 125e6));
    expect(gate.tryRepeat(268_000)).toBe(false);
    expect(gate.tryRepeat(268_436)).toBe(true);
    // A small part waits the gap alone.
    gate.sent(1_000_000, 1_000);
    expect(gate.waitUs).toBe(25_000);
  });

  it('a gap of 0 and no link answers every repeat', () => {
    const gate = new RepeatGate(0);
    gate.sent(10);
    expect([10, 10, 11].map((t) => gate.tryRepeat(t))).toEqual([true, true, true]);
  });

  it('refuses a negative or infinite gap or rate, a part of no whole bytes, and a repeat before the sending', () => {
    expect(() => new RepeatGate(-1)).toThrow(InvariantError);
    expect(() => new RepeatGate(Infinity)).toThrow(InvariantError);
    expect(() => new RepeatGate(10, -1)).toThrow(InvariantError);
    expect(() => new RepeatGate(10, Number.NaN)).toThrow(InvariantError);
    const gate = new RepeatGate(10);
    expect(() => gate.sent(0, 1.5)).toThrow(InvariantError);
    gate.sent(100);
    expect(() => gate.tryRepeat(99)).toThrow(InvariantError);
  });
});
