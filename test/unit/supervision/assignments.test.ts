/**
 * AssignmentTracker: a service's side of supervision. Assignments are
 * ordered by the agent's incarnation, then by seq; a service reports on the
 * one it took.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Assignment } from '../../../lib/codec/messages.js';
import { InvariantError } from '../../../lib/errors.js';
import { AssignmentTracker, STATUS_TIMER, ignoresAssignment } from '../../../lib/supervision/assignments.js';

const VM = 'vm1';
const HOST = 'host-a';
const INTERVAL_US = 10_000;

const assignment = (incarnation: number, seq: number, extra: Partial<Assignment> = {}): Assignment => ({ type: 'assignment', vmId: VM, host: HOST, role: 'backup', term: 1, peerHost: 'host-b', seq, incarnation, joining: false, firstEpoch: 0, joinSeq: 0, ...extra });
const tracker = () => new AssignmentTracker(VM, HOST, 'guest', INTERVAL_US);

describe('AssignmentTracker', () => {
  it('refuses a report interval that is not positive', () => {
    expect(() => new AssignmentTracker(VM, HOST, 'guest', 0)).toThrow(InvariantError);
    expect(() => new AssignmentTracker(VM, HOST, 'guest', -1)).toThrow(InvariantError);
  });

  it('arms its next report one interval from now', () => {
    expect(tracker().nextReport(2_500)).toEqual({ kind: 'setTimer', name: STATUS_TIMER, atUs: 2_500 + INTERVAL_US });
  });

  it('takes its start time plus one as its incarnation, once', () => {
    const t = tracker();
    expect(t.incarnation).toBe(0);
    t.started(0);
    expect(t.incarnation).toBe(1);
    expect(() => t.started(5)).toThrow(InvariantError);
    const u = tracker();
    u.started(7_000);
    expect(u.incarnation).toBe(7_001);
  });

  it('takes the first assignment it is sent as newer', () => {
    const t = tracker();
    expect(t.take(assignment(1, 1))).toBe('newer');
    expect(t.seq).toBe(1);
  });

  it('within one agent incarnation, orders by seq: a higher one is newer, the same a repeat, a lower one stale', () => {
    const t = tracker();
    t.take(assignment(5, 3));
    expect(t.order(assignment(5, 4))).toBe('newer');
    expect(t.order(assignment(5, 3))).toBe('repeat');
    expect(t.order(assignment(5, 2))).toBe('stale');
    // order() only classifies.
    expect(t.seq).toBe(3);
    expect(t.staleAssignments).toBe(0);
  });

  it('a newer agent incarnation supersedes whatever seq the old one reached; an older incarnation is stale whatever its seq', () => {
    const t = tracker();
    t.take(assignment(5, 30));
    expect(t.order(assignment(6, 1))).toBe('newer');
    expect(t.order(assignment(4, 99))).toBe('stale');
    expect(t.take(assignment(6, 1))).toBe('newer');
    expect(t.seq).toBe(1);
    expect(t.take(assignment(5, 31))).toBe('stale');
  });

  it('takes only newer assignments and counts stale ones; repeats are neither', () => {
    const t = tracker();
    expect(t.take(assignment(1, 2))).toBe('newer');
    expect(t.take(assignment(1, 2))).toBe('repeat');
    expect(t.take(assignment(1, 1))).toBe('stale');
    expect(t.take(assignment(1, 1))).toBe('stale');
    expect(t.seq).toBe(2);
    expect(t.staleAssignments).toBe(2);
  });

  it('ignores and counts an assignment no agent sends (another host\'s or VM\'s, a termed role under term 0, or of no agent incarnation), and goes on with its own', () => {
    const t = tracker();
    expect(t.take(assignment(1, 1, { host: 'host-b' }))).toBe('foreign');
    expect(t.take(assignment(1, 1, { vmId: 'vm2' }))).toBe('foreign');
    expect(t.take(assignment(1, 1, { role: 'primary', term: 0 }))).toBe('foreign');
    expect(t.take(assignment(0, 1, { role: 'primary' }))).toBe('foreign');
    expect(t.foreignAssignments).toBe(4);
    expect(ignoresAssignment('foreign')).toBe(true);
    // Nothing of them was taken: the agent's first real assignment is newer.
    expect(t.seq).toBe(0);
    expect(t.take(assignment(1, 1, { role: 'spare', term: 0 }))).toBe('newer');
    expect(t.seq).toBe(1);
  });

  it('reports its identity, its incarnation and the assignment it runs under, with the fields it is given', () => {
    const t = tracker();
    t.started(99);
    expect(t.status({ role: 'spare', term: 1 })).toEqual({ type: 'serviceStatus', vmId: VM, term: 1, host: HOST, service: 'guest', incarnation: 100, assignmentSeq: 0, agentIncarnation: 0, role: 'spare', epoch: 0, synced: false, ready: false, txEndSeqs: [], chunksStaged: 0, reportSeq: 1, followedAgentIncarnation: 0 });
    t.take(assignment(3, 4, { role: 'promoting', term: 2 }));
    expect(t.status({ role: 'promoting', term: 2, epoch: 8, synced: true, ready: true, txEndSeqs: [1234], chunksStaged: 17, followedAgentIncarnation: 5 })).toEqual({ type: 'serviceStatus', vmId: VM, term: 2, host: HOST, service: 'guest', incarnation: 100, assignmentSeq: 4, agentIncarnation: 3, role: 'promoting', epoch: 8, synced: true, ready: true, txEndSeqs: [1234], chunksStaged: 17, reportSeq: 2, followedAgentIncarnation: 5 });
  });

  it('refuses to report before it started', () => {
    expect(() => tracker().status({ role: 'spare', term: 1 })).toThrow(InvariantError);
  });

  it('for any order of delivery, with repeats, runs under the greatest (incarnation, seq) it was sent, classifying each against the greatest before it', () => {
    const sent = fc.array(fc.record({ incarnation: fc.integer({ min: 1, max: 4 }), seq: fc.integer({ min: 1, max: 6 }) }), { maxLength: 40 });
    fc.assert(
      fc.property(sent, (as) => {
        const t = tracker();
        t.started(0);
        let best: { incarnation: number; seq: number } | null = null;
        let stale = 0;
        for (const a of as) {
          const cmp = best === null ? 1 : a.incarnation !== best.incarnation ? a.incarnation - best.incarnation : a.seq - best.seq;
          const expected = cmp > 0 ? 'newer' : cmp === 0 ? 'repeat' : 'stale';
          expect(t.take(assignment(a.incarnation, a.seq))).toBe(expected);
          if (cmp > 0) best = a;
          if (cmp < 0) stale++;
          expect(t.seq).toBe(best?.seq ?? 0);
          expect(t.status({ role: 'backup', term: 1 })).toMatchObject({ assignmentSeq: best?.seq ?? 0, agentIncarnation: best?.incarnation ?? 0 });
        }
        expect(t.staleAssignments).toBe(stale);
      }),
    );
  });
});
