/**
 * The bus-only auditor, rule by rule, on hand-built message sequences: what
 * each service would publish, observed with its publisher's host and clock.
 */
import { describe, expect, it } from 'vitest';
import type { AuditorOptions } from '../../../services/auditor/auditor.js';
import { AUDITED_INVARIANTS } from '../../../services/auditor/violations.js';
import { A, assignment, AuditDriver, B, C, data, expectNone, expectOnly, FOREVER_US, guestStatus, S } from './support.js';


/** A protected primary whose first epoch (bytes [0, 100)) the backup acknowledged and the primary committed; its permit outlasts the test unless one is given (null: none). */
function committedEpoch1(permitUntilUs?: number | null, options?: AuditorOptions): AuditDriver {
  return AuditDriver.protectedPrimary(permitUntilUs, undefined, options).emit(A, 1, 1, 0, 100).ack(B, 1, 1).commit(A, 1, 1);
}

/**
 * The failover: A (term 1, backup B) released bytes [0, 100) of epoch 1; its
 * guest went on to emit [100, 200) in epoch 5, never acknowledged. B is
 * promoted under term 2 from the image of epoch 1 (ending at byte 100), runs
 * alone from epoch 2, and has a permit.
 */
function promoted(options?: AuditorOptions): AuditDriver {
  const d = committedEpoch1(undefined, options).release(A, 1, 1, 0, 100).emit(A, 1, 5, 100, 100);
  d.assign(B, 'promoting', 2, 2);
  d.status(guestStatus(B, 2, { epoch: 1, txEndSeqs: [100] }));
  d.assign(B, 'primary', 2, 3, { firstEpoch: 2 });
  d.permit(B, 2);
  expectNone(d);
  return d;
}

