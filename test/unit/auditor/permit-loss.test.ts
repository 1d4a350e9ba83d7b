/**
 * A permit covers [fromUs, untilUs) of its host's clock: from the send of
 * the renewal it comes from (here every permit lasts 1,000 µs).
 *
 * Over NATS a permit can reach the netbuffer and not the auditor: core NATS
 * delivers at most once, and a server that dies mid-delivery (the cluster
 * test kills one) reaches some subscribers and not others. The netbuffer
 * then releases under a permit the auditor never saw. Permits are numbered
 * per host and term; with `permitsMayBeLost`, a release past every permit
 * the auditor knows of waits for the host's next permit: a number skipped
 * excuses it if the lost permit could cover it, none skipped makes it a
 * violation, and `settle()` judges what no permit came for.
 */
import { describe, expect, it } from 'vitest';
import { MAX_PERMIT_SUSPECTS } from '../../../services/auditor/auditor.js';
import { A, AuditDriver, B, expectNone, expectOnly } from './support.js';

const LOSSY = { permitsMayBeLost: true };

/** A's permit 1 ends at 1,000 µs of its clock; epochs 1 and 2 are committed; epoch 2's bytes [100, 200) leave at 1,500 µs of A's clock. */
function releasedPastPermit(options = LOSSY): { d: AuditDriver; releaseAtUs: number } {
  const d = AuditDriver.protectedPrimary(1_000, undefined, options).emit(A, 1, 1, 0, 100).ack(B, 1, 1).commit(A, 1, 1).emit(A, 1, 2, 100, 100).ack(B, 1, 2).commit(A, 1, 2).release(A, 1, 2, 100, 100, 1_500);
  return { d, releaseAtUs: d.atUs };
}

/** The release at `atUs` was stamped 1,500 µs of A's clock (releasedPastPermit). */
const withoutPermitAt = (atUs: number) => [{ invariant: 'one-primary', rule: 'output-without-permit', atUs, host: A, localUs: 1_500, detail: expect.any(String) }];

