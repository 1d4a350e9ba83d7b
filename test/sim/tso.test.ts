import { describe, expect, it } from 'vitest';
import { GSO_MAX_BYTES, runConfigSchema } from '../../lib/config/run-config.js';
import { simulate } from '../../sim/run.js';

/**
 * The speculative guest's TSO segments to its acker (docs/design-notes.md,
 * TSO): under our window they change the run's events, not its figures.
 */
describe('TSO between the speculative guest and its acker', () => {
  const run = (tsoBytes: number, specWindow: 'buffer' | 'client' = 'buffer') =>
    simulate(runConfigSchema.parse({ mode: 'spec', epochMs: 25, durationS: 2, link: { bandwidthBitsPerSec: 1e9, rttMs: 1 }, guest: { tsoBytes }, buffers: { specWindow } }));

  it('under the buffer window: the same goodput as one MSS per segment, in under half the events', () => {
    const tso = run(GSO_MAX_BYTES);
    const mss = run(0);
    expect(tso.streamVerified && mss.streamVerified).toBe(true);
    expect(Math.abs(tso.goodputBitsPerSec / mss.goodputBitsPerSec - 1)).toBeLessThan(0.005);
    expect(tso.simEvents).toBeLessThan(0.5 * mss.simEvents);
    expect(tso.timeouts).toBe(0);
  });

  it("under the paper's window: the guest sits out timeouts for what did not fit, and the stream still arrives verified", () => {
    const tso = run(GSO_MAX_BYTES, 'client');
    expect(tso.streamVerified).toBe(true);
    expect(tso.timeouts).toBeGreaterThan(0);
  });
});
