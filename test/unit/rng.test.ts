import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Rng } from '../../lib/rng.js';

const draw = (rng: Rng, n: number): number[] => Array.from({ length: n }, () => rng.nextUint32());

describe('Rng', () => {
  it('gives the same stream for the same seed and label', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.string(), (seed, label) => {
        expect(draw(new Rng(seed, label), 64)).toEqual(draw(new Rng(seed, label), 64));
      }),
      { numRuns: 200 },
    );
  });

  it('gives different streams for different seeds under the same label', () => {
    expect(draw(new Rng(1), 16)).not.toEqual(draw(new Rng(2), 16));
  });

  it('gives different streams for different labels under the same seed', () => {
    expect(draw(new Rng(1, 'link.down'), 16)).not.toEqual(draw(new Rng(1, 'link.up'), 16));
  });

  it('gives a fork a stream different from its parent and its siblings', () => {
    const root = new Rng(9);
    const a = draw(root.fork('a'), 16);
    expect(a).not.toEqual(draw(new Rng(9), 16));
    expect(a).not.toEqual(draw(root.fork('b'), 16));
  });

  it('does not change a fork’s stream when a sibling fork draws', () => {
    const alone = draw(new Rng(5).fork('a'), 100);
    const root = new Rng(5);
    const a = root.fork('a');
    const b = root.fork('b');
    const interleaved: number[] = [];
    for (let i = 0; i < 100; i++) {
      draw(b, 3);
      interleaved.push(a.nextUint32());
    }
    expect(interleaved).toEqual(alone);
  });

  it('does not change a fork’s stream when the parent drew before forking', () => {
    const fresh = draw(new Rng(5).fork('a'), 50);
    const root = new Rng(5);
    draw(root, 1000);
    expect(draw(root.fork('a'), 50)).toEqual(fresh);
  });

  it('returns next() in [0, 1)', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 10_000; i++) {
      const x = rng.next();
      expect(x >= 0 && x < 1).toBe(true);
    }
  });

  it('returns int(n) as an integer in [0, n) for any n', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 1, max: 2 ** 31 }), (seed, n) => {
        const rng = new Rng(seed);
        for (let i = 0; i < 20; i++) {
          const k = rng.int(n);
          expect(Number.isInteger(k) && k >= 0 && k < n).toBe(true);
        }
      }),
    );
  });

  it('spreads int(10) evenly: every bucket within 5% of its expected count over 100 000 draws', () => {
    // Expected 10 000 per bucket, standard deviation ≈ 95: the bound is ~5σ.
    const rng = new Rng(2024, 'distribution');
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) counts[rng.int(10)]!++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
  });

  it('passes a chi-square test on int(16) at a loose bound', () => {
    // 15 degrees of freedom: P(χ² > 50) < 1e-5.
    const rng = new Rng(77);
    const n = 160_000;
    const counts = new Array<number>(16).fill(0);
    for (let i = 0; i < n; i++) counts[rng.int(16)]!++;
    const expected = n / 16;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    expect(chi2).toBeLessThan(50);
  });

  it('is true with chance(p) at about rate p and never with chance(0)', () => {
    const rng = new Rng(11);
    let hits = 0;
    let zeroHits = 0;
    for (let i = 0; i < 100_000; i++) {
      if (rng.chance(0.3)) hits++;
      if (rng.chance(0)) zeroHits++;
    }
    // σ ≈ 145: the bound is ~7σ.
    expect(Math.abs(hits - 30_000)).toBeLessThan(1_000);
    expect(zeroHits).toBe(0);
  });
});
