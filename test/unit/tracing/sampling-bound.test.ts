/**
 * The sampler's memory of connection phases, at its bound
 * MAX_REMEMBERED_CONNECTIONS: it starts over, and since a phase is a pure
 * function of VM, connection and stride, no decision changes.
 */
import { describe, expect, it } from 'vitest';
import { MAX_REMEMBERED_CONNECTIONS, sampler, strideBytesFor } from '../../../lib/tracing/sampling.js';

const VM = 'vm1';
const STRIDE = strideBytesFor(0.1, 1448);
/** Sampled bytes in the first few strides of a connection's stream. */
const firstSampled = (s: { sampledIn(c: number, a: number, b: number): number | null }, connId: number) => [0, 1, 2].map((k) => s.sampledIn(connId, k * STRIDE, (k + 1) * STRIDE));

describe('sampler at MAX_REMEMBERED_CONNECTIONS', () => {
  it('remembers up to MAX_REMEMBERED_CONNECTIONS phases, then starts over', () => {
    const s = sampler(VM, STRIDE);
    for (let c = 1; c <= MAX_REMEMBERED_CONNECTIONS; c++) s.sampledIn(c, 0, STRIDE);
    expect(s.remembered).toBe(MAX_REMEMBERED_CONNECTIONS);
    s.sampledIn(1, STRIDE, 2 * STRIDE); // known already: nothing new to remember
    expect(s.remembered).toBe(MAX_REMEMBERED_CONNECTIONS);
    s.sampledIn(MAX_REMEMBERED_CONNECTIONS + 1, 0, STRIDE);
    expect(s.remembered).toBe(1);
  });

  it('decides the same after starting over: each connection\'s sampled bytes are those of a sampler that saw only it', () => {
    const s = sampler(VM, STRIDE);
    const connections = 4 * MAX_REMEMBERED_CONNECTIONS + 3;
    const alone = new Map<number, (number | null)[]>();
    for (let c = 1; c <= connections; c++) alone.set(c, firstSampled(sampler(VM, STRIDE), c));
    // Round after round over more connections than it remembers: its memory starts over again and again.
    for (let round = 0; round < 3; round++) {
      for (let c = 1; c <= connections; c++) {
        expect(firstSampled(s, c), `connection ${c}, round ${round}`).toEqual(alone.get(c));
        expect(s.remembered).toBeLessThanOrEqual(MAX_REMEMBERED_CONNECTIONS);
      }
    }
    // One sampled byte per stride on each, at its own phase: every decision still a real one.
    for (const [c, picked] of alone) {
      expect(picked.every((o) => o !== null), `connection ${c}`).toBe(true);
      expect(picked[1]! - picked[0]!).toBe(STRIDE);
      expect(picked[2]! - picked[1]!).toBe(STRIDE);
    }
    expect(new Set([...alone.values()].map((p) => p[0])).size).toBeGreaterThan(1);
  });
});
