import { describe, expect, it } from 'vitest';
import type { Effect } from '../../../lib/runtime/types.js';
import { NAMED_BACKUP_WAIT_PERIODS } from '../../../services/failover/core.js';
import { allRoleChanges, BACKUP, FailoverDriver, FIRST_INCARNATION, heartbeatInput, INTERVAL_US, leaseOps, MISS_COUNT, NONE_TAKEN, primaryRecord, PRIMARY, PROMOTE_TIMER, silentTimer, SPARE, timers } from './support.js';

const RECOVERED = 'failover.recovered';
const RECOVERY_US = MISS_COUNT * INTERVAL_US;

/** What the primary had committed before the restart, by the lease and by the hosts' reports (unless a test says otherwise). */
const COMMITTED = 20;

/** A restarted failover service at `startUs` whose lease read returns `holder` at `term`, with epochs committed: a VM that ran. */
function restarted(holder: string, term: number, startUs = 100_000): FailoverDriver {
  const d = new FailoverDriver();
  const effects = d.handle({ kind: 'start' }, startUs);
  expect(timers(effects).get(RECOVERED)).toBe(startUs + RECOVERY_US);
  d.answer({ outcome: 'ok', record: { ...primaryRecord(startUs, term, holder), committedEpoch: COMMITTED }, revision: 7 });
  expect(d.core.recovering).toBe(true);
  return d;
}

/** Every host reports in at each interval of the recovery period with `roles`. */
function reports(d: FailoverDriver, roles: Record<string, { role: 'primary' | 'backup' | 'spare'; term: number; synced?: boolean; epoch?: number }>): void {
  const fromUs = d.nowUs;
  for (let t = fromUs + INTERVAL_US / 2; t < fromUs + RECOVERY_US; t += INTERVAL_US) {
    for (const [host, r] of Object.entries(roles)) d.handle(heartbeatInput(host, r.role, r.term, r.epoch ?? (r.role === 'spare' ? 0 : COMMITTED), r.synced ?? r.role !== 'spare'), t);
  }
}

