/**
 * A holder that was deposed never produces a compare-and-set that can
 * replace the record that deposed it: it does not adopt that record's
 * revision, and a record naming it under another term deposes it too.
 */
import { describe, expect, it } from 'vitest';
import { LeaseHolder } from '../../../lib/lease/holder.js';
import { MemoryLeaseTable } from '../../../lib/lease/memory-store.js';
import { takeOverRecord } from '../../../lib/lease/take-over.js';
import type { LeaseOp, LeaseResult } from '../../../lib/runtime/types.js';

const VM = 'vm-1';
const DURATION_US = 30_000;

/** The store as sim/lease-store.ts answers: every answer carries the record as it now stands. */
function perform(table: MemoryLeaseTable, requestId: number, op: LeaseOp): LeaseResult {
  if (op.type !== 'cas') throw new Error(op.type);
  const reply = op.expectedRevision === 0 ? table.handle({ kind: 'create', id: requestId, vmId: VM, record: op.record }) : table.handle({ kind: 'update', id: requestId, vmId: VM, record: op.record, expectedRevision: op.expectedRevision });
  const current = table.peek(VM);
  return { requestId, outcome: reply.kind === 'conflict' ? 'conflict' : 'ok', record: current?.record ?? null, revision: current?.revision ?? 0 };
}

describe('LeaseHolder after a lost answer', () => {
  it('a renewal after lost never replaces the newer holder’s record', () => {
    const table = new MemoryLeaseTable();
    const a = new LeaseHolder({ vmId: VM, host: 'a', leaseDurationUs: DURATION_US, releaseMarginUs: 0 }, 'b');
    let r = a.renewal(1, 0);
    expect(a.answer(perform(table, r.requestId, r.op)).kind).toBe('granted');
    // The failover service takes the lease over for b: term 2.
    const before = table.peek(VM)!;
    table.handle({ kind: 'update', id: 100, vmId: VM, record: takeOverRecord('b', 2, 10_000, DURATION_US), expectedRevision: before.revision });
    r = a.renewal(1, 11_000);
    expect(a.answer(perform(table, r.requestId, r.op))).toEqual({ kind: 'lost', holder: 'b', term: 2, by: 'anotherHost' });
    // One more renewal (a caller that missed the 'lost', or a stale promotion under term 1).
    r = a.renewal(1, 12_000);
    perform(table, r.requestId, r.op);
    // Renewed on the revision it last saw, it would name a at term 1 again (revision 4).
    expect(table.peek(VM)?.record).toMatchObject({ primaryHost: 'b', term: 2 });
  });

  it('a claim under a stale promotion term, after lost to a newer term, never overwrites the newer term', () => {
    const table = new MemoryLeaseTable();
    table.handle({ kind: 'create', id: 1, vmId: VM, record: { primaryHost: 'a', term: 1, expiresAtMs: 30, backupHost: 'c' } });
    table.handle({ kind: 'update', id: 2, vmId: VM, record: takeOverRecord('c', 2, 1_000, DURATION_US), expectedRevision: 1 });
    table.handle({ kind: 'update', id: 3, vmId: VM, record: takeOverRecord('b', 3, 2_000, DURATION_US), expectedRevision: 2 });
    // c was promoted under term 2 (the failover service has since moved on to term 3 for b).
    const c = new LeaseHolder({ vmId: VM, host: 'c', leaseDurationUs: DURATION_US, releaseMarginUs: 0 });
    let r = c.renewal(2, 3_000);
    expect(c.answer(perform(table, r.requestId, r.op))).toEqual({ kind: 'lost', holder: 'b', term: 3, by: 'anotherHost' });
    r = c.renewal(2, 3_100);
    perform(table, r.requestId, r.op);
    // Renewed on the revision it last saw, c at term 2 would replace b at term 3.
    expect(table.peek(VM)?.record).toMatchObject({ primaryHost: 'b', term: 3 });
  });
});

describe('LeaseHolder and its own record at an older term', () => {
  it('a conflict showing this host under an older term than the renewal is lost to that term, not “still this host’s at its term”', () => {
    // 'rewritten' (the record is still this host's at its term) would have the next renewal raise the term by itself,
    // with no take-over: terms would then grow without one.
    const a = new LeaseHolder({ vmId: VM, host: 'a', leaseDurationUs: DURATION_US, releaseMarginUs: 0 });
    const r = a.renewal(3, 0);
    expect(a.answer({ requestId: r.requestId, outcome: 'conflict', record: { primaryHost: 'a', term: 2, expiresAtMs: 30 }, revision: 5 })).toEqual({ kind: 'lost', holder: 'a', term: 2, by: 'anotherTerm' });
    // Nor does it renew on the conflicting record's revision, which would write term 3 over it.
    expect(a.renewal(3, 100).op).not.toMatchObject({ expectedRevision: 5 });
  });
});
