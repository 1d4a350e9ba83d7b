import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../../lib/errors.js';
import { StaleTermError } from '../../../lib/lease/errors.js';
import { canRelease, checkTerm, decideAcquire, LeaseHolder, releaseDeadlineMonoMs, type LeaseGrant } from '../../../lib/lease/lease-logic.js';
import { leaseOptionsSchema, type LeaseOptions } from '../../../lib/lease/options.js';
import type { LeaseNow, VersionedLease } from '../../../lib/lease/types.js';

const OPTIONS: LeaseOptions = leaseOptionsSchema.parse({ leaseDurationMs: 3_000, renewIntervalMs: 1_000, clockSkewBoundMs: 250, safetyMs: 100 });
/** Release window of one write: 3000 − 250 − 100. */
const WINDOW_MS = 2_650;

const at = (wallMs: number, monoMs = wallMs): LeaseNow => ({ wallMs, monoMs });
const lease = (primaryHost: string, term: number, expiresAtMs: number, revision: number): VersionedLease => ({ record: { primaryHost, term, expiresAtMs }, revision });

/** A holder that created the lease at `now` and got revision `revision`. */
function holderOf(hostId: string, now: LeaseNow, revision = 1): LeaseHolder {
  const h = new LeaseHolder(hostId, OPTIONS);
  const d = h.acquire(null, now);
  expect(d.kind).toBe('write');
  h.written(revision);
  return h;
}

describe('lease decisions', () => {
  it('creates the first lease at term 1 when the VM has none', () => {
    const d = decideAcquire('a', null, at(10_000), OPTIONS);
    expect(d).toEqual({
      kind: 'write',
      attempt: { kind: 'create', record: { primaryHost: 'a', term: 1, expiresAtMs: 13_000 }, expectedRevision: null, sentAt: at(10_000), releaseNotBeforeWallMs: Number.NEGATIVE_INFINITY },
    });
  });

  it("waits while another host's lease is live on the observer's wall clock", () => {
    expect(decideAcquire('b', lease('a', 4, 13_000, 7), at(12_999), OPTIONS)).toEqual({ kind: 'wait', holder: 'a', term: 4, untilWallMs: 13_000 });
  });

  it('takes over an expired lease at term + 1, compare-and-set on the observed revision', () => {
    const d = decideAcquire('b', lease('a', 4, 13_000, 7), at(13_000, 50), OPTIONS);
    expect(d).toEqual({
      kind: 'write',
      attempt: { kind: 'takeOver', record: { primaryHost: 'b', term: 5, expiresAtMs: 16_000 }, expectedRevision: 7, sentAt: at(13_000, 50), releaseNotBeforeWallMs: 13_000 },
    });
  });

  it('takes over a live lease when the failover service declares its holder dead', () => {
    const d = decideAcquire('b', lease('a', 4, 13_000, 7), at(11_000), OPTIONS, { holderDead: true });
    expect(d.kind === 'write' && d.attempt).toMatchObject({ kind: 'takeOver', record: { primaryHost: 'b', term: 5 }, expectedRevision: 7 });
  });

  it('a take-over on a dead verdict releases only once the old lease has expired on the new holder’s wall clock', () => {
    const b = new LeaseHolder('b', OPTIONS);
    b.acquire(lease('a', 4, 13_000, 7), at(11_000), { holderDead: true });
    b.written(8);
    expect(b.term).toBe(5);
    expect(b.canRelease(at(12_999))).toBe(false);
    expect(b.canRelease(at(13_000))).toBe(true);
  });

  it('an expired take-over may release at once', () => {
    const b = new LeaseHolder('b', OPTIONS);
    b.acquire(lease('a', 4, 13_000, 7), at(13_500));
    b.written(8);
    expect(b.canRelease(at(13_500))).toBe(true);
  });

  it('recreates a vanished record above every term this host has seen', () => {
    const h = new LeaseHolder('a', OPTIONS);
    h.observe(lease('b', 9, 0, 3));
    const d = h.acquire(null, at(0));
    expect(d.kind === 'write' && d.attempt.record.term).toBe(10);
  });
});

describe('renewal', () => {
  it('renews with the same host and term against the revision it holds', () => {
    const h = holderOf('a', at(0), 3);
    const d = h.renew(at(1_000));
    expect(d).toEqual({
      kind: 'write',
      attempt: { kind: 'renew', record: { primaryHost: 'a', term: 1, expiresAtMs: 4_000 }, expectedRevision: 3, sentAt: at(1_000), releaseNotBeforeWallMs: Number.NEGATIVE_INFINITY },
    });
  });

  it('refuses to renew without a lease with a StaleTermError', () => {
    expect(() => new LeaseHolder('a', OPTIONS).renew(at(0))).toThrow(StaleTermError);
  });

  it('refuses a second write while one is outstanding', () => {
    const h = holderOf('a', at(0));
    h.renew(at(1_000));
    expect(() => h.renew(at(1_001))).toThrow(InvariantError);
  });

  it('is due renewIntervalMs after the send of the write it holds', () => {
    const h = holderOf('a', at(0, 500));
    expect(h.renewDue(at(999, 1_499))).toBe(false);
    expect(h.renewDue(at(1_000, 1_500))).toBe(true);
  });

  it('keeps the same term across renewals and never changes it by itself', () => {
    const h = holderOf('a', at(0), 1);
    for (let i = 1; i <= 5; i++) {
      h.renew(at(i * 1_000));
      h.written(i + 1);
    }
    expect(h.term).toBe(1);
    expect(h.grant?.revision).toBe(6);
  });
});

