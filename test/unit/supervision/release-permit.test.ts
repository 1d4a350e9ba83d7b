/**
 * PermitHolder: the newest deadline of the highest term a service was
 * granted; output of that term may leave strictly before it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ReleasePermit } from '../../../lib/codec/messages.js';
import { PermitHolder } from '../../../lib/supervision/release-permit.js';

const permit = (term: number, untilUs: number): ReleasePermit => ({ type: 'releasePermit', vmId: 'vm1', term, host: 'host-a', fromUs: 0, untilUs, seq: 1 });

describe('PermitHolder', () => {
  it('allows nothing before its first grant', () => {
    const p = new PermitHolder('host-a');
    expect(p.term).toBe(0);
    expect(p.untilUs).toBe(0);
    for (const term of [0, 1, 2]) expect(p.allows(term, 0)).toBe(false);
  });

  it('allows output of the granted term strictly before the deadline', () => {
    const p = new PermitHolder('host-a');
    expect(p.grant(permit(1, 5_000))).toBe(true);
    expect(p.allows(1, 0)).toBe(true);
    expect(p.allows(1, 4_999)).toBe(true);
    expect(p.allows(1, 5_000)).toBe(false);
    expect(p.allows(1, 9_000)).toBe(false);
  });

  it('allows no other term, older or newer', () => {
    const p = new PermitHolder('host-a');
    p.grant(permit(2, 5_000));
    expect(p.allows(1, 0)).toBe(false);
    expect(p.allows(3, 0)).toBe(false);
  });

  it('within a term, keeps the latest deadline: an earlier or equal one (a delayed or repeated grant) does not move it', () => {
    const p = new PermitHolder('host-a');
    p.grant(permit(1, 5_000));
    expect(p.grant(permit(1, 8_000))).toBe(true);
    expect(p.grant(permit(1, 6_000))).toBe(false);
    expect(p.grant(permit(1, 8_000))).toBe(false);
    expect(p.untilUs).toBe(8_000);
    expect(p.staleGrants).toBe(0);
  });

  it('a higher term replaces the permit, even with an earlier deadline', () => {
    const p = new PermitHolder('host-a');
    p.grant(permit(1, 9_000));
    expect(p.grant(permit(2, 3_000))).toBe(true);
    expect(p.term).toBe(2);
    expect(p.untilUs).toBe(3_000);
    expect(p.allows(1, 0)).toBe(false);
    expect(p.allows(2, 2_999)).toBe(true);
    expect(p.allows(2, 3_000)).toBe(false);
  });

  it('ignores a grant of an older term, counting it', () => {
    const p = new PermitHolder('host-a');
    p.grant(permit(3, 1_000));
    expect(p.grant(permit(2, 99_000))).toBe(false);
    expect(p.staleGrants).toBe(1);
    expect(p.term).toBe(3);
    expect(p.untilUs).toBe(1_000);
    expect(p.allows(2, 0)).toBe(false);
  });

  it("ignores a grant to another host (its deadline is on that host's clock), counting it", () => {
    const p = new PermitHolder('host-b');
    expect(p.grant(permit(1, 5_000))).toBe(false);
    expect(p.foreignGrants).toBe(1);
    expect(p.allows(1, 0)).toBe(false);
    expect(p.grant({ ...permit(1, 5_000), host: 'host-b' })).toBe(true);
    expect(p.allows(1, 0)).toBe(true);
  });

  it('planted ignore-expiry: a permit, once granted, lasts forever (but only for its term)', () => {
    const p = new PermitHolder('host-a', true);
    expect(p.plantedIgnoreExpiry).toBe(true);
    expect(p.allows(1, 0)).toBe(false);
    p.grant(permit(1, 5_000));
    expect(p.allows(1, 5_000)).toBe(true);
    expect(p.allows(1, Number.MAX_SAFE_INTEGER)).toBe(true);
    expect(p.allows(2, 0)).toBe(false);
    expect(new PermitHolder('host-a').plantedIgnoreExpiry).toBe(false);
  });

  it('for any sequence of grants (any terms, deadlines, order, duplicates), allows a term at t only if a permit of that term granted until after t, and only the highest term granted', () => {
    const grant = fc.record({ term: fc.integer({ min: 1, max: 5 }), untilUs: fc.integer({ min: 0, max: 200 }) });
    // Grants, then the order the bus delivers them in: any order, any of them again.
    const deliveries = fc.array(grant, { minLength: 1, maxLength: 12 }).chain((gs) => fc.array(fc.nat({ max: gs.length - 1 }), { maxLength: 30 }).map((order) => order.map((i) => gs[i]!)));
    fc.assert(
      fc.property(deliveries, (delivered) => {
        const p = new PermitHolder('host-a');
        const granted: { term: number; untilUs: number }[] = [];
        for (const g of delivered) {
          const before = { term: p.term, untilUs: p.untilUs };
          const moved = p.grant(permit(g.term, g.untilUs));
          granted.push(g);
          expect(moved).toBe(g.term > before.term || (g.term === before.term && g.untilUs > before.untilUs));
          const highest = Math.max(...granted.map((x) => x.term));
          const latest = Math.max(...granted.filter((x) => x.term === highest).map((x) => x.untilUs));
          for (let term = 0; term <= 6; term++) {
            for (let t = -1; t <= 201; t += 7) {
              const allowed = p.allows(term, t);
              // The property asked for: some permit of that term runs past t, and it is the highest term granted.
              if (allowed) {
                expect(granted.some((x) => x.term === term && x.untilUs > t)).toBe(true);
                expect(term).toBe(highest);
              }
              // And exactly: the highest term, before its latest deadline.
              expect(allowed).toBe(term === highest && t < latest);
            }
          }
        }
      }),
    );
  });
});
