import { describe, expect, it } from 'vitest';
import { allRoleChanges, BACKUP, FailoverDriver, heartbeatInput, PRIMARY, primaryRecord, PROMOTE_TIMER, SPARE, silentTimer } from './support.js';

/** The failover service repeats each role change until the host's heartbeats show it taken (the bus may lose it). */
describe('FailoverCore: role changes until taken', () => {
  /** Started with the spare reporting in; the backup falls silent and the spare is asked to join. */
  function reprotecting(): { d: FailoverDriver; seqs: Map<string, number> } {
    const d = new FailoverDriver();
    d.start(0, primaryRecord(0), 1);
    d.handle(heartbeatInput(SPARE, 'spare', 1, 0, false, 0), 1_000);
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, 0), 2_000);
    d.fire(silentTimer(BACKUP));
    const changes = allRoleChanges(d.settleMemberships());
    // The newest change per host is the one owed.
    return { d, seqs: new Map(changes.map((c) => [c.host, c.seq])) };
  }

  it('numbers its role changes in the order it sends them', () => {
    const { seqs } = reprotecting();
    expect(seqs.get(SPARE)).toBe(1);
    expect(seqs.get(PRIMARY)).toBe(2);
  });

  it('sends the newest role change of a host again on each heartbeat that does not show it, and stops once one does', () => {
    const { d, seqs } = reprotecting();
    const t = d.nowUs;
    // The primary's heartbeat does not show its new peer (seq 2) yet.
    const again = allRoleChanges(d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, 0), t + 1_000));
    expect(again).toEqual([expect.objectContaining({ host: PRIMARY, peerHost: SPARE, seq: seqs.get(PRIMARY) })]);
    const spareAgain = allRoleChanges(d.handle(heartbeatInput(SPARE, 'spare', 1, 0, false, 0), t + 2_000));
    expect(spareAgain).toEqual([expect.objectContaining({ host: SPARE, role: 'backup', seq: seqs.get(SPARE) })]);
    expect(d.core.stats.roleChangesResent).toBe(2);
    // Taken: no more repeats.
    expect(allRoleChanges(d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, 2), t + 3_000))).toEqual([]);
    expect(allRoleChanges(d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, 2), t + 4_000))).toEqual([]);
    expect(allRoleChanges(d.handle(heartbeatInput(SPARE, 'backup', 1, 0, false, 1), t + 5_000))).toEqual([]);
  });

  it('repeats a promotion until the promoted host reports it', () => {
    const d = new FailoverDriver();
    d.start(0, primaryRecord(0), 1);
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 0, true, 0), 1_000);
    d.fire(silentTimer(PRIMARY));
    d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: 2 });
    const promotion = allRoleChanges(d.fire(PROMOTE_TIMER));
    expect(promotion).toMatchObject([{ host: BACKUP, role: 'primary', term: 2 }]);
    const again = allRoleChanges(d.handle(heartbeatInput(BACKUP, 'backup', 1, 0, true, 0), d.nowUs + 1_000));
    expect(again).toEqual(promotion);
    expect(allRoleChanges(d.handle(heartbeatInput(BACKUP, 'primary', 2, 0, true, promotion[0]!.seq), d.nowUs + 1_000))).toEqual([]);
    expect(d.core.stats.failovers).toBe(1);
  });
});