describe('FailoverCore after a restart (a lease that shows the VM ran)', () => {
  it('starts as a first start when its first lease read finds no record, or the first primary\'s own (term 1, the configured hosts, nothing committed)', () => {
    for (const record of [null, primaryRecord(0), { ...primaryRecord(0), backupHost: BACKUP, committedEpoch: 0 }]) {
      const d = new FailoverDriver();
      d.start(0, record);
      expect(d.core.recovering, JSON.stringify(record)).toBe(false);
    }
  });

  it('learns the roles when its first lease read shows a take-over, a committed epoch, or hosts other than the configured ones', () => {
    for (const record of [primaryRecord(0, 2, BACKUP), { ...primaryRecord(0), committedEpoch: 1 }, primaryRecord(0, 1, SPARE), { ...primaryRecord(0), backupHost: '' }, { ...primaryRecord(0), backupHost: SPARE }]) {
      const d = new FailoverDriver();
      d.start(0, record);
      expect(d.core.recovering, JSON.stringify(record)).toBe(true);
    }
  });

  it('stays learning while the store does not answer the first read, and acts as the answer says', () => {
    const d = new FailoverDriver();
    d.handle({ kind: 'start' }, 0);
    d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    expect(d.core.recovering).toBe(true);
    d.fire(RECOVERED); // reads again
    d.answer({ outcome: 'ok', record: null, revision: 0 });
    expect(d.core.recovering).toBe(false);
    expect(d.armed.has(RECOVERED)).toBe(false);
  });

  it('learns the roles once: a recovery timer firing after it, mid-failover, changes nothing (found by fuzzing: it dropped the backup being promoted)', () => {
    const d = restarted(PRIMARY, 1);
    reports(d, { [PRIMARY]: { role: 'primary', term: 1 }, [BACKUP]: { role: 'backup', term: 1 } });
    d.fire(RECOVERED);
    expect([d.core.recovering, d.core.state, d.core.backupHost]).toEqual([false, 'protected', BACKUP]);
    // The primary falls silent and the lease is taken for the backup.
    d.fire(silentTimer(PRIMARY));
    d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: 9 });
    expect([d.core.state, d.core.backupHost]).toEqual(['promoting', BACKUP]);
    d.armed.set(RECOVERED, d.nowUs);
    const late = d.fire(RECOVERED);
    expect([d.core.state, d.core.primaryHost, d.core.backupHost]).toEqual(['promoting', PRIMARY, BACKUP]);
    expect(leaseOps(late)).toEqual([]);
    expect(d.core.stats.staleTimers).toBe(1);
    expect(allRoleChanges(d.fire(PROMOTE_TIMER))).toMatchObject([{ host: BACKUP, role: 'primary' }]);
  });

  it('acts on nothing while it learns the roles: deadlines that pass are ignored', () => {
    const d = restarted(PRIMARY, 1);
    expect(d.core.recovering).toBe(true);
    const effects = d.fire(silentTimer(PRIMARY));
    expect(leaseOps(effects)).toEqual([]);
    expect(allRoleChanges(effects)).toEqual([]);
  });

  it('takes the roles the hosts report: a primary that moved, its synced backup, the spare', () => {
    // A failover happened before the restart: host-b is primary under term 2, host-c its backup.
    const d = restarted(BACKUP, 2);
    reports(d, { [PRIMARY]: { role: 'primary', term: 1 }, [BACKUP]: { role: 'primary', term: 2 }, [SPARE]: { role: 'backup', term: 2 } });
    const effects = d.fire(RECOVERED);
    expect(d.core.recovering).toBe(false);
    expect([d.core.state, d.core.primaryHost, d.core.backupHost, d.core.term]).toEqual(['protected', BACKUP, SPARE, 2]);
    expect(allRoleChanges(effects)).toEqual([]);
    // Deadlines run again from each host's last heartbeat.
    expect(timers(effects).has(silentTimer(BACKUP))).toBe(true);
  });

  it('takes over for the backup when the lease holder did not report in', () => {
    const d = restarted(PRIMARY, 1);
    reports(d, { [BACKUP]: { role: 'backup', term: 1 }, [SPARE]: { role: 'spare', term: 1 } });
    const effects = d.fire(RECOVERED);
    expect(leaseOps(effects).map((e) => e.op)).toMatchObject([{ type: 'cas', expectedRevision: 7, record: { primaryHost: BACKUP, term: 2 } }]);
    expect(d.core.state).toBe('failingOver');
  });

  it('promotes only the backup the lease names: one given up earlier, which still reports itself synced, is not', () => {
    // Before the restart host-b was given up (the lease names no backup) and host-a went on alone; now host-a is silent.
    const d = new FailoverDriver();
    d.handle({ kind: 'start' }, 100_000);
    d.answer({ outcome: 'ok', record: { ...primaryRecord(100_000), backupHost: '' }, revision: 7 });
    reports(d, { [BACKUP]: { role: 'backup', term: 1 }, [SPARE]: { role: 'spare', term: 1 } });
    const effects = d.fire(RECOVERED);
    expect(leaseOps(effects).filter((e) => e.op.type === 'cas' && e.op.record.primaryHost !== PRIMARY)).toEqual([]);
    expect(d.core.backupHost).not.toBe(BACKUP);
    expect(d.core.state).not.toBe('failingOver');
    // With the lease unchanged (the VM is unprotected), the spare that reported in is asked to join instead.
    expect(d.core.state).toBe('reprotecting');
  });

  it('does not take a backup whose image is older than what the holder reports committed: it joins again', () => {
    const d = new FailoverDriver();
    d.handle({ kind: 'start' }, 100_000);
    // The lease's committed epoch lags the primary's reports (it renews every half lease).
    d.answer({ outcome: 'ok', record: { ...primaryRecord(100_000), backupHost: BACKUP, committedEpoch: 25 }, revision: 7 });
    reports(d, { [PRIMARY]: { role: 'primary', term: 1, epoch: 30 }, [BACKUP]: { role: 'backup', term: 1, epoch: 0 } });
    d.fire(RECOVERED);
    // Not protected by it: it is asked to join again, from a base epoch, once the lease names it anew.
    expect(d.core.state).toBe('reprotecting');
    expect(allRoleChanges(d.settleMemberships())).toMatchObject([{ host: BACKUP, role: 'backup', peerHost: PRIMARY }, { host: PRIMARY, role: 'primary', peerHost: BACKUP }]);
  });

  it('takes over for the backup when the holder started the VM over while this service was down (its epochs far below its lease\'s)', () => {
    // vopr seed 2411: host-a crashed at epoch 140 and came back as the lease's primary with an empty guest.
    const d = new FailoverDriver();
    d.handle({ kind: 'start' }, 100_000);
    d.answer({ outcome: 'ok', record: { ...primaryRecord(100_000), backupHost: BACKUP, committedEpoch: 140 }, revision: 7 });
    reports(d, { [PRIMARY]: { role: 'primary', term: 1, epoch: 12 }, [BACKUP]: { role: 'backup', term: 1, epoch: 140 }, [SPARE]: { role: 'spare', term: 1 } });
    const effects = d.fire(RECOVERED);
    expect(leaseOps(effects).map((e) => e.op)).toMatchObject([{ type: 'cas', expectedRevision: 7, record: { primaryHost: BACKUP, term: 2 } }]);
    expect(d.core.state).toBe('failingOver');
  });

  it('takes over for the backup the lease names when the holder came back as a backup at creation while this service was down (vopr seed 18398)', () => {
    // host-b, promoted under term 2 with host-c joining as its backup, crashed and came back as the VM's first backup
    // (empty); host-a, its deposed predecessor, still calls itself primary of term 1.
    const d = new FailoverDriver();
    d.handle({ kind: 'start' }, 100_000);
    d.answer({ outcome: 'ok', record: { ...primaryRecord(100_000, 2, BACKUP), backupHost: SPARE, committedEpoch: 59 }, revision: 7 });
    reports(d, { [PRIMARY]: { role: 'primary', term: 1, epoch: 40 }, [BACKUP]: { role: 'backup', term: 1, epoch: 0 }, [SPARE]: { role: 'backup', term: 2, epoch: 59 } });
    const effects = d.fire(RECOVERED);
    expect(leaseOps(effects).map((e) => e.op)).toMatchObject([{ type: 'cas', expectedRevision: 7, record: { primaryHost: SPARE, term: 3 } }]);
    expect(d.core.state).toBe('failingOver');
    expect(d.core.primaryHost).toBe(BACKUP);
  });

  it('keeps a holder whose epochs are at most a few below its lease\'s (a renewal ahead of its heartbeats), or that has no synced backup', () => {
    for (const [primaryEpoch, backupEpoch] of [
      [137, 140],
      [12, 0],
    ] as const) {
      const d = new FailoverDriver();
      d.handle({ kind: 'start' }, 100_000);
      d.answer({ outcome: 'ok', record: { ...primaryRecord(100_000), backupHost: BACKUP, committedEpoch: 140 }, revision: 7 });
      reports(d, { [PRIMARY]: { role: 'primary', term: 1, epoch: primaryEpoch }, [BACKUP]: { role: 'backup', term: 1, epoch: backupEpoch }, [SPARE]: { role: 'spare', term: 1 } });
      const effects = d.fire(RECOVERED);
      expect(leaseOps(effects).filter((e) => e.op.type === 'cas' && e.op.record.primaryHost === BACKUP), `primary at ${primaryEpoch}, backup at ${backupEpoch}`).toEqual([]);
      expect(d.core.primaryHost).toBe(PRIMARY);
    }
  });

  it('promotes the backup the lease names when the holder is silent', () => {
    const d = new FailoverDriver();
    d.handle({ kind: 'start' }, 100_000);
    d.answer({ outcome: 'ok', record: { ...primaryRecord(100_000), backupHost: SPARE }, revision: 7 });
    reports(d, { [BACKUP]: { role: 'backup', term: 1 }, [SPARE]: { role: 'backup', term: 1 } });
    const effects = d.fire(RECOVERED);
    expect(leaseOps(effects).map((e) => e.op)).toMatchObject([{ type: 'cas', expectedRevision: 7, record: { primaryHost: SPARE, term: 2 } }]);
  });

  it('finishes a promotion the restart cut short: the lease names a backup that never took over', () => {
    const d = restarted(BACKUP, 2);
    reports(d, { [BACKUP]: { role: 'backup', term: 1 }, [SPARE]: { role: 'spare', term: 1 } });
    const effects = d.fire(RECOVERED);
    expect(leaseOps(effects).map((e) => e.op)).toMatchObject([{ type: 'cas', record: { primaryHost: BACKUP, term: 3 } }]);
  });

  it("takes over for no holder that reports a synced image behind what its lease says was committed, or comes from another process than the one that claimed the lease: it backs up a VM made anew (vopr seed 111198)", () => {
    // host-b was promoted and crashed; both hosts came back as at the VM's creation: host-a runs a VM made anew, and host-b backs it up.
    const behind = restarted(BACKUP, 2);
    reports(behind, { [PRIMARY]: { role: 'primary', term: 1, epoch: 10 }, [BACKUP]: { role: 'backup', term: 1, epoch: 10 }, [SPARE]: { role: 'spare', term: 1 } });
    const effects = behind.fire(RECOVERED);
    // No take-over: finishing the promotion re-took the lease for host-b under a newer term.
    expect(leaseOps(effects).filter((e) => e.op.type === 'cas' && e.op.record.term > 2)).toEqual([]);
    expect(effects).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.restart_without_image' }));
    expect(behind.core.stats.restartsWithoutImage).toBe(1);
    // At the committed epoch, but not the process whose renewal claimed the lease: its host restarted since.
    const other = new FailoverDriver();
    other.handle({ kind: 'start' }, 100_000);
    other.answer({ outcome: 'ok', record: { ...primaryRecord(100_000, 2, BACKUP), committedEpoch: COMMITTED, holderIncarnation: FIRST_INCARNATION }, revision: 7 });
    for (let t = 100_000 + INTERVAL_US / 2; t < 100_000 + RECOVERY_US; t += INTERVAL_US) {
      other.handle(heartbeatInput(BACKUP, 'backup', 1, COMMITTED, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), t);
      other.handle(heartbeatInput(SPARE, 'spare', 1), t);
    }
    const recovered = other.fire(RECOVERED);
    expect(leaseOps(recovered).filter((e) => e.op.type === 'cas' && e.op.record.term > 2)).toEqual([]);
    expect(other.core.stats.restartsWithoutImage).toBe(1);
    // The process that claimed it, at the committed epoch: the promotion the restart cut short is finished.
    const same = new FailoverDriver();
    same.handle({ kind: 'start' }, 100_000);
    same.answer({ outcome: 'ok', record: { ...primaryRecord(100_000, 2, BACKUP), committedEpoch: COMMITTED, holderIncarnation: FIRST_INCARNATION }, revision: 7 });
    reports(same, { [BACKUP]: { role: 'backup', term: 1 }, [SPARE]: { role: 'spare', term: 1 } });
    expect(leaseOps(same.fire(RECOVERED)).map((e) => e.op)).toMatchObject([{ type: 'cas', record: { primaryHost: BACKUP, term: 3 } }]);
  });

  it('without a synced backup calls the VM unprotected and lets a backup still catching up join again', () => {
    const d = restarted(PRIMARY, 1);
    reports(d, { [PRIMARY]: { role: 'primary', term: 1 }, [SPARE]: { role: 'backup', term: 1, synced: false } });
    const effects = [...d.fire(RECOVERED), ...d.settleMemberships()];
    expect(allRoleChanges(effects).map((c) => `${c.host}:${c.role}:${c.peerHost}`)).toEqual([`${SPARE}:backup:${PRIMARY}`, `${PRIMARY}:primary:${SPARE}`]);
    expect(d.core.state).toBe('reprotecting');
  });

  it('joins a backup it found catching up once that backup has synced since, as a spare, when the VM is unprotected again (vopr seed 102999)', () => {
    // The backup restarted and is a spare; the spare's join, which this service never knew of, catches up on a slow link.
    const d = restarted(PRIMARY, 1);
    reports(d, { [PRIMARY]: { role: 'primary', term: 1 }, [BACKUP]: { role: 'spare', term: 1 }, [SPARE]: { role: 'backup', term: 1, synced: false } });
    const joined = allRoleChanges([...d.fire(RECOVERED), ...d.settleMemberships()]).filter((c) => c.role === 'backup');
    expect(joined).toHaveLength(1);
    const chosen = joined[0]!.host;
    const other = chosen === BACKUP ? SPARE : BACKUP;
    // The other one reports on: the spare's old join completed, an image of no membership of this service's.
    d.handle(heartbeatInput(other, other === SPARE ? 'backup' : 'spare', 1, COMMITTED + 5, other === SPARE), d.nowUs + INTERVAL_US / 2);
    // The chosen one falls silent before its base: dropped, and the other joins at once (the membership without a
    // backup is replaced by the one naming it before it is written).
    const effects = [...d.fire(silentTimer(chosen)), ...d.settleMemberships()];
    expect(allRoleChanges(effects).map((c) => `${c.host}:${c.role}:${c.peerHost}`)).toEqual([`${other}:backup:${PRIMARY}`, `${PRIMARY}:primary:${other}`]);
    expect(d.core.state).toBe('reprotecting');
  });

  /**
   * Restarted while both the primary's and the backup's hosts were down: the lease (renewed by the primary's agent,
   * process FIRST_INCARNATION) shows committed epochs, and only the spare reports; the primary is the lease's.
   */
  const restartedWithBothHostsDown = (): FailoverDriver => {
    const d = new FailoverDriver();
    d.handle({ kind: 'start' }, 100_000);
    d.answer({ outcome: 'ok', record: { ...primaryRecord(100_000), backupHost: BACKUP, committedEpoch: COMMITTED, holderIncarnation: FIRST_INCARNATION }, revision: 7 });
    reports(d, { [SPARE]: { role: 'spare', term: 1 } });
    d.fire(RECOVERED);
    d.settleMemberships();
    expect(d.core.primaryHost).toBe(PRIMARY);
    return d;
  };

  it("takes the lease holder's first heartbeat from another process than the lease's writer for a host that started over, and promotes nothing its new VM made (vopr seed 38646)", () => {
    const d = restartedWithBothHostsDown();
    // The primary's host comes back, its agent a new process in the role the VM was created with: a VM made anew.
    const back = d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), d.nowUs + 1_000);
    expect(d.core.stats.supervisorRestarts).toBe(1);
    expect(back).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.supervisor_restarted' }));
    expect(d.core.stats.restartsWithoutImage).toBe(1);
    // The spare joins and syncs with that new VM; when the restarted host falls silent, its image is not promoted.
    const join = allRoleChanges([...back, ...d.settleMemberships()]).find((c) => c.host === SPARE && c.role === 'backup');
    d.handle(heartbeatInput(SPARE, 'backup', 1, 3, true, join?.seq ?? NONE_TAKEN), d.nowUs + 1_000);
    const silent = d.fire(silentTimer(PRIMARY));
    expect(leaseOps(silent).filter((e) => e.op.type === 'cas' && e.op.record.primaryHost === SPARE)).toEqual([]);
    expect(d.core.primaryHost).toBe(PRIMARY);
  });

  it('takes a lease holder heard while recovering from another process than the lease\'s writer for a host that started over, and promotes nothing its new VM made (vopr seed 87911)', () => {
    // Restarted while the primary's host had crashed and come back (its agent a new process, the VM made anew) and the
    // backup's guest had restarted empty (a spare now): no host holds the VM.
    const d = new FailoverDriver();
    d.handle({ kind: 'start' }, 100_000);
    d.answer({ outcome: 'ok', record: { ...primaryRecord(100_000), backupHost: BACKUP, committedEpoch: COMMITTED, holderIncarnation: FIRST_INCARNATION }, revision: 7 });
    for (let t = 100_000 + INTERVAL_US / 2; t < 100_000 + RECOVERY_US; t += INTERVAL_US) {
      d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), t);
      d.handle(heartbeatInput(BACKUP, 'spare', 1, 0, false), t);
    }
    const recovered = d.fire(RECOVERED);
    expect(recovered).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.supervisor_restarted' }));
    expect([d.core.stats.supervisorRestarts, d.core.stats.restartsWithoutImage]).toEqual([1, 1]);
    // A backup joins the VM made anew and syncs with it; when that host falls silent, its image is not promoted.
    const join = allRoleChanges([...recovered, ...d.settleMemberships()]).find((c) => c.role === 'backup');
    expect(join).toBeDefined();
    d.handle(heartbeatInput(join!.host, 'backup', 1, 3, true, join!.seq), d.nowUs + 1_000);
    const silent = d.fire(silentTimer(PRIMARY));
    expect(leaseOps(silent).filter((e) => e.op.type === 'cas' && e.op.record.primaryHost !== PRIMARY)).toEqual([]);
    expect(d.core.primaryHost).toBe(PRIMARY);
  });

  it("takes over for the lease's backup after a holder from another process only when that backup follows the lease writer's stream and holds what the lease says was committed (vopr seeds 91830, 134275)", () => {
    const anew = FIRST_INCARNATION + 50_000;
    for (const [holderEpoch, backupEpoch, followed, takesOver, backupTerm] of [
      [40, 34, anew, false, 1], // synced with the VM the restarted host made anew, which this service's previous process protected
      [900, 890, anew, false, 1], // the same, once the VM made anew ran past the lease's epoch
      [40, 88, FIRST_INCARNATION, true, 1], // the VM's image, from before the restart
      [813, 94, FIRST_INCARNATION, true, 1], // the same beside a VM made anew that ran past the lease's epoch (seed 134275)
      [40, 60, FIRST_INCARNATION, false, 1], // the VM's stream, but short of what the lease says was committed
      [40, 88, FIRST_INCARNATION, false, 2], // an agent of that incarnation under another term: another host's (incarnations are start times)
    ] as const) {
      const what = `holder at ${holderEpoch}, backup at ${backupEpoch} following agent ${followed} under term ${backupTerm}`;
      const d = new FailoverDriver();
      d.handle({ kind: 'start' }, 100_000);
      d.answer({ outcome: 'ok', record: { ...primaryRecord(100_000), backupHost: BACKUP, committedEpoch: 88, holderIncarnation: FIRST_INCARNATION }, revision: 7 });
      for (let t = 100_000 + INTERVAL_US / 2; t < 100_000 + RECOVERY_US; t += INTERVAL_US) {
        d.handle(heartbeatInput(PRIMARY, 'primary', 1, holderEpoch, true, NONE_TAKEN, anew), t);
        d.handle(heartbeatInput(BACKUP, 'backup', backupTerm, backupEpoch, true, NONE_TAKEN, FIRST_INCARNATION, 0, followed), t);
      }
      const effects = d.fire(RECOVERED);
      const takeOvers = leaseOps(effects).filter((e) => e.op.type === 'cas' && e.op.record.primaryHost === BACKUP);
      expect(takeOvers.length > 0, what).toBe(takesOver);
      expect(d.core.stats.restartsWithoutImage, what).toBe(takesOver ? 0 : 1);
    }
  });

  it("promotes no backup whose image follows another agent than the lease's writer: its host rebooted unheard and took the VM the primary's restarted host made anew (vopr seed 3515)", () => {
    const anew = FIRST_INCARNATION + 50_000;
    // Restarted while the primary's host came back (its agent another process, the VM made anew) and the backup's host
    // rebooted: both unheard. Only the backup is heard while this service learns the roles, synced, past the lease's
    // epoch, following the new agent's stream.
    const recover = (followed: number) => {
      const d = new FailoverDriver();
      d.handle({ kind: 'start' }, 100_000);
      d.answer({ outcome: 'ok', record: { ...primaryRecord(100_000), backupHost: BACKUP, committedEpoch: COMMITTED, holderIncarnation: FIRST_INCARNATION }, revision: 7 });
      for (let t = 100_000 + INTERVAL_US / 2; t < 100_000 + RECOVERY_US; t += INTERVAL_US) d.handle(heartbeatInput(BACKUP, 'backup', 1, COMMITTED + 10, true, NONE_TAKEN, anew, 0, followed), t);
      return { d, recovered: d.fire(RECOVERED) };
    };
    const takeOvers = (effects: Effect[]) => leaseOps(effects).filter((e) => e.op.type === 'cas' && e.op.record.primaryHost === BACKUP);
    // The primary unheard: its silence finds a backup of another stream, and nothing is promoted.
    const other = recover(anew);
    expect(takeOvers(other.recovered)).toEqual([]);
    expect(other.recovered).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.backup_of_another_stream' }));
    expect(other.d.core.stats.silencesWithoutImage).toBeGreaterThan(0);
    // Heard later from its new process, the primary is taken for restarted with no image left.
    other.d.handle(heartbeatInput(PRIMARY, 'primary', 1, 3, true, NONE_TAKEN, anew), other.d.nowUs + 1_000);
    expect(other.d.core.stats.restartsWithoutImage).toBe(1);
    expect(takeOvers(other.d.fire(silentTimer(PRIMARY)))).toEqual([]);
    // The same backup following the lease writer's stream holds the VM: the take-over goes ahead.
    expect(takeOvers(recover(FIRST_INCARNATION).recovered).length).toBeGreaterThan(0);
  });

  it("waits for the lease's backup, unheard while it learns the roles, when the holder's host started over: the VM is that backup's or lost (vopr seed 60)", () => {
    const recover = (backupHeard: boolean) => {
      const d = new FailoverDriver();
      d.handle({ kind: 'start' }, 100_000);
      d.answer({ outcome: 'ok', record: { ...primaryRecord(100_000), backupHost: BACKUP, committedEpoch: 88, holderIncarnation: FIRST_INCARNATION }, revision: 7 });
      // The primary's host came back (another process, a VM made anew); the backup's heartbeats are lost on the way.
      for (let t = 100_000 + INTERVAL_US / 2; t < 100_000 + RECOVERY_US; t += INTERVAL_US) {
        d.handle(heartbeatInput(PRIMARY, 'primary', 1, 3, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), t);
        d.handle(heartbeatInput(SPARE, 'spare', 1), t);
      }
      const first = d.fire(RECOVERED);
      expect(first).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.named_backup_awaited' }));
      expect([d.core.recovering, leaseOps(first)]).toEqual([true, []]);
      const effects: Effect[] = [];
      let fired = 1;
      for (; d.core.recovering && fired < 1_000; fired++) {
        if (backupHeard && fired === 20) d.handle(heartbeatInput(BACKUP, 'backup', 1, 88, true), d.nowUs + 1);
        effects.push(...d.fire(RECOVERED));
      }
      return { d, effects, fired };
    };
    // Heard late, holding what the lease says was committed: its image is the VM, taken over for.
    const heard = recover(true);
    expect(heard.fired).toBe(21);
    expect(leaseOps(heard.effects).filter((e) => e.op.type === 'cas' && e.op.record.primaryHost === BACKUP)).toHaveLength(1);
    expect(heard.d.core.stats.restartsWithoutImage).toBe(0);
    // Never heard: taken for dead after the bound, and the VM is lost.
    const never = recover(false);
    expect(never.fired * INTERVAL_US).toBeGreaterThanOrEqual(NAMED_BACKUP_WAIT_PERIODS * RECOVERY_US);
    expect(never.fired * INTERVAL_US).toBeLessThanOrEqual((NAMED_BACKUP_WAIT_PERIODS + 1) * RECOVERY_US);
    expect(never.d.core.stats.restartsWithoutImage).toBe(1);
  });

  it('keeps a lease holder heard while recovering from the lease\'s writer: nothing started over', () => {
    const d = new FailoverDriver();
    d.handle({ kind: 'start' }, 100_000);
    d.answer({ outcome: 'ok', record: { ...primaryRecord(100_000), backupHost: BACKUP, committedEpoch: COMMITTED, holderIncarnation: FIRST_INCARNATION }, revision: 7 });
    for (let t = 100_000 + INTERVAL_US / 2; t < 100_000 + RECOVERY_US; t += INTERVAL_US) {
      d.handle(heartbeatInput(PRIMARY, 'primary', 1, COMMITTED, true, NONE_TAKEN, FIRST_INCARNATION), t);
      d.handle(heartbeatInput(BACKUP, 'backup', 1, COMMITTED, true), t);
    }
    d.fire(RECOVERED);
    expect([d.core.stats.supervisorRestarts, d.core.stats.restartsWithoutImage, d.core.state]).toEqual([0, 0, 'protected']);
  });

  it("takes the lease holder's first heartbeat from the lease's writer for the primary it was: nothing started over", () => {
    const d = restartedWithBothHostsDown();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, COMMITTED, true, NONE_TAKEN, FIRST_INCARNATION), d.nowUs + 1_000);
    expect(d.core.stats.supervisorRestarts).toBe(0);
    expect(d.core.stats.restartsWithoutImage).toBe(0);
  });

  it('waits for the lease when the store did not answer, and reads it again', () => {
    const d = new FailoverDriver();
    d.handle({ kind: 'start' }, 0);
    d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    const effects = d.fire(RECOVERED);
    expect(d.core.recovering).toBe(true);
    expect(leaseOps(effects).map((e) => e.op.type)).toEqual(['read']);
    expect(timers(effects).get(RECOVERED)).toBe(RECOVERY_US + INTERVAL_US);
  });
});
