/**
 * The failover service's side of the fencing rule: the take-over record, when
 * the successor may start (never before the replaced record's expiry plus the
 * skew bound, whatever the float rounding), membership writes, same write.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expiresAtMs, LeaseHolder } from '../../../lib/lease/holder.js';
import { sameWrite, successorMayStartAtUs, takeOverRecord, withBackup } from '../../../lib/lease/take-over.js';
import type { LeaseRecord } from '../../../lib/lease/types.js';

const DURATION_US = 30_000;
const SKEW_US = 1_000;

describe('takeOverRecord', () => {
  it('names the successor under the given term, expiring a duration after the failover service’s clock, without a backup', () => {
    expect(takeOverRecord('b', 5, 100_000, DURATION_US)).toEqual({ primaryHost: 'b', term: 5, expiresAtMs: 130, backupHost: '' });
  });

  it('writes the expiry as a holder would (same function, fractional ms kept)', () => {
    expect(takeOverRecord('b', 2, 34_005, DURATION_US).expiresAtMs).toBe(expiresAtMs(34_005, DURATION_US));
  });
});

describe('successorMayStartAtUs', () => {
  it('is the replaced record’s expiry in µs plus the skew bound', () => {
    expect(successorMayStartAtUs({ primaryHost: 'a', term: 1, expiresAtMs: 64 }, SKEW_US)).toBe(65_000);
    expect(successorMayStartAtUs({ primaryHost: 'a', term: 1, expiresAtMs: 64 }, 0)).toBe(64_000);
  });

  it('with no record replaced, only the skew bound', () => {
    expect(successorMayStartAtUs(null, SKEW_US)).toBe(SKEW_US);
  });

  it('a non-exact binary expiry (64.005 ms) never rounds earlier: 64005 µs, not 64004', () => {
    // 64.005 * 1000 is 64004.99999999999 in binary floating point.
    expect(64.005 * 1000).toBeLessThan(64_005);
    expect(successorMayStartAtUs({ primaryHost: 'a', term: 1, expiresAtMs: 64.005 }, 0)).toBe(64_005);
    expect(successorMayStartAtUs({ primaryHost: 'a', term: 1, expiresAtMs: 64.005 }, SKEW_US)).toBe(65_005);
  });

  it('a fraction of a µs rounds up', () => {
    expect(successorMayStartAtUs({ primaryHost: 'a', term: 1, expiresAtMs: 64.0051 }, 0)).toBe(64_006);
  });

  it('for any record a holder writes (integer µs clock), the start is never before its send + duration + skew, and at most 1 µs after', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 42 }), fc.integer({ min: 1, max: 10 ** 8 }), fc.integer({ min: 0, max: 10 ** 6 }), (sentUs, durationUs, skewUs) => {
        const holder = new LeaseHolder({ vmId: 'vm-1', host: 'a', leaseDurationUs: durationUs, releaseMarginUs: 0 });
        const { op } = holder.renewal(1, sentUs);
        if (op.type !== 'cas') throw new Error(op.type);
        const startUs = successorMayStartAtUs(op.record, skewUs);
        expect(Number.isInteger(startUs)).toBe(true);
        expect(startUs).toBeGreaterThanOrEqual(sentUs + durationUs + skewUs);
        expect(startUs).toBeLessThanOrEqual(sentUs + durationUs + skewUs + 1);
      }),
      { numRuns: 2_000 },
    );
  });

  it('the successor never starts before the holder’s permit ends on the same clock, whatever the margin', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 42 }), fc.integer({ min: 1, max: 10 ** 8 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (sentUs, durationUs, marginShare) => {
        const releaseMarginUs = Math.floor(durationUs * marginShare);
        const holder = new LeaseHolder({ vmId: 'vm-1', host: 'a', leaseDurationUs: durationUs, releaseMarginUs });
        const { requestId, op } = holder.renewal(1, sentUs);
        if (op.type !== 'cas') throw new Error(op.type);
        holder.answer({ requestId, outcome: 'ok', record: op.record, revision: 1 });
        expect(successorMayStartAtUs(op.record, 0)).toBeGreaterThanOrEqual(holder.permitUntilUs);
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('withBackup', () => {
  it('changes only the backup, keeping holder, term and expiry', () => {
    const record: LeaseRecord = { primaryHost: 'a', term: 3, expiresAtMs: 64.005, backupHost: 'b' };
    expect(withBackup(record, 'c')).toEqual({ primaryHost: 'a', term: 3, expiresAtMs: 64.005, backupHost: 'c' });
    expect(withBackup(record, '')).toEqual({ ...record, backupHost: '' });
  });

  it('returns a new record and leaves the one given as it was', () => {
    const record: LeaseRecord = { primaryHost: 'a', term: 3, expiresAtMs: 10, backupHost: 'b' };
    const changed = withBackup(record, 'c');
    expect(changed).not.toBe(record);
    expect(record.backupHost).toBe('b');
  });

  it('adds a membership to a record that had none', () => {
    expect(withBackup({ primaryHost: 'a', term: 1, expiresAtMs: 10 }, 'b')).toEqual({ primaryHost: 'a', term: 1, expiresAtMs: 10, backupHost: 'b' });
  });

  it('is still the same write as the record it came from', () => {
    const record = takeOverRecord('b', 2, 1_000, DURATION_US);
    expect(sameWrite(withBackup(record, 'c'), record)).toBe(true);
  });
});

describe('sameWrite', () => {
  const written = takeOverRecord('b', 2, 34_005, DURATION_US);

  it('the same holder, term and expiry are the same write, whatever the membership', () => {
    expect(sameWrite(written, { ...written })).toBe(true);
    expect(sameWrite(written, { ...written, backupHost: 'c' })).toBe(true);
    const { backupHost: _dropped, ...without } = written;
    expect(sameWrite(without, written)).toBe(true);
  });

  it('another holder, term or expiry is another write', () => {
    expect(sameWrite(written, { ...written, primaryHost: 'c' })).toBe(false);
    expect(sameWrite(written, { ...written, term: 3 })).toBe(false);
    expect(sameWrite(written, { ...written, expiresAtMs: written.expiresAtMs + 0.001 })).toBe(false);
    // The old holder's renewal at the same expiry is not the take-over.
    expect(sameWrite(written, { primaryHost: 'a', term: 1, expiresAtMs: written.expiresAtMs })).toBe(false);
  });

  it('is symmetric', () => {
    // Small domains, and the second record a copy of the first with some fields redrawn: equal writes come up often.
    const host = fc.constantFrom('a', 'b', 'c');
    const fields = { primaryHost: host, term: fc.integer({ min: 1, max: 3 }), expiresAtMs: fc.constantFrom(64, 64.001, 130), backupHost: fc.constantFrom('', 'b', 'c') };
    const record: fc.Arbitrary<LeaseRecord> = fc.record(fields, { requiredKeys: ['primaryHost', 'term', 'expiresAtMs'] });
    const pair = fc.tuple(record, fc.record(fields, { requiredKeys: [] })).map(([a, changes]): [LeaseRecord, LeaseRecord] => [a, { ...a, ...changes }]);
    const seen = { same: 0, other: 0 };
    fc.assert(
      fc.property(pair, ([a, b]) => {
        const same = sameWrite(a, b);
        expect(sameWrite(b, a)).toBe(same);
        seen[same ? 'same' : 'other']++;
      }),
      { numRuns: 500 },
    );
    // Both answers were put to the test.
    expect(seen.same).toBeGreaterThan(0);
    expect(seen.other).toBeGreaterThan(0);
  });
});
