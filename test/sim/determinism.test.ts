import { describe, expect, it } from 'vitest';
import { sim } from '../support/run.js';

const lossy = { link: { bandwidthBitsPerSec: 100e6, rttMs: 10, lossRate: 0.01 }, durationS: 3 } as const;

describe('one seed drives the whole run', () => {
  it('gives identical results for the same seed', () => {
    expect(JSON.stringify(sim({ ...lossy, seed: 7 }))).toBe(JSON.stringify(sim({ ...lossy, seed: 7 })));
  });

  it('gives different results for different seeds under loss', () => {
    const a = sim({ ...lossy, seed: 7 });
    const b = sim({ ...lossy, seed: 8 });
    expect(a.bytesDelivered).not.toBe(b.bytesDelivered);
  });

  it('gives the same results whether or not every message round-trips through protobuf', () => {
    const fast = sim({ ...lossy, seed: 3, durationS: 1 });
    const wire = sim({ ...lossy, seed: 3, durationS: 1, wireCheck: true });
    expect(wire).toEqual(fast);
  });
});
