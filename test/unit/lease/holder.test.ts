/**
 * LeaseHolder: the renewals one host sends (compare-and-set on the revision
 * it last saw) and what each answer means: the permit counted from the send,
 * membership carried over, deposition, answers to older requests ignored.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../../lib/errors.js';
import { expiresAtMs, LeaseHolder, type LeaseHolderOptions } from '../../../lib/lease/holder.js';
import type { LeaseRecord } from '../../../lib/lease/types.js';
import type { LeaseOp, LeaseResult } from '../../../lib/runtime/types.js';

const VM = 'vm-1';
const DURATION_US = 30_000;
const MARGIN_US = 6_000;
const OPTIONS: LeaseHolderOptions = { vmId: VM, host: 'a', leaseDurationUs: DURATION_US, releaseMarginUs: MARGIN_US };

const holder = (backupHost?: string, options: Partial<LeaseHolderOptions> = {}): LeaseHolder => new LeaseHolder({ ...OPTIONS, ...options }, backupHost);
const ok = (requestId: number, revision: number, record: LeaseRecord | null = null): LeaseResult => ({ requestId, outcome: 'ok', record, revision });
const conflict = (requestId: number, revision: number, record: LeaseRecord | null): LeaseResult => ({ requestId, outcome: 'conflict', record, revision });
const unavailable = (requestId: number): LeaseResult => ({ requestId, outcome: 'unavailable', record: null, revision: 0 });
const rec = (primaryHost: string, term: number, expires: number, backupHost?: string): LeaseRecord => ({ primaryHost, term, expiresAtMs: expires, ...(backupHost === undefined ? {} : { backupHost }) });

function cas(op: LeaseOp): Extract<LeaseOp, { type: 'cas' }> {
  if (op.type !== 'cas') throw new Error(`expected a cas, got ${op.type}`);
  return op;
}

/** A holder whose renewal at `sentUs` was written at `revision`. */
function granted(sentUs: number, revision: number, term = 1, h = holder('b')): LeaseHolder {
  const { requestId } = h.renewal(term, sentUs);
  expect(h.answer(ok(requestId, revision))).toEqual({ kind: 'granted', permitUntilUs: sentUs + DURATION_US - MARGIN_US });
  return h;
}

describe('options', () => {
  it('accepts a margin in [0, duration) and refuses one that leaves nothing of the lease', () => {
    expect(() => holder(undefined, { releaseMarginUs: 0 })).not.toThrow();
    expect(() => holder(undefined, { releaseMarginUs: DURATION_US - 1 })).not.toThrow();
    expect(() => holder(undefined, { releaseMarginUs: DURATION_US })).toThrow(InvariantError);
    expect(() => holder(undefined, { releaseMarginUs: -1 })).toThrow(InvariantError);
  });

  it('starts with no permit and the membership it was given', () => {
    expect(holder().permitUntilUs).toBe(0);
    expect(holder().backupHost).toBe('');
    expect(holder('b').backupHost).toBe('b');
  });
});

describe('renewal', () => {
  it('the first renewal creates the record (revision 0): this host, the term, expiry = send + duration in ms, the membership it was given', () => {
    const h = holder('b');
    expect(h.renewal(1, 10_000)).toEqual({
      requestId: 1,
      op: { type: 'cas', vmId: VM, expectedRevision: 0, record: { primaryHost: 'a', term: 1, expiresAtMs: 40, backupHost: 'b' } },
    });
  });

  it('writes the committed epoch it is given, never less than one it wrote or the store showed', () => {
    const h = holder('b');
    expect(cas(h.renewal(1, 0, 7).op).record.committedEpoch).toBe(7);
    expect(cas(h.renewal(1, 1_000, 3).op).record.committedEpoch).toBe(7);
    const { requestId } = h.renewal(1, 2_000, 8);
    h.answer(conflict(requestId, 5, { ...rec('a', 1, 50, 'c'), committedEpoch: 12 }));
    expect(cas(h.renewal(1, 3_000, 9).op).record.committedEpoch).toBe(12);
  });

  it('a record written at a µs that is not a whole ms keeps the fraction', () => {
    const op = cas(holder().renewal(1, 34_005).op);
    expect(op.record.expiresAtMs).toBe(expiresAtMs(34_005, DURATION_US));
    expect(op.record.expiresAtMs).toBeCloseTo(64.005, 9);
  });

  it('renews against the revision of the last answer, at the term it is asked for', () => {
    const h = granted(0, 7);
    const op = cas(h.renewal(1, 5_000).op);
    expect(op).toEqual({ type: 'cas', vmId: VM, expectedRevision: 7, record: { primaryHost: 'a', term: 1, expiresAtMs: 35, backupHost: 'b' } });
    // A promoted host renews under the term it was given.
    expect(cas(h.renewal(3, 6_000).op).record.term).toBe(3);
  });

  it('each renewal is a new request; the revision stays until an answer to the newest one moves it', () => {
    const h = granted(0, 4);
    const first = h.renewal(1, 1_000);
    const second = h.renewal(1, 2_000);
    expect(second.requestId).toBe(first.requestId + 1);
    expect(cas(first.op).expectedRevision).toBe(4);
    expect(cas(second.op).expectedRevision).toBe(4);
  });

  it('refuses a term below 1', () => {
    expect(() => holder().renewal(0, 0)).toThrow(InvariantError);
  });
});

