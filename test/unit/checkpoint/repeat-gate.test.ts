import { describe, expect, it } from 'vitest';
import { RepeatGate } from '../../../lib/checkpoint/repeat-gate.js';
import { InvariantError } from '../../../lib/errors.js';

describe('RepeatGate', () => {
  it('answers a repeat before anything was sent, then one per gap after each sending', () => {
    const gate = new RepeatGate(100);
    expect(gate.tryRepeat(5)).toBe(true);
    gate.sent(1_000);
    expect([1_000, 1_050, 1_099].map((t) => gate.tryRepeat(t))).toEqual([false, false, false]);
    expect(gate.tryRepeat(1_100)).toBe(true);
    expect(gate.tryRepeat(1_150)).toBe(false);
    expect(gate.tryRepeat(1_200)).toBe(true);
  });

  it('a gap of 0 answers every repeat', () => {
    const gate = new RepeatGate(0);
    gate.sent(10);
    expect([10, 10, 11].map((t) => gate.tryRepeat(t))).toEqual([true, true, true]);
  });

  it('refuses a negative or infinite gap, and a repeat before the sending', () => {
    expect(() => new RepeatGate(-1)).toThrow(InvariantError);
    expect(() => new RepeatGate(Infinity)).toThrow(InvariantError);
    const gate = new RepeatGate(10);
    gate.sent(100);
    expect(() => gate.tryRepeat(99)).toThrow(InvariantError);
  });
});
