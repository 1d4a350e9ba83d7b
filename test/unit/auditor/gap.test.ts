/**
 * The auditor over NATS misses what was published while its own connection
 * was down (a restart of the nats-server): acknowledgements, commits, guest
 * output. Found by the soak: after a restart it read a commit it had missed
 * as output released early. It judges nothing until the primary's next
 * commit, takes that one as committed, and counts what it could not judge.
 */
import { describe, expect, it } from 'vitest';
import { UNSEEN_EPOCH, ByteEpochs } from '../../../services/auditor/byte-epochs.js';
import { A, AuditDriver, B, expectNone, expectOnly } from './support.js';

/** A protected primary whose epoch 1 ([0, 100)) is acknowledged and committed; the guest has emitted [100, 200) in epoch 2. */
const beforeTheGap = () => AuditDriver.protectedPrimary().emit(A, 1, 1, 0, 100).ack(B, 1, 1).commit(A, 1, 1).emit(A, 1, 2, 100, 100);

describe('Auditor: messages missed while cut off', () => {
  it('judges no release until the next commit, takes that commit as committed, then judges again', () => {
    // Missed: B's acknowledgement of epoch 2 and A's commit of it. The netbuffer releases epoch 2.
    const d = beforeTheGap();
    d.auditor.missedMessages();
    d.release(A, 1, 2, 100, 100);
    expectNone(d);
    expect(d.auditor.stats.releasesUnjudged).toBe(1);
    // The commit of epoch 3 comes without an acknowledgement this auditor saw: taken as committed, once.
    d.emit(A, 1, 3, 200, 100).commit(A, 1, 3).release(A, 1, 3, 200, 100);
    expectNone(d);
    expect(d.auditor.stats).toMatchObject({ gaps: 1, commitsTrusted: 1, releasesUnjudged: 1 });
    // Judging again: epoch 4 is neither acknowledged nor committed.
    d.emit(A, 1, 4, 300, 100).release(A, 1, 4, 300, 100);
    expectOnly(d, 'output-commit', 'segment-before-commit', A);
  });

  it('after the gap, a commit without an acknowledgement is caught again', () => {
    const d = beforeTheGap();
    d.auditor.missedMessages();
    d.commit(A, 1, 2).commit(A, 1, 3);
    expectOnly(d, 'output-commit', 'commit-without-ack', A);
  });

  it('without a gap, the same release is early', () => {
    const d = beforeTheGap().release(A, 1, 2, 100, 100);
    expectOnly(d, 'output-commit', 'segment-before-commit', A);
  });

  it('a byte released beyond every byte it saw emitted is not "never emitted" after a gap, until the guest is seen again', () => {
    const d = beforeTheGap();
    d.auditor.missedMessages();
    d.commit(A, 1, 2).release(A, 1, 2, 200, 50); // [200, 250) was emitted while it was cut off
    expectNone(d);
    expect(d.auditor.stats.releasesOfUnseenBytes).toBe(1);
  });
});

describe('Auditor: a first emission lost on the bus for everyone', () => {
  it("judges a byte by the guest's epoch end, not by the retransmission it saw first", () => {
    // [100, 200) left the guest in epoch 2 and died with the server; the guest ended epoch 2 having sent it, and
    // retransmitted it in epoch 3. Checkpoint 2 holds it: released at the commit of 2 it is on time.
    const lost = () => AuditDriver.protectedPrimary().emit(A, 1, 1, 0, 100).ack(B, 1, 1).commit(A, 1, 1).epochEnd(A, 1, 2, 200).emit(A, 1, 3, 100, 100);
    expectNone(lost().ack(B, 1, 2).commit(A, 1, 2).release(A, 1, 2, 100, 100));
    // Without the epoch end, the retransmission is all the auditor knows of those bytes.
    const unreported = AuditDriver.protectedPrimary().emit(A, 1, 1, 0, 100).ack(B, 1, 1).commit(A, 1, 1).emit(A, 1, 3, 100, 100).ack(B, 1, 2).commit(A, 1, 2).release(A, 1, 2, 100, 100);
    expectOnly(unreported, 'output-commit', 'byte-before-commit', A);
    expect(lost().auditor.violations).toEqual([]);
  });

  it('still catches a byte released before the epoch that sent it committed', () => {
    const d = AuditDriver.protectedPrimary().emit(A, 1, 1, 0, 100).ack(B, 1, 1).commit(A, 1, 1).epochEnd(A, 1, 2, 150).emit(A, 1, 3, 100, 150).ack(B, 1, 2).commit(A, 1, 2).release(A, 1, 2, 150, 100);
    expectOnly(d, 'output-commit', 'byte-before-commit', A);
  });
});

describe('ByteEpochs after missed messages', () => {
  it('gives bytes beyond everything seen UNSEEN_EPOCH until a new byte is seen, then none again', () => {
    const b = new ByteEpochs();
    b.emitted(1, 101, 1);
    expect(b.epochOf(150)).toBeNull();
    b.missedMessages();
    expect(b.epochOf(150)).toBe(UNSEEN_EPOCH);
    expect(b.epochOf(50)).toBe(1);
    b.emitted(101, 201, 2);
    expect(b.epochOf(150)).toBe(2);
    expect(b.epochOf(250)).toBeNull();
  });
});

describe('Auditor: a permit renewed while cut off', () => {
  it('does not judge the permit rule for a host until it sees a permit of its again, then judges it', () => {
    // A's permit, as this auditor last saw it, ends at 1,000 µs of A's clock; A renews it while the auditor is cut off.
    const d = AuditDriver.protectedPrimary(1_000).emit(A, 1, 1, 0, 100).ack(B, 1, 1).commit(A, 1, 1);
    d.auditor.missedMessages();
    d.emit(A, 1, 2, 100, 100).ack(B, 1, 2).commit(A, 1, 2).release(A, 1, 2, 100, 100, 2_000);
    expectNone(d);
    expect(d.auditor.stats.permitsUnjudged).toBe(1);
    // A permit seen again: judged on it from here.
    d.permit(A, 1, 3_000).emit(A, 1, 3, 200, 100).ack(B, 1, 3).commit(A, 1, 3).release(A, 1, 3, 200, 100, 3_500);
    expectOnly(d, 'one-primary', 'output-without-permit', A);
  });

  it('without a gap, the same release is without a permit', () => {
    const d = AuditDriver.protectedPrimary(1_000).emit(A, 1, 1, 0, 100).ack(B, 1, 1).commit(A, 1, 1).emit(A, 1, 2, 100, 100).ack(B, 1, 2).commit(A, 1, 2).release(A, 1, 2, 100, 100, 2_000);
    expectOnly(d, 'one-primary', 'output-without-permit', A);
  });
});