describe('answers', () => {
  it('ok: granted, the permit ends duration − margin after the send', () => {
    const h = holder();
    const { requestId } = h.renewal(1, 100_000);
    expect(h.answer(ok(requestId, 1))).toEqual({ kind: 'granted', permitUntilUs: 100_000 + DURATION_US - MARGIN_US });
    expect(h.permitUntilUs).toBe(124_000);
  });

  it('the permit counts from the send: a slow answer shortens the window and never lengthens it', () => {
    // Two holders send at the same instant; one hears back at once, the other 20 ms later: the same deadline.
    const fast = holder();
    const slow = holder();
    const f = fast.renewal(1, 50_000);
    const s = slow.renewal(1, 50_000);
    const answeredAtUs = { fast: 50_100, slow: 70_000 };
    const fastOutcome = fast.answer(ok(f.requestId, 1));
    const slowOutcome = slow.answer(ok(s.requestId, 1));
    expect(slowOutcome).toEqual(fastOutcome);
    expect(slow.permitUntilUs - answeredAtUs.slow).toBeLessThan(fast.permitUntilUs - answeredAtUs.fast);
    // An answer later than the whole window grants a permit already over.
    const late = holder();
    const l = late.renewal(1, 0);
    const lateAnswerUs = DURATION_US;
    late.answer(ok(l.requestId, 1));
    expect(late.permitUntilUs).toBeLessThan(lateAnswerUs);
  });

  it('the permit of a renewal sent while another was out is counted from the newer send only', () => {
    const h = granted(0, 1);
    h.renewal(1, 10_000);
    const newer = h.renewal(1, 12_000);
    expect(h.answer(ok(newer.requestId, 2))).toEqual({ kind: 'granted', permitUntilUs: 12_000 + DURATION_US - MARGIN_US });
  });

  it('permitUntilUs never moves back, whatever the answers and send times', () => {
    const h = granted(100_000, 1);
    const before = h.permitUntilUs;
    // A renewal stamped earlier (a clock that stepped back) is granted its own, shorter, permit; the newest stays.
    const back = h.renewal(1, 90_000);
    expect(h.answer(ok(back.requestId, 2))).toEqual({ kind: 'granted', permitUntilUs: 90_000 + DURATION_US - MARGIN_US });
    expect(h.permitUntilUs).toBe(before);
    for (const answer of [unavailable, (id: number) => conflict(id, 9, rec('z', 2, 999))]) {
      const { requestId } = h.renewal(1, 200_000);
      h.answer(answer(requestId));
      expect(h.permitUntilUs).toBe(before);
    }
  });

  it('unavailable: nothing learnt, the permit runs out on its own and the next renewal uses the same revision', () => {
    const h = granted(0, 3);
    const { requestId } = h.renewal(1, 10_000);
    expect(h.answer(unavailable(requestId))).toEqual({ kind: 'unavailable' });
    expect(h.permitUntilUs).toBe(DURATION_US - MARGIN_US);
    expect(cas(h.renewal(1, 11_000).op).expectedRevision).toBe(3);
  });

  it('rewritten: a conflict whose record is still this host’s at its term; the next renewal goes on the new revision', () => {
    const h = granted(0, 3);
    const { requestId } = h.renewal(1, 10_000);
    // The failover service changed the membership (revision 4): same holder, term and expiry.
    expect(h.answer(conflict(requestId, 4, rec('a', 1, 30, 'c')))).toEqual({ kind: 'rewritten' });
    expect(h.permitUntilUs).toBe(DURATION_US - MARGIN_US); // not a grant
    expect(cas(h.renewal(1, 11_000).op)).toMatchObject({ expectedRevision: 4, record: { primaryHost: 'a', term: 1, backupHost: 'c' } });
  });

  it('a promoted host’s first renewal conflicts with the record the failover service wrote for it: rewritten, then granted', () => {
    const h = holder();
    const first = h.renewal(2, 40_000);
    expect(h.answer(conflict(first.requestId, 8, rec('a', 2, 65, '')))).toEqual({ kind: 'rewritten' });
    const second = h.renewal(2, 40_100);
    expect(cas(second.op).expectedRevision).toBe(8);
    expect(h.answer(ok(second.requestId, 9))).toEqual({ kind: 'granted', permitUntilUs: 40_100 + DURATION_US - MARGIN_US });
  });

  it('lost: another host holds the lease', () => {
    const h = granted(0, 3);
    const { requestId } = h.renewal(1, 10_000);
    expect(h.answer(conflict(requestId, 5, rec('b', 2, 70, '')))).toEqual({ kind: 'lost', holder: 'b', term: 2, by: 'anotherHost' });
    expect(h.permitUntilUs).toBe(DURATION_US - MARGIN_US);
  });

  it('lost: this host’s name under a newer term than it renews (a take-over for it that it has not been told of)', () => {
    const h = granted(0, 3);
    const { requestId } = h.renewal(1, 10_000);
    expect(h.answer(conflict(requestId, 5, rec('a', 2, 70, '')))).toEqual({ kind: 'lost', holder: 'a', term: 2, by: 'anotherTerm' });
  });

  it('writes its process’s incarnation into every renewal, and none when it has none', () => {
    expect(cas(holder().renewal(1, 0, 0, 77).op).record.holderIncarnation).toBe(77);
    expect(cas(holder().renewal(1, 0).op).record).not.toHaveProperty('holderIncarnation');
  });

  it('lost: its own host and term written by an earlier process of this host (it restarted; vopr seed 20502)', () => {
    const h = holder('b');
    const first = h.renewal(1, 5_000, 0, 2_000);
    // The create finds the record the host's process of before the restart renewed.
    expect(h.answer(conflict(first.requestId, 9, { ...rec('a', 1, 40, 'b'), committedEpoch: 240, holderIncarnation: 400 }))).toEqual({ kind: 'lost', holder: 'a', term: 1, by: 'earlierProcess' });
    expect(h.permitUntilUs).toBe(0);
    // Its revision was not adopted: no later renewal can replace that record.
    expect(cas(h.renewal(1, 6_000, 0, 2_000).op).expectedRevision).toBe(0);
  });

  it('rewritten: its own process’s record (a create applied whose answer was lost), and a take-over’s record, which names no process', () => {
    const h = holder('b');
    const first = h.renewal(1, 5_000, 0, 2_000);
    expect(h.answer(unavailable(first.requestId))).toEqual({ kind: 'unavailable' });
    const second = h.renewal(1, 6_000, 0, 2_000);
    expect(h.answer(conflict(second.requestId, 1, { ...rec('a', 1, 35, 'b'), holderIncarnation: 2_000 }))).toEqual({ kind: 'rewritten' });
    const promoted = holder();
    const claim = promoted.renewal(2, 40_000, 0, 3_000);
    expect(promoted.answer(conflict(claim.requestId, 8, rec('a', 2, 65, '')))).toEqual({ kind: 'rewritten' });
  });

  it('refuses to renew for two processes: one holder belongs to one agent process', () => {
    const h = holder();
    h.renewal(1, 0, 0, 5);
    expect(() => h.renewal(1, 1, 0, 6)).toThrow(InvariantError);
  });

  it('lost, even when the other host’s record is at the same term', () => {
    const h = granted(0, 3);
    const { requestId } = h.renewal(1, 10_000);
    expect(h.answer(conflict(requestId, 5, rec('b', 1, 70)))).toEqual({ kind: 'lost', holder: 'b', term: 1, by: 'anotherHost' });
  });

  it('ignored: an answer to an older request than the newest, whatever it says', () => {
    const h = granted(0, 3);
    const older = h.renewal(1, 10_000);
    const newer = h.renewal(1, 11_000);
    const permit = h.permitUntilUs;
    for (const answer of [ok(older.requestId, 4), conflict(older.requestId, 4, rec('b', 2, 99, 'x')), unavailable(older.requestId)]) {
      expect(h.answer(answer)).toEqual({ kind: 'ignored' });
    }
    // Nothing of them was taken: no permit, no revision, no membership.
    expect(h.permitUntilUs).toBe(permit);
    expect(h.backupHost).toBe('b');
    expect(cas(h.renewal(1, 12_000).op).expectedRevision).toBe(3);
    expect(newer.requestId).toBeLessThan(h.renewal(1, 12_001).requestId);
  });

  it('ignored: an answer to a request this holder never sent', () => {
    const h = holder();
    expect(h.answer(ok(1, 1))).toEqual({ kind: 'ignored' });
    expect(h.permitUntilUs).toBe(0);
  });

  it('ignored: a conflict without a record (it vanished); the next renewal creates it again', () => {
    const h = granted(0, 3);
    const { requestId } = h.renewal(1, 10_000);
    expect(h.answer(conflict(requestId, 0, null))).toEqual({ kind: 'ignored' });
    expect(cas(h.renewal(1, 11_000).op)).toMatchObject({ expectedRevision: 0, record: { term: 1, backupHost: 'b' } });
  });
});

