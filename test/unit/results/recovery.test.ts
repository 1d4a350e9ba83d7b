import { describe, expect, it } from 'vitest';
import { recoveryFigures } from '../../../lib/results/recovery.js';

/** 10 ms bins: `bytes` in each of bins [from, to). */
const BIN_US = 10_000;
function timeline(bins: number, ...runs: Array<[from: number, to: number, bytes: number]>): number[] {
  const t = new Array<number>(bins).fill(0);
  for (const [from, to, bytes] of runs) for (let b = from; b < to; b++) t[b] = bytes;
  return t;
}

describe('recoveryFigures', () => {
  it('measures goodput over the second before the crash, and the time until a 100 ms window delivers 90% of it', () => {
    // 12,500 B per 10 ms = 10 Mbit/s until the crash at 2 s, nothing for 300 ms, then the same rate again: the window
    // [2.29 s, 2.39 s) holds 9 full bins of 10, 90%.
    const t = timeline(400, [0, 200, 12_500], [230, 400, 12_500]);
    expect(recoveryFigures(t, BIN_US, 2_000_000)).toEqual({ preBitsPerSec: 10_000_000, recoveryMs: 390 });
  });

  it('scales the rate before a crash earlier than one second to the time the run had', () => {
    const t = timeline(100, [0, 50, 12_500], [50, 100, 12_500]);
    expect(recoveryFigures(t, BIN_US, 500_000)).toEqual({ preBitsPerSec: 10_000_000, recoveryMs: 100 });
  });

  it('has no recovery when nothing was delivered before the crash, and none when delivery never comes back', () => {
    expect(recoveryFigures(timeline(400, [250, 400, 12_500]), BIN_US, 2_000_000)).toEqual({ preBitsPerSec: 0, recoveryMs: null });
    expect(recoveryFigures(timeline(400, [0, 200, 12_500], [200, 400, 5_000]), BIN_US, 2_000_000)).toEqual({ preBitsPerSec: 10_000_000, recoveryMs: null });
  });
});
