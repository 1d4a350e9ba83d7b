import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../../lib/errors.js';
import { foldCounters, RoleHistory } from '../../../lib/results/role-history.js';

interface Counters {
  sent: number;
  lastEpoch: number;
  verified: boolean;
  samples: number[];
  histogram: Record<string, number>;
}

const live = (startedAs: number): Counters => ({ sent: 0, lastEpoch: startedAs, verified: true, samples: [], histogram: {} });
const fold = (a: Counters, b: Counters) => foldCounters(a, b, { highest: ['lastEpoch'], samplesMax: 5 });

describe('a role history', () => {
  it('stays within its bound and keeps every total exact, for any order of roles starting and ending', () => {
    // Each step starts a role or ends one of the live ones (at most three live, as a guest's VM, image and frozen image).
    const step = fc.record({ start: fc.boolean(), pick: fc.nat(), sent: fc.nat({ max: 1_000 }), sample: fc.nat({ max: 100 }), ok: fc.boolean() });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 200 }), fc.integer({ min: 4, max: 10 }), (steps, maxEntries) => {
        const history = new RoleHistory<Counters>(fold, maxEntries);
        const running: Counters[] = [];
        let sent = 0;
        let verified = true;
        let started = 0;
        let ends = 0;
        let newestEnded = 0;
        for (const s of steps) {
          if (s.start && running.length < 3) {
            const role = live(++started);
            history.add(role);
            running.push(role);
          } else if (running.length > 0) {
            const [role] = running.splice(s.pick % running.length, 1);
            const totals = { sent: s.sent, lastEpoch: role!.lastEpoch, verified: s.ok, samples: [s.sample], histogram: { [String(s.sample % 3)]: 1 } };
            history.retire(role!, totals);
            sent += s.sent;
            verified &&= s.ok;
            ends++;
            newestEnded = Math.max(newestEnded, role!.lastEpoch);
          }
          expect(history.length).toBeLessThanOrEqual(maxEntries);
        }
        const ended = history.entries.filter((e) => !running.includes(e));
        expect(ended.reduce((n, e) => n + e.sent, 0)).toBe(sent);
        expect(ended.some((e) => !e.verified)).toBe(!verified);
        expect(ended.reduce((n, e) => n + Object.values(e.histogram).reduce((m, c) => m + c, 0), 0)).toBe(ends);
        // The highest value stands in a fold: the newest ended role's is still there.
        if (ends > 0) expect(Math.max(...ended.map((e) => e.lastEpoch))).toBe(newestEnded);
        for (const e of ended) expect(e.samples.length).toBeLessThanOrEqual(5);
        expect(history.entries.filter((e) => running.includes(e))).toHaveLength(running.length);
      }),
      { numRuns: 300 },
    );
  });

  it('folds the two oldest ended entries, the highest values standing where the rules say', () => {
    const history = new RoleHistory<Counters>(fold, 4);
    for (let i = 1; i <= 5; i++) {
      const role = live(i);
      history.add(role);
      history.retire(role, { sent: i, lastEpoch: i, verified: i !== 2, samples: [i, i, i], histogram: { [i % 2]: 1 } });
    }
    expect(history.folds).toBe(1);
    expect(history.entries[0]).toEqual({ sent: 3, lastEpoch: 2, verified: false, samples: [1, 1, 1, 2, 2], histogram: { 0: 1, 1: 1 } });
    expect(history.entries.map((e) => e.sent)).toEqual([3, 3, 4, 5]);
  });

  it('refuses to end a role that is not live, or to add one twice', () => {
    const history = new RoleHistory<Counters>(fold);
    const role = live(1);
    history.add(role);
    expect(() => history.add(role)).toThrow(InvariantError);
    history.retire(role, live(1));
    expect(() => history.retire(role, live(1))).toThrow(InvariantError);
  });
});
