/**
 * The auditor's maps whose keys come from message fields (permits per host
 * and term, the host of each term, the newest assignment per host) hold at
 * most MAX_TRACKED_KEYS entries: a bus with forged hosts or terms cannot grow
 * them, and the real primary's entries, of the newest term, stay.
 */
import { describe, expect, it } from 'vitest';
import { MAX_TRACKED_KEYS } from '../../../services/auditor/auditor.js';
import { A, AuditDriver, B, expectNone, expectOnly } from './support.js';

/** A committed first epoch of A's, released with A's permit, after `forge` ran. */
function committedAfter(forge: (d: AuditDriver) => void): AuditDriver {
  const d = AuditDriver.protectedPrimary();
  forge(d);
  return d.emit(A, 1, 1, 0, 100).ack(B, 1, 1).commit(A, 1, 1);
}

describe('Auditor, maps keyed by message fields', () => {
  it('keeps at most MAX_TRACKED_KEYS permits, dropping the oldest term first; the primary’s permit of term 1 goes only under more newer ones', () => {
    const forged = 3 * MAX_TRACKED_KEYS;
    const d = committedAfter((x) => {
      for (let i = 0; i < forged; i++) x.permit(`forged-${i}`, 1 + (i % 3));
    });
    expect(d.auditor.stats.trackedKeysDropped).toBeGreaterThan(0);
    // Term 1's entries are the oldest: with this many forged newer ones, A's permit was dropped, and a release under it is judged as without one.
    d.release(A, 1, 1, 0, 100);
    expectOnly(d, 'one-primary', 'output-without-permit', A);
  });

  it('drops nothing below the bound: a real permit among a few forged ones still lets its release through', () => {
    const d = committedAfter((x) => {
      for (let i = 0; i < MAX_TRACKED_KEYS - 2; i++) x.permit(`forged-${i}`, 1);
    });
    d.release(A, 1, 1, 0, 100);
    expectNone(d);
    expect(d.auditor.stats.trackedKeysDropped).toBe(0);
  });

  it('keeps at most MAX_TRACKED_KEYS hosts of terms and hosts’ assignments, and still sees two hosts claim the newest term', () => {
    const d = AuditDriver.protectedPrimary();
    for (let i = 0; i < 2 * MAX_TRACKED_KEYS; i++) d.assign(`forged-${i}`, 'spare', 1, 1);
    for (let term = 10; term < 10 + 2 * MAX_TRACKED_KEYS; term++) d.assign(`h-${term}`, 'promoting', term, 1);
    expect(d.auditor.stats.trackedKeysDropped).toBeGreaterThanOrEqual(3 * MAX_TRACKED_KEYS);
    const newest = 10 + 2 * MAX_TRACKED_KEYS - 1;
    d.assign(A, 'promoting', newest, 99, { incarnation: 2 });
    expectOnly(d, 'one-primary', 'term-on-two-hosts', A);
  });
});
