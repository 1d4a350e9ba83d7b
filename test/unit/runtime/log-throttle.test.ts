import { describe, expect, it } from 'vitest';
import { LogThrottle } from '../../../lib/runtime/nats/log-throttle.js';

describe('LogThrottle', () => {
  it('lets `burst` lines of a key through per interval, counts the rest, and the next line says how many were held', () => {
    let nowMs = 0;
    const t = new LogThrottle(2, 1_000, () => nowMs);
    expect([t.admit('a'), t.admit('a'), t.admit('a'), t.admit('a')]).toEqual([0, 0, null, null]);
    // Another event has its own window.
    expect(t.admit('b')).toBe(0);
    nowMs = 999;
    expect(t.admit('a')).toBeNull();
    nowMs = 1_000;
    expect(t.admit('a')).toBe(3);
    expect(t.admit('a')).toBe(0);
    expect(t.suppressedTotal).toBe(3);
  });

  it('keeps at most maxKeys windows: new keys past it share one', () => {
    const t = new LogThrottle(1, 1_000, () => 0, 2);
    expect([t.admit('a'), t.admit('b'), t.admit('c'), t.admit('d')]).toEqual([0, 0, 0, null]);
    expect(t.admit('a')).toBeNull();
  });
});