describe('Auditor: permits lost on the way to it', () => {
  it('waits for the next permit, and excuses a release that a permit it missed could cover', () => {
    const { d } = releasedPastPermit();
    expectNone(d);
    expect(d.auditor.stats.permitVerdictsDeferred).toBe(1);
    // Permit 3 comes, from 1,600 µs: permit 2 was lost on the way here, and may have covered 1,500 µs.
    d.permit(A, 1, 2_600, 3, 1_600);
    expectNone(d);
    expect(d.auditor.stats).toMatchObject({ permitsMissed: 1, permitsUnjudged: 1 });
    d.auditor.settle();
    expectNone(d);
  });

  it('a violation when the next permit shows none was lost, dated at the release', () => {
    const { d, releaseAtUs } = releasedPastPermit();
    d.permit(A, 1, 2_600, 2, 1_600);
    expect(d.auditor.violations).toEqual(withoutPermitAt(releaseAtUs));
    expect(d.auditor.stats.permitsMissed).toBe(0);
  });

  it('a violation when even the permits it missed ended before the release', () => {
    const { d, releaseAtUs } = releasedPastPermit();
    d.permit(A, 1, 1_400, 5, 400);
    expect(d.auditor.violations).toEqual(withoutPermitAt(releaseAtUs));
    expect(d.auditor.stats.permitsMissed).toBe(3);
  });

  it('a late copy of a permit it had says nothing: the release still waits', () => {
    const { d } = releasedPastPermit();
    d.permit(A, 1, 1_200, 1, 200);
    expectNone(d);
    d.auditor.settle();
    expect(d.rules).toEqual(['output-without-permit']);
  });

  it('settle() judges what no permit came for (the host was deposed, or the run ended)', () => {
    const { d, releaseAtUs } = releasedPastPermit();
    d.auditor.settle();
    expect(d.auditor.violations).toEqual(withoutPermitAt(releaseAtUs));
    d.auditor.settle();
    expect(d.auditor.stats.violations).toBe(1);
  });

  it('settle(before) judges only the releases observed before then: a live auditor does not wait for ever', () => {
    const { d, releaseAtUs } = releasedPastPermit();
    d.release(A, 1, 2, 100, 100, 1_600);
    d.auditor.settle(releaseAtUs + 1);
    expect(d.auditor.violations).toEqual(withoutPermitAt(releaseAtUs));
    d.permit(A, 1, 2_600, 3, 1_650);
    expect(d.auditor.stats).toMatchObject({ violations: 1, permitsUnjudged: 1 });
  });

  it('a first permit of a host and term it never saw: permits from 1 on were lost', () => {
    const d = AuditDriver.protectedPrimary(null, undefined, LOSSY).emit(A, 1, 1, 0, 100).ack(B, 1, 1).commit(A, 1, 1).release(A, 1, 1, 0, 100, 500);
    expectNone(d);
    d.permit(A, 1, 1_600, 2, 600);
    expectNone(d);
    expect(d.auditor.stats).toMatchObject({ permitsMissed: 1, permitsUnjudged: 1 });
  });

  it('judges the other rules at once: an early release is a violation while its permit verdict waits', () => {
    const d = AuditDriver.protectedPrimary(1_000, undefined, LOSSY).emit(A, 1, 1, 0, 100).ack(B, 1, 1).commit(A, 1, 1).emit(A, 1, 2, 100, 100).release(A, 1, 2, 100, 100, 1_500);
    expectOnly(d, 'output-commit', 'segment-before-commit', A);
    expect(d.auditor.stats.permitVerdictsDeferred).toBe(1);
  });

  it(`holds at most ${MAX_PERMIT_SUSPECTS} releases; past them it judges at once`, () => {
    const { d } = releasedPastPermit();
    for (let i = 1; i < MAX_PERMIT_SUSPECTS; i++) d.release(A, 1, 2, 100, 100, 1_500 + i);
    expectNone(d);
    d.release(A, 1, 2, 100, 100, 9_000_000);
    expectOnly(d, 'one-primary', 'output-without-permit', A);
    expect(d.auditor.stats.permitVerdictsDeferred).toBe(MAX_PERMIT_SUSPECTS);
  });

  it('a permit that reaches it after the release, beyond its reorder window, clears it if it covers it', () => {
    const { d } = releasedPastPermit();
    d.permit(A, 1, 2_400, 2, 1_400);
    expectNone(d);
    expect(d.auditor.stats).toMatchObject({ permitsLate: 1, permitsUnjudged: 0, permitsMissed: 0 });
    d.auditor.settle();
    expectNone(d);
  });

  it('without the option (the simulator, which sees every publication), judged at once', () => {
    const { d, releaseAtUs } = releasedPastPermit({ permitsMayBeLost: false });
    expect(d.auditor.violations).toEqual(withoutPermitAt(releaseAtUs));
    expect(d.auditor.stats.permitVerdictsDeferred).toBe(0);
  });
});

describe('Auditor: output between permits', () => {
  it('a release in a hole between two permits is without a permit, though a later deadline was known (no permit existed then)', () => {
    // Permit 1 covers [0, 1,000) and permit 2 [1,600, 2,600): the lease store did not answer from 600 to 1,600 µs.
    const d = AuditDriver.protectedPrimary(1_000).permit(A, 1, 2_600, 2, 1_600).emit(A, 1, 1, 0, 100).ack(B, 1, 1).commit(A, 1, 1).release(A, 1, 1, 0, 100, 1_500);
    expectOnly(d, 'one-primary', 'output-without-permit', A);
    expect(AuditDriver.protectedPrimary(1_000).permit(A, 1, 2_600, 2, 1_600).emit(A, 1, 1, 0, 100).ack(B, 1, 1).commit(A, 1, 1).release(A, 1, 1, 0, 100, 1_700).auditor.violations).toEqual([]);
  });
});
