import { describe, expect, it } from 'vitest';
import { rssSlopesMiBPerMin, type RssSeries } from '../../../bench/soak/sampler.js';

/** One point a second from `fromS` to `toS`, MiB given by `mib(t)`. */
const series = (fromS: number, toS: number, mib: (tS: number) => number): [number, number][] => Array.from({ length: toS - fromS + 1 }, (_, i) => [fromS + i, mib(fromS + i)]);

describe("the soak's memory growth per process", () => {
  it('is measured in the window only: memory taken with a role before it is not growth, a leak is', () => {
    const rss: RssSeries = new Map([
      // Takes its role's memory (100 MiB) at 300 s, then flat.
      ['host-a guest 1', series(1, 600, (t) => (t < 300 ? 100 : t < 360 ? 100 + (100 * (t - 300)) / 60 : 200))],
      // Leaks 2 MiB a minute all along.
      ['- failover 1', series(1, 600, (t) => 80 + (2 * t) / 60)],
      // Restarted inside the window: too few samples there to judge.
      ['host-b acker 3', series(560, 600, () => 90)],
    ]);
    const slopes = rssSlopesMiBPerMin(rss, 420, 144);
    expect(slopes.get('host-a guest 1')).toBeCloseTo(0, 6);
    expect(slopes.get('- failover 1')).toBeCloseTo(2, 6);
    expect(slopes.has('host-b acker 3')).toBe(false);
  });
});