describe('membership', () => {
  it('renewals carry over the backupHost of a conflict’s record when it is still the holder’s; a record that deposed it changes nothing', () => {
    const h = granted(0, 1, 1, holder('b'));
    let r = h.renewal(1, 1_000);
    h.answer(conflict(r.requestId, 2, rec('a', 1, 30, 'c')));
    expect(h.backupHost).toBe('c');
    r = h.renewal(1, 2_000);
    expect(cas(r.op).record.backupHost).toBe('c');
    // The membership dropped: '' is carried over too.
    h.answer(conflict(r.requestId, 3, rec('a', 1, 30, '')));
    expect(cas(h.renewal(1, 3_000).op).record.backupHost).toBe('');
    const lost = granted(0, 1, 1, holder('b'));
    r = lost.renewal(1, 1_000);
    expect(lost.answer(conflict(r.requestId, 2, rec('z', 2, 60, 'y')))).toMatchObject({ kind: 'lost' });
    expect(lost.backupHost).toBe('b');
    // Nor its revision: a renewal after it cannot replace the record that deposed the holder.
    expect(cas(lost.renewal(1, 2_000).op).expectedRevision).toBe(1);
  });

  it('a record without backupHost (a writer that keeps no membership) leaves the holder’s as it was', () => {
    const h = granted(0, 1, 1, holder('b'));
    const r = h.renewal(1, 1_000);
    expect(h.answer(conflict(r.requestId, 2, rec('a', 1, 30)))).toEqual({ kind: 'rewritten' });
    expect(cas(h.renewal(1, 2_000).op).record.backupHost).toBe('b');
  });

  it('an ok answer keeps what this host wrote, whatever record the answer shows', () => {
    const h = holder('b');
    const r = h.renewal(1, 0);
    h.answer(ok(r.requestId, 1, rec('a', 1, 30, 'other')));
    expect(h.backupHost).toBe('b');
  });
});