describe('release rule', () => {
  it('releases until expiresAtMs − clockSkewBoundMs − safetyMs, on its monotonic clock from the send', () => {
    const h = holderOf('a', at(10_000, 70));
    expect(h.releaseDeadlineMonoMs()).toBe(70 + WINDOW_MS);
    expect(h.canRelease(at(10_000, 70 + WINDOW_MS - 1))).toBe(true);
    expect(h.canRelease(at(10_000, 70 + WINDOW_MS))).toBe(false);
  });

  it('counts from the send of a renewal, not from its confirmation', () => {
    const h = holderOf('a', at(0));
    h.renew(at(1_000));
    // The answer arrives 900 ms later: the window still ends 2650 ms after the send.
    h.written(2);
    expect(h.releaseDeadlineMonoMs()).toBe(1_000 + WINDOW_MS);
  });

  it('a step of the wall clock does not move the holder’s deadline', () => {
    const h = holderOf('a', at(0, 0));
    expect(h.canRelease(at(1_000_000, 100))).toBe(true);
    expect(h.canRelease(at(-1_000_000, WINDOW_MS))).toBe(false);
  });

  it('keeps releasing under the old grant while a renewal is in flight', () => {
    const h = holderOf('a', at(0));
    h.renew(at(1_000));
    expect(h.canRelease(at(2_000))).toBe(true);
    expect(h.canRelease(at(WINDOW_MS))).toBe(false);
  });

  it('no grant, no release', () => {
    expect(canRelease(null, at(0), OPTIONS)).toBe(false);
  });

  it('the deadline follows the written duration, not the options', () => {
    const grant: LeaseGrant = { record: { primaryHost: 'a', term: 1, expiresAtMs: 5_000 }, revision: 1, sentAt: at(4_000, 0), releaseNotBeforeWallMs: 0 };
    expect(releaseDeadlineMonoMs(grant, OPTIONS)).toBe(1_000 - 250 - 100);
  });
});

describe('outcomes and re-reads', () => {
  it('after a lost compare-and-set it re-reads before renewing', () => {
    const h = holderOf('a', at(0), 1);
    h.renew(at(1_000));
    h.conflict();
    expect(h.renew(at(1_001))).toEqual({ kind: 'read' });
  });

  it('adopts a write whose response was lost when a read shows it applied', () => {
    const h = holderOf('a', at(0, 0), 1);
    h.renew(at(1_000, 1_000));
    h.unknown();
    h.observe(lease('a', 1, 4_000, 2));
    expect(h.grant).toMatchObject({ revision: 2, sentAt: at(1_000, 1_000) });
    expect(h.renew(at(2_000)).kind).toBe('write');
  });

  it('keeps its older grant when a read shows its lost write was not applied', () => {
    const h = holderOf('a', at(0, 0), 1);
    h.renew(at(1_000, 1_000));
    h.unknown();
    h.observe(lease('a', 1, 3_000, 1));
    expect(h.grant).toMatchObject({ revision: 1, sentAt: at(0, 0) });
  });

  it('drops its lease when a read shows a newer term: it has been fenced', () => {
    const h = holderOf('a', at(0), 1);
    h.renew(at(1_000));
    h.conflict();
    h.observe(lease('b', 2, 5_000, 2));
    expect(h.grant).toBeNull();
    expect(h.canRelease(at(1_001))).toBe(false);
    expect(h.highestTermSeen).toBe(2);
    expect(() => h.renew(at(1_002))).toThrow(StaleTermError);
  });

  it('a lost take-over that applied is adopted on the next acquire', () => {
    const b = new LeaseHolder('b', OPTIONS);
    const d = b.acquire(lease('a', 1, 3_000, 1), at(3_000));
    expect(d.kind).toBe('write');
    b.unknown();
    const again = b.acquire(lease('b', 2, 6_000, 2), at(3_100));
    expect(again.kind).toBe('held');
    expect(b.term).toBe(2);
  });

  it('a record of this host that it does not hold is taken over, not renewed', () => {
    const restarted = new LeaseHolder('a', OPTIONS);
    const d = restarted.acquire(lease('a', 3, 9_000, 4), at(9_000));
    expect(d.kind === 'write' && d.attempt).toMatchObject({ kind: 'takeOver', record: { term: 4 } });
  });
});

describe('fencing and options', () => {
  it('checkTerm rejects a message from an older term and accepts current or newer ones', () => {
    expect(() => checkTerm(3, 4)).toThrow(StaleTermError);
    expect(() => checkTerm(4, 4)).not.toThrow();
    expect(() => checkTerm(5, 4)).not.toThrow();
  });

  it('StaleTermError carries code STALE_TERM and is not retryable', () => {
    const err = new StaleTermError('x');
    expect([err.code, err.retryable]).toEqual(['STALE_TERM', false]);
  });

  it('rejects options whose renew interval does not fit in the release window', () => {
    const result = leaseOptionsSchema.safeParse({ leaseDurationMs: 1_000, renewIntervalMs: 700, clockSkewBoundMs: 250, safetyMs: 100 });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['renewIntervalMs']);
  });
});