describe('Auditor', () => {
  it('holds the epochs of a window of the stream, not all of it, and still catches an early byte', () => {
    const d = AuditDriver.protectedPrimary(FOREVER_US, 10_000);
    for (let epoch = 1; epoch <= 5_000; epoch++) {
      d.emit(A, 1, epoch, (epoch - 1) * 100, 100).ack(B, 1, epoch).commit(A, 1, epoch).release(A, 1, epoch, (epoch - 1) * 100, 100);
    }
    expectNone(d);
    // 10,000 bytes are 100 epochs; forgetting goes in runs of 256.
    expect(d.auditor.byteEpochEntries).toBeLessThanOrEqual(100 + 256);
    d.release(A, 1, 1, 0, 100); // a forgotten byte sent again: it stands for an epoch the backup has
    expectNone(d);
    d.emit(A, 1, 5_001, 500_000, 100).release(A, 1, 5_000, 500_000, 100); // a byte of epoch 5001, labelled 5000
    expectOnly(d, 'output-commit', 'byte-before-commit', A);
  });

  describe('two connections of one guest (a mixed workload)', () => {
    const on = (connId: number, term: number, epoch: number, seq: number, length: number) => ({ ...data(term, epoch, seq, length), connId });

    it('tracks each connection\'s bytes apart: the same sequence numbers of another connection are other bytes', () => {
      const d = AuditDriver.protectedPrimary().emit(A, 1, 1, 0, 100);
      d.observe(S.host(A).tx, on(2, 1, 2, 0, 100), A); // connection 2's first bytes come in epoch 2
      d.ack(B, 1, 1).commit(A, 1, 1);
      d.release(A, 1, 1, 0, 100);
      expectNone(d);
      d.observe(S.wireOut, on(2, 1, 1, 0, 100), A);
      expectOnly(d, 'output-commit', 'byte-before-commit', A);
    });

    it('promoted-image-behind-output: the image holds connection 1 but not what left on connection 2', () => {
      const d = AuditDriver.protectedPrimary().emit(A, 1, 1, 0, 100);
      d.observe(S.host(A).tx, on(2, 1, 1, 0, 80), A);
      d.ack(B, 1, 1).commit(A, 1, 1).release(A, 1, 1, 0, 100);
      d.observe(S.wireOut, on(2, 1, 1, 0, 80), A);
      expect(d.auditor.stats.bytesReleasedEnd).toBe(180);
      d.assign(B, 'promoting', 2, 2);
      d.status(guestStatus(B, 2, { epoch: 1, txEndSeqs: [100, 50] }));
      expectOnly(d, 'output-commit', 'promoted-image-behind-output', B);
    });

    it('counts and ignores guest output of a connection id no guest has', () => {
      const d = AuditDriver.protectedPrimary();
      d.observe(S.host(A).tx, on(7, 1, 1, 0, 10), A);
      expect(d.auditor.stats.unknownConnections).toBe(1);
      d.ack(B, 1, 1).commit(A, 1, 1).observe(S.wireOut, on(7, 1, 1, 0, 10), A);
      expectOnly(d, 'output-commit', 'byte-never-emitted', A);
    });
  });

  it('checks the two invariants of DESIGN §5 it can see on the bus', () => {
    expect([...AUDITED_INVARIANTS]).toEqual(['output-commit', 'one-primary']);
  });

  it('counts every message it sees, and reads assignments only from the checkpointer’s subject and guest bytes only from tx', () => {
    const d = new AuditDriver();
    d.observe(S.host(A).assign('guest'), assignment(A, 'primary', 1, 1), A);
    expect(d.auditor.holderOf(1)).toBeUndefined();
    d.assign(A, 'primary', 1, 1);
    expect(d.auditor.holderOf(1)).toBe(A);
    d.observe(S.host(A).rx, data(1, 1, 0, 10), A); // the acker's segments to the guest
    d.commit(A, 1, 1).permit(A, 1).release(A, 1, 1, 0, 10);
    expectOnly(d, 'output-commit', 'byte-never-emitted', A);
    expect(d.auditor.stats.messagesSeen).toBe(6);
  });

  describe('output commit', () => {
    it('lets bytes out once the current backup acknowledged their epoch', () => {
      const d = committedEpoch1().release(A, 1, 1, 0, 60).release(A, 1, 1, 60, 40);
      expectNone(d);
      expect(d.auditor.committedEpoch).toBe(1);
      expect(d.auditor.stats.segmentsChecked).toBe(2);
      expect(d.auditor.stats.bytesReleasedEnd).toBe(100);
    });

    it('segment-before-commit: a segment of an epoch the backup has not acknowledged reaches the client', () => {
      const d = committedEpoch1().emit(A, 1, 2, 100, 50).release(A, 1, 2, 100, 50);
      expectOnly(d, 'output-commit', 'segment-before-commit', A);
    });

    it('segment-before-commit: before any commit, even a segment with no bytes (a pure ACK) of the first epoch', () => {
      const d = AuditDriver.protectedPrimary().release(A, 1, 1, 0, 0);
      expectOnly(d, 'output-commit', 'segment-before-commit', A);
    });

    it('counts only acknowledgements that succeeded, from the current backup, under the primary’s term', () => {
      const d = AuditDriver.protectedPrimary().emit(A, 1, 1, 0, 100).ack(B, 1, 1, false).ack(C, 1, 1).ack(B, 2, 1);
      expect(d.auditor.committedEpoch).toBe(0);
      d.release(A, 1, 1, 0, 100);
      expectOnly(d, 'output-commit', 'segment-before-commit', A);
    });

    it('byte-before-commit: a segment labelled with a committed epoch carries bytes first emitted in a later one', () => {
      const d = committedEpoch1().emit(A, 1, 2, 100, 100).release(A, 1, 1, 100, 100);
      expectOnly(d, 'output-commit', 'byte-before-commit', A);
      expect(d.auditor.stats.bytesReleasedEnd).toBe(0);
    });

    it('judges bytes whose emission it missed by the segment’s label alone, and counts them', () => {
      // [100, 300) went out in messages this auditor never got (its connection was cut off); the guest went on at 300.
      const d = committedEpoch1().emit(A, 1, 3, 300, 100).release(A, 1, 1, 100, 100);
      expectNone(d);
      expect(d.auditor.unseenGuestBytes).toBe(200);
      expect(d.auditor.stats.releasesOfUnseenBytes).toBe(1);
      // The label still counts: a segment of an epoch not committed is early, seen or not.
      d.release(A, 1, 2, 200, 100);
      expectOnly(d, 'output-commit', 'segment-before-commit', A);
    });

    it('judges a retransmitted byte by the epoch that first emitted it', () => {
      // The guest sends bytes [0, 100) again in epoch 2 (a TCP retransmission): they still belong to epoch 1.
      const d = committedEpoch1().emit(A, 1, 2, 0, 100).release(A, 1, 1, 0, 100);
      expectNone(d);
    });

    it('byte-never-emitted: a byte reaches the client that no guest emitted', () => {
      const d = committedEpoch1().release(A, 1, 1, 50, 100);
      expectOnly(d, 'output-commit', 'byte-never-emitted', A);
    });

    it('a segment with no bytes of a committed epoch passes and releases nothing', () => {
      const d = committedEpoch1().release(A, 1, 1, 100, 0);
      expectNone(d);
      expect(d.auditor.stats.bytesReleasedEnd).toBe(0);
    });

    it('commit-without-ack: a protected primary commits an epoch its backup has not acknowledged', () => {
      const d = AuditDriver.protectedPrimary().ack(B, 1, 1).commit(A, 1, 1).commit(A, 1, 2);
      expectOnly(d, 'output-commit', 'commit-without-ack', A);
    });

    it('a commit is judged only for the current primary, its term and its host', () => {
      const d = AuditDriver.protectedPrimary().commit(A, 2, 5).commit(B, 1, 5);
      expectNone(d);
      expect(d.auditor.committedEpoch).toBe(0);
    });

    it('with no backup, the primary’s commits are local and let its output out', () => {
      const d = new AuditDriver().assign(A, 'primary', 1, 1).permit(A, 1).emit(A, 1, 1, 0, 100).commit(A, 1, 1).release(A, 1, 1, 0, 100);
      expectNone(d);
      expect(d.auditor.committedEpoch).toBe(1);
    });

    it('a joining backup: commits before its base barrier are local; from the base epoch on they need its acknowledgements', () => {
      const d = AuditDriver.protectedPrimary().ack(B, 1, 2).commit(A, 1, 2);
      // The failover service replaced B by C: C joins from a base epoch.
      d.assign(A, 'primary', 1, 2, { peerHost: C, joining: true });
      d.commit(A, 1, 3).emit(A, 1, 3, 0, 10).release(A, 1, 3, 0, 10);
      d.barrier(A, 1, 5, { base: true, joinSeq: 2 }).commit(A, 1, 4);
      expectNone(d);
      d.ack(C, 1, 5).commit(A, 1, 5);
      expectNone(d);
      d.commit(A, 1, 6);
      expectOnly(d, 'output-commit', 'commit-without-ack', A);
    });

    it("a primary's host that started over (a later agent, the same term) changes nothing of the primary: the joined backup's acknowledgements still count, the new process's commits are not judged (vopr seeds 132626, 134409)", () => {
      const d = AuditDriver.protectedPrimary().ack(B, 1, 2).commit(A, 1, 2);
      d.assign(A, 'primary', 1, 2, { peerHost: C, joining: true });
      d.barrier(A, 1, 5, { base: true, joinSeq: 2 });
      // A crashed; its host came back as at the VM's creation: a new agent assigns its services with the first backup.
      d.assign(A, 'primary', 1, 1, { peerHost: B, incarnation: 2 });
      expect(d.auditor.stats.assignmentsOfRestartedPrimary).toBe(1);
      // The base reaches C late, and C acknowledges it: the image promoted later holds epoch 5.
      d.ack(C, 1, 5);
      expect(d.auditor.committedEpoch).toBe(5);
      d.ack(B, 1, 6); // the first backup, answering the new process: not the VM's backup
      expect(d.auditor.committedEpoch).toBe(5);
      // The new process commits the VM it made anew on that acknowledgement: its commits are not the primary's.
      d.commit(A, 1, 6);
      expect(d.auditor.stats.commitsOfRestartedPrimary).toBe(1);
      expectNone(d);
    });

    /** B NACKs epoch 3 needing a base: A commits 3 and 4 alone, then needs B's acknowledgements from the next base (5) on. */
    const expectJoinedAgain = (d: AuditDriver) => {
      d.needsBase(B, 1, 3).commit(A, 1, 3).commit(A, 1, 4);
      expectNone(d);
      // The checkpointer joins it again under the join it had: none, for a first backup.
      d.barrier(A, 1, 5, { base: true, joinSeq: 0 }).ack(B, 1, 5).commit(A, 1, 5);
      expectNone(d);
      d.commit(A, 1, 6);
      expectOnly(d, 'output-commit', 'commit-without-ack', A);
    };

    it('a backup that says it needs a base (its image started over after it acknowledged one) is joined again: local commits until the next base, acknowledgements from it on', () => {
      expectJoinedAgain(AuditDriver.protectedPrimary().ack(B, 1, 2).commit(A, 1, 2).barrier(A, 1, 3).barrier(A, 1, 4));
    });

    it('a backup given a joining assignment after it acknowledged an epoch, then needing a base for it (its acknowledgement lost on the way to the primary), is joined again', () => {
      // vopr seed 868: B acknowledged 3; the primary never got it; B was dropped and rejoined, and NACKs 3 needing a base.
      const d = AuditDriver.protectedPrimary().ack(B, 1, 2).commit(A, 1, 2).barrier(A, 1, 3).barrier(A, 1, 4).ack(B, 1, 3);
      d.assign(B, 'backup', 1, 2, { peerHost: A, joining: true });
      d.ack(B, 1, 3); // a late copy of the acknowledgement from before
      expectJoinedAgain(d);
    });

    it('…but not on a NACK that needs a base for an epoch it acknowledged, or from a host that is not the backup', () => {
      const d = AuditDriver.protectedPrimary().ack(B, 1, 3).needsBase(B, 1, 3).needsBase(C, 1, 4).commit(A, 1, 4);
      expectOnly(d, 'output-commit', 'commit-without-ack', A);
    });

    it('a base barrier sent for one joining backup and repeated after another replaced it is not the new one’s base', () => {
      // C joins, the primary pauses epoch 5 as C's base; before 5 is staged C is dropped and B joins instead.
      const d = AuditDriver.protectedPrimary().assign(A, 'primary', 1, 2, { peerHost: C, joining: true }).barrier(A, 1, 5, { base: true, joinSeq: 2 });
      d.assign(A, 'primary', 1, 3, { peerHost: B, joining: true });
      // The checkpointer repeats the barrier of 5 (its parts are late) and then commits 5 alone: B's base is a later epoch.
      d.barrier(A, 1, 5, { base: true, joinSeq: 2 }).commit(A, 1, 5);
      expectNone(d);
      d.barrier(A, 1, 6, { base: true, joinSeq: 3 }).commit(A, 1, 6);
      expectOnly(d, 'output-commit', 'commit-without-ack', A);
    });

    it('a backup that restarted is announced again: a base the checkpointer sent before it heard of that protects nothing, the one after does', () => {
      // C joins (seq 2) and restarts; the agent announces it again (seq 3) before the checkpointer, which lost the
      // first copy of that assignment, pauses epoch 5 as the base of the join it knows (seq 2).
      const d = AuditDriver.protectedPrimary().assign(A, 'primary', 1, 2, { peerHost: C, joining: true });
      d.assign(A, 'primary', 1, 3, { peerHost: C, joining: true });
      d.barrier(A, 1, 5, { base: true, joinSeq: 2 });
      // A repeat of seq 3 reaches it: it starts over, epoch 5 commits alone, and 6 is the base of the restarted C.
      d.commit(A, 1, 5);
      expectNone(d);
      d.barrier(A, 1, 6, { base: true, joinSeq: 3 }).ack(C, 1, 6).commit(A, 1, 6);
      expectNone(d);
      d.commit(A, 1, 7);
      expectOnly(d, 'output-commit', 'commit-without-ack', A);
    });

    it('the first primary with a joining backup (a restart of its agent) is unprotected until the base barrier', () => {
      const d = new AuditDriver().assign(A, 'primary', 1, 1, { peerHost: B, joining: true }).commit(A, 1, 1);
      expectNone(d);
      d.barrier(A, 1, 2, { base: true, joinSeq: 1 }).commit(A, 1, 2);
      expectOnly(d, 'output-commit', 'commit-without-ack', A);
    });

    it('only the primary’s own base barrier of its term protects', () => {
      const d = AuditDriver.protectedPrimary().assign(A, 'primary', 1, 2, { peerHost: C, joining: true });
      d.barrier(B, 1, 3, { base: true, joinSeq: 2 }).barrier(A, 2, 3, { base: true, joinSeq: 2 }).barrier(A, 1, 3);
      d.commit(A, 1, 3).commit(A, 1, 4);
      expectNone(d);
    });

    it('an assignment repeated, or delayed behind a newer one, does not reset protection', () => {
      const d = AuditDriver.protectedPrimary().assign(A, 'primary', 1, 2, { peerHost: C, joining: true }).barrier(A, 1, 5, { base: true, joinSeq: 2 });
      // The agent sends the same assignment again to a checkpointer that missed it; a copy of the first arrives late.
      d.assign(A, 'primary', 1, 2, { peerHost: C, joining: true }).assign(A, 'primary', 1, 1, { peerHost: B });
      d.commit(A, 1, 5);
      expectOnly(d, 'output-commit', 'commit-without-ack', A);
    });

    it('a new assignment that names no backup again changes nothing', () => {
      const d = new AuditDriver().assign(A, 'primary', 1, 1).assign(A, 'primary', 1, 2).commit(A, 1, 1);
      expectNone(d);
      expect(d.auditor.committedEpoch).toBe(1);
    });

    it('dropping the backup makes commits local again', () => {
      const d = AuditDriver.protectedPrimary().assign(A, 'primary', 1, 2).commit(A, 1, 1).commit(A, 1, 2);
      expectNone(d);
      expect(d.auditor.committedEpoch).toBe(2);
    });
  });

  describe('promotion', () => {
    it('promoted-image-behind-output: a promoted guest is ready with an image that ends before bytes already released', () => {
      const d = committedEpoch1().release(A, 1, 1, 0, 100);
      d.assign(B, 'promoting', 2, 2);
      d.status(guestStatus(B, 2, { epoch: 1, txEndSeqs: [60] }));
      expectOnly(d, 'output-commit', 'promoted-image-behind-output', B);
    });

    it('judges only the promoted guest’s ready report', () => {
      const d = committedEpoch1().release(A, 1, 1, 0, 100);
      d.status(guestStatus(B, 2, { ready: false, txEndSeqs: [0] }));
      d.status(guestStatus(B, 2, { role: 'backup', txEndSeqs: [0] }));
      d.status({ ...guestStatus(B, 2, { txEndSeqs: [0] }), service: 'acker' });
      expectNone(d);
    });

    it('an image that holds every released byte is fine, and the new primary runs alone', () => {
      const d = promoted();
      expect(d.auditor.holderOf(2)).toBe(B);
      expect(d.auditor.stats.promotionsSeen).toBe(1);
      // B has no backup: its commits are local.
      d.commit(B, 2, 2);
      expectNone(d);
      expect(d.auditor.committedEpoch).toBe(2);
    });

    it('a rollback at promotion lets the new guest emit the old guest’s unreleased bytes again, under new epochs', () => {
      const d = promoted();
      // Bytes [100, 200) were epoch 5 under A; B's guest emits [100, 150) in its epoch 2.
      d.emit(B, 2, 2, 100, 50).commit(B, 2, 2).release(B, 2, 2, 100, 50);
      expectNone(d);
      expect(d.auditor.stats.bytesReleasedEnd).toBe(150);
    });

    it('after a promotion, the deposed primary’s guest no longer teaches byte epochs', () => {
      const d = promoted();
      // A, cut off, runs on: its guest emits past the image under the old term.
      d.emit(A, 1, 6, 100, 200);
      d.emit(B, 2, 2, 100, 50).commit(B, 2, 2).release(B, 2, 2, 100, 50);
      expectNone(d);
    });

    it('the rolled-back bytes are gone: releasing them is a byte never emitted', () => {
      const d = promoted().commit(B, 2, 2).release(B, 2, 2, 100, 50);
      expectOnly(d, 'output-commit', 'byte-never-emitted', B);
    });

    it('a deposed primary’s late membership change leaves the new primary’s view alone', () => {
      const d = promoted();
      d.assign(A, 'primary', 1, 9, { peerHost: C, joining: true });
      d.commit(B, 2, 2);
      expectNone(d);
      expect(d.auditor.committedEpoch).toBe(2);
      expect(d.auditor.stats.promotionsSeen).toBe(1);
    });
  });

  describe('one primary', () => {
    it('older-term-after-newer: output of an older term after a newer term released', () => {
      const d = promoted().emit(B, 2, 2, 100, 50).commit(B, 2, 2).release(B, 2, 2, 100, 50);
      d.release(A, 1, 1, 0, 100);
      expectOnly(d, 'one-primary', 'older-term-after-newer', A);
    });

    it('older-term-after-newer, when output may arrive late (over NATS): judged on the publishers’ clocks, not on arrival', () => {
      const late = { outputMayArriveLate: true };
      // B's first output of term 2 was released at 1,000 µs of its clock; A's of term 1 comes after it.
      const before = promoted(late).emit(B, 2, 2, 100, 50).commit(B, 2, 2).release(B, 2, 2, 100, 50, 1_000);
      before.release(A, 1, 1, 0, 100, 999); // released before, delivered late: judged by the other rules, which it passes
      expectNone(before);
      expect(before.auditor.stats.olderTermOutputArrivedLate).toBe(1);
      const after = promoted(late).emit(B, 2, 2, 100, 50).commit(B, 2, 2).release(B, 2, 2, 100, 50, 1_000);
      after.release(A, 1, 1, 0, 100, 1_000); // released when term 2 already had
      expectOnly(after, 'one-primary', 'older-term-after-newer', A);
      expect(after.auditor.stats.olderTermOutputArrivedLate).toBe(0);
    });

    it('an older term’s output that arrived late is still judged on its permit', () => {
      // A's permit ended at 500 µs of its clock: a release at 999 is output without a permit, however it arrived.
      const d = committedEpoch1(500, { outputMayArriveLate: true }).emit(A, 1, 5, 100, 100);
      d.assign(B, 'promoting', 2, 2).status(guestStatus(B, 2, { epoch: 1, txEndSeqs: [100] })).assign(B, 'primary', 2, 3, { firstEpoch: 2 }).permit(B, 2);
      d.emit(B, 2, 2, 100, 50).commit(B, 2, 2).release(B, 2, 2, 100, 50, 1_000);
      d.release(A, 1, 1, 0, 100, 999);
      expectOnly(d, 'one-primary', 'output-without-permit', A);
    });

    it('the old primary’s output before the new term released anything is judged on its permit, not its term', () => {
      const d = promoted().release(A, 1, 1, 0, 100);
      expectNone(d);
    });

    it('term-on-two-hosts: a second host is made primary under a term another host holds', () => {
      const d = AuditDriver.protectedPrimary().assign(B, 'primary', 1, 2);
      expectOnly(d, 'one-primary', 'term-on-two-hosts', B);
      expect(d.auditor.holderOf(1)).toBe(A);
    });

    it('term-on-two-hosts: a promotion under the term the primary holds (a stale term accepted)', () => {
      const d = AuditDriver.protectedPrimary().assign(B, 'promoting', 1, 2);
      expectOnly(d, 'one-primary', 'term-on-two-hosts', B);
    });

    it('a host’s own assignments under its term, again and again, are no conflict; backups and spares hold no term', () => {
      const d = AuditDriver.protectedPrimary().assign(A, 'primary', 1, 2, { peerHost: C, joining: true }).assign(A, 'primary', 1, 3).assign(C, 'backup', 1, 1).assign(C, 'spare', 1, 2).assign(B, 'stopped', 1, 2);
      expectNone(d);
    });

    it('output-from-non-holder: output of a term from a host that does not hold it', () => {
      const d = committedEpoch1(null).permit(C, 1).release(C, 1, 1, 0, 100);
      expectOnly(d, 'one-primary', 'output-from-non-holder', C);
    });

    it('output-from-non-holder: output from outside the hosts', () => {
      const d = committedEpoch1().release(null, 1, 1, 0, 100);
      expectOnly(d, 'one-primary', 'output-from-non-holder', null);
    });

    it('output-from-non-holder: output of a term no host was given', () => {
      const d = committedEpoch1().permit(A, 3).release(A, 3, 1, 0, 100);
      expectOnly(d, 'one-primary', 'output-from-non-holder', A);
    });

    it('output-without-permit: a holder with no permit at all', () => {
      const d = new AuditDriver().assign(A, 'primary', 1, 1).emit(A, 1, 1, 0, 100).commit(A, 1, 1).release(A, 1, 1, 0, 100, 5);
      expectOnly(d, 'one-primary', 'output-without-permit', A);
    });

    it('output-without-permit: at or after the newest permit’s deadline, on the publisher’s own clock', () => {
      const base = () => committedEpoch1(5_000);
      expectNone(base().release(A, 1, 1, 0, 100, 4_999));
      const at = base().release(A, 1, 1, 0, 100, 5_000);
      expectOnly(at, 'one-primary', 'output-without-permit', A);
      // Whatever the auditor's own time: the host's clock is what the permit is measured on.
      const d = base();
      d.atUs = 1_000_000;
      expectNone(d.release(A, 1, 1, 0, 100, 100));
    });

    it('keeps the newest deadline per host and term: a late copy of an older permit does not shorten it', () => {
      const d = committedEpoch1(5_000).permit(A, 1, 3_000).release(A, 1, 1, 0, 100, 4_000);
      expectNone(d);
    });

    it('permits are per host and term: another term’s or another host’s permit does not cover a release', () => {
      const otherTerm = committedEpoch1(1_000).permit(A, 2, 9_000).release(A, 1, 1, 0, 100, 2_000);
      expectOnly(otherTerm, 'one-primary', 'output-without-permit', A);
      const otherHost = committedEpoch1(1_000).permit(B, 1, 9_000).release(A, 1, 1, 0, 100, 2_000);
      expectOnly(otherHost, 'one-primary', 'output-without-permit', A);
    });

    it('a promoted primary needs a permit of its own for its new term', () => {
      const d = committedEpoch1().release(A, 1, 1, 0, 100);
      d.assign(B, 'promoting', 2, 2).status(guestStatus(B, 2, { epoch: 1, txEndSeqs: [100] })).assign(B, 'primary', 2, 3, { firstEpoch: 2 }).permit(B, 1);
      d.emit(B, 2, 2, 100, 50).commit(B, 2, 2).release(B, 2, 2, 100, 50);
      expectOnly(d, 'one-primary', 'output-without-permit', B);
    });
  });
});