describe('invariants (property)', () => {
  type Step = { readonly kind: 'renew'; readonly advanceUs: number } | { readonly kind: 'answer'; readonly which: number; readonly outcome: 'ok' | 'conflictOwn' | 'conflictOther' | 'unavailable' };
  const stepArb: fc.Arbitrary<Step> = fc.oneof(
    fc.record({ kind: fc.constant('renew' as const), advanceUs: fc.integer({ min: 0, max: 40_000 }) }),
    fc.record({ kind: fc.constant('answer' as const), which: fc.nat(), outcome: fc.constantFrom('ok' as const, 'conflictOwn' as const, 'conflictOther' as const, 'unavailable' as const) }),
  );

  it('a grant is always send + duration − margin of the request answered; permitUntilUs is the max of grants and never moves back; only the newest request counts', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 60 }), (steps) => {
        const h = holder('b');
        let nowUs = 0;
        let revision = 0;
        const sent: { requestId: number; sentUs: number; expectedRevision: number }[] = [];
        let newest = 0;
        let maxGrant = 0;
        for (const step of steps) {
          if (step.kind === 'renew') {
            nowUs += step.advanceUs;
            const { requestId, op } = h.renewal(1, nowUs);
            sent.push({ requestId, sentUs: nowUs, expectedRevision: cas(op).expectedRevision });
            newest = requestId;
            continue;
          }
          if (sent.length === 0) continue;
          const s = sent[step.which % sent.length]!;
          revision += 1;
          const before = h.permitUntilUs;
          const result =
            step.outcome === 'ok' ? ok(s.requestId, revision) : step.outcome === 'unavailable' ? unavailable(s.requestId) : conflict(s.requestId, revision, step.outcome === 'conflictOwn' ? rec('a', 1, 1) : rec('z', 2, 1));
          const outcome = h.answer(result);
          expect(h.permitUntilUs).toBeGreaterThanOrEqual(before);
          if (s.requestId !== newest) {
            expect(outcome).toEqual({ kind: 'ignored' });
            expect(h.permitUntilUs).toBe(before);
            continue;
          }
          const expected = { ok: 'granted', conflictOwn: 'rewritten', conflictOther: 'lost', unavailable: 'unavailable' }[step.outcome];
          expect(outcome.kind).toBe(expected);
          if (outcome.kind === 'granted') {
            expect(outcome.permitUntilUs).toBe(s.sentUs + DURATION_US - MARGIN_US);
            maxGrant = Math.max(maxGrant, outcome.permitUntilUs);
          }
          expect(h.permitUntilUs).toBe(maxGrant);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe('expiresAtMs', () => {
  it('is the writer’s clock at send plus the duration, in ms', () => {
    expect(expiresAtMs(0, 30_000)).toBe(30);
    expect(expiresAtMs(34_005, 30_000)).toBe(64_005 / 1000);
    expect(expiresAtMs(1_500, 0)).toBe(1.5);
  });
});
