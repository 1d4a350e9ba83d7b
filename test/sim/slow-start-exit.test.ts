import { describe, expect, it } from 'vitest';
import { sim } from '../support/run.js';

/** A short bulk run at 1 Gbit/s: CUBIC's HyStart ends slow start within a few round trips. */
const fast = { durationS: 1, link: { bandwidthBitsPerSec: 1e9, rttMs: 1 } } as const;

describe('slowStartExitSegments', () => {
  it('reports the window at which HyStart ended slow start, between its 16-segment floor and the window that fills the path', () => {
    const r = sim(fast);
    expect(r.slowStartExitSegments).not.toBeNull();
    // HyStart watches only from 16 segments; the path (1 ms of 1 Gbit/s and the queue) holds a few hundred.
    expect(r.slowStartExitSegments!).toBeGreaterThanOrEqual(16);
    expect(r.slowStartExitSegments!).toBeLessThan(2000);
  });

  it('is null when nothing ends slow start by itself: HyStart off, or NewReno (only losses end it)', () => {
    expect(sim({ ...fast, tcp: { hystart: false } }).slowStartExitSegments).toBeNull();
    expect(sim({ ...fast, tcp: { congestionControl: 'newreno' } }).slowStartExitSegments).toBeNull();
  });

  it('counts the acker\'s sender toward the client in speculative modes, where the guest talks to the acker alone', () => {
    const r = sim({ ...fast, mode: 'spec', epochMs: 25 });
    expect(r.slowStartExitSegments).not.toBeNull();
  });
});
