import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PERMIT_SPANS, PermitSpans } from '../../../services/auditor/permit-spans.js';

describe('PermitSpans', () => {
  it('merges permits that overlap or touch, in any order, and keeps holes', () => {
    const s = new PermitSpans();
    s.add(1_000, 2_000);
    s.add(0, 1_000);
    s.add(3_000, 4_000);
    s.add(1_500, 2_500);
    expect(s.spans).toEqual([
      { fromUs: 0, untilUs: 2_500 },
      { fromUs: 3_000, untilUs: 4_000 },
    ]);
    expect([s.covers(0), s.covers(2_499), s.covers(2_500), s.covers(2_999), s.covers(3_000), s.covers(4_000)]).toEqual([true, true, false, false, true, false]);
    s.add(2_400, 3_100);
    expect(s.spans).toEqual([{ fromUs: 0, untilUs: 4_000 }]);
  });

  it(`covers exactly the union of the permits added, while they fit in ${MAX_PERMIT_SPANS} spans`, () => {
    const permit = fc.tuple(fc.integer({ min: 0, max: 400 }), fc.integer({ min: 1, max: 40 })).map(([from, length]) => [from, from + length] as const);
    fc.assert(
      fc.property(fc.array(permit, { maxLength: 30 }), (permits) => {
        const s = new PermitSpans();
        for (const [from, until] of permits) s.add(from, until);
        if (s.bridged > 0) return;
        for (let t = 0; t < 450; t++) expect(s.covers(t)).toBe(permits.some(([from, until]) => from <= t && t < until));
        for (let i = 1; i < s.spans.length; i++) expect(s.spans[i]!.fromUs).toBeGreaterThan(s.spans[i - 1]!.untilUs);
      }),
    );
  });

  it(`at ${MAX_PERMIT_SPANS} spans, takes the oldest hole as covered`, () => {
    const s = new PermitSpans();
    for (let i = 0; i <= MAX_PERMIT_SPANS; i++) s.add(i * 100, i * 100 + 50);
    expect(s.spans).toHaveLength(MAX_PERMIT_SPANS);
    expect(s.bridged).toBe(1);
    expect(s.covers(75)).toBe(true);
    expect(s.covers(175)).toBe(false);
  });
});
