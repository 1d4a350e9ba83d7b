import { describe, expect, it } from 'vitest';
import { allRoleChanges, BACKUP, FailoverDriver, FIRST_INCARNATION, heartbeatInput, INTERVAL_US, lateTimer, leaseOps, MISS_COUNT, NONE_TAKEN, primaryRecord, PRIMARY, PROMOTE_TIMER, SPARE, silentTimer, VM } from './support.js';

/** The role changes among `effects`, as host:role:peer. */
const changesIn = (effects: Parameters<typeof allRoleChanges>[0]): string[] => allRoleChanges(effects).map((c) => `${c.host}:${c.role}:${c.peerHost}`);

/** The seq of the spare's join in backupLost (the first role change sent): its heartbeats show it taken. */
const JOIN_SEQ = 1;

/** Started at 0 with the primary's lease read; the spare reports in as a spare. */
function withSpare(): FailoverDriver {
  const d = new FailoverDriver();
  d.start(0, primaryRecord(0), 1);
  d.handle(heartbeatInput(SPARE, 'spare', 1), 1_000);
  return d;
}

/** The backup falls silent: the failover drops it and, with a spare at hand, starts re-protection (the lease names the spare first). */
function backupLost(d: FailoverDriver) {
  d.handle(heartbeatInput(PRIMARY, 'primary', 1), 2_000);
  d.handle(heartbeatInput(SPARE, 'spare', 1), 2_000);
  return [...d.fire(silentTimer(BACKUP)), ...d.settleMemberships()];
}

describe('FailoverCore: re-protection onto a spare', () => {
  it('when the backup is lost, records the spare as backup in the lease, then tells it to join and the primary to replicate to it', () => {
    const d = withSpare();
    const effects = backupLost(d);
    // "No backup" was asked for first; the spare replaced it before anyone was told.
    expect(leaseOps(effects).map((e) => e.op)).toMatchObject([
      { type: 'cas', record: { primaryHost: PRIMARY, term: 1, backupHost: '' } },
      { type: 'cas', record: { primaryHost: PRIMARY, term: 1, backupHost: SPARE } },
    ]);
    expect(allRoleChanges(effects)).toEqual([
      // The join is named by the backup's role change; the primary's names the same one.
      { type: 'roleChange', vmId: VM, term: 1, host: SPARE, role: 'backup', peerHost: PRIMARY, seq: 1, committedEpoch: expect.any(Number), joinSeq: 1 },
      { type: 'roleChange', vmId: VM, term: 1, host: PRIMARY, role: 'primary', peerHost: SPARE, seq: 2, committedEpoch: expect.any(Number), joinSeq: 1 },
    ]);
    expect(d.core.state).toBe('reprotecting');
    expect(d.core.stats.reprotections).toBe(1);
  });

  it('is protected again only when the new backup reports a complete image', () => {
    const d = withSpare();
    backupLost(d);
    const joinedAtUs = d.nowUs;
    d.handle(heartbeatInput(SPARE, 'backup', 1, 0, false, JOIN_SEQ), joinedAtUs + 10_000);
    d.handle(heartbeatInput(SPARE, 'backup', 1, 40, false, JOIN_SEQ), joinedAtUs + 20_000);
    expect(d.core.state).toBe('reprotecting');
    d.handle(heartbeatInput(SPARE, 'backup', 1, 48, true, JOIN_SEQ), joinedAtUs + 30_000);
    expect(d.core.state).toBe('protected');
    expect(d.core.stats.reprotectDurationsUs).toEqual([30_000]);
    expect(d.core.stats.reprotectedAtUs).toEqual([joinedAtUs + 30_000]);
  });

  it('judges a primary that fell silent while re-protecting as soon as the new backup syncs (vopr seed 14252)', () => {
    const d = withSpare();
    backupLost(d);
    const joinedAtUs = d.nowUs;
    // The primary's last heartbeat; then it is cut off from this service (isolated, then crashed) while it still replicates.
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), joinedAtUs + 1_000);
    d.fire(silentTimer(PRIMARY));
    expect(d.core.state).toBe('reprotecting');
    // The new backup syncs from the primary's last epochs: protected, and the primary's silence is looked at again.
    d.handle(heartbeatInput(SPARE, 'backup', 1, 48, true, JOIN_SEQ), d.nowUs + 1_000);
    expect(d.core.state).toBe('protected');
    d.fire(silentTimer(PRIMARY));
    expect(leaseOps(d.log).some((e) => e.op.type === 'cas' && e.op.record.primaryHost === SPARE), 'a take-over for the synced backup').toBe(true);
  });

  it('is not protected by a complete image below what the primary has committed (a late image of an earlier join, vopr seed 92265)', () => {
    const d = withSpare();
    backupLost(d);
    // The primary committed epoch 76 alone after an earlier join was given up; that join's image completes late at 75.
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 76), d.nowUs + 5_000);
    d.handle(heartbeatInput(SPARE, 'backup', 1, 75, true, JOIN_SEQ), d.nowUs + 5_000);
    expect(d.core.state).toBe('reprotecting');
    expect(d.core.stats.syncedBehindCommitted).toBe(1);
    // Its own join's base, above every epoch committed alone, makes it the VM's image.
    d.handle(heartbeatInput(SPARE, 'backup', 1, 77, true, JOIN_SEQ), d.nowUs + 5_000);
    expect(d.core.state).toBe('protected');
  });

  it('takes over for nobody once the backup that held the image when the primary started over is dropped (vopr seed 93249)', () => {
    const d = withSpare();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 20), 2_000);
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 20), 2_000);
    // Cut off from the bus meanwhile, this service misses both hosts crashing; both come back at once as new
    // processes. The primary's restart is heard first, while the backup still counts as holding the VM: a take-over
    // for it would save the VM, and it waits to hear the backup since the reconnect.
    d.handle({ kind: 'connection', connected: false }, 2_500);
    d.handle({ kind: 'connection', connected: true }, 2_800);
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), 3_000);
    expect(d.core.stats.restartsWithoutImage).toBe(0);
    // Then the backup's: its image is gone too, and it is dropped.
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), 3_500);
    expect(d.core.stats.restartsWithoutImage).toBe(1);
    // The spare joins the VM the primary's host made anew and syncs with it; when that host falls silent, nobody is promoted.
    const join = allRoleChanges(d.settleMemberships()).find((c) => c.host === SPARE && c.role === 'backup');
    expect(join).toBeDefined();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 30, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), d.nowUs + 1_000);
    d.handle(heartbeatInput(SPARE, 'backup', 1, 30, true, join!.seq), d.nowUs + 1_000);
    expect(d.core.state).toBe('protected');
    d.fire(silentTimer(PRIMARY));
    expect(leaseOps(d.log).filter((e) => e.op.type === 'cas' && e.op.record.primaryHost !== PRIMARY)).toEqual([]);
  });

  it('is not protected by a complete image reported before the join was taken: that image is of an older membership', () => {
    const d = withSpare();
    backupLost(d);
    d.handle(heartbeatInput(SPARE, 'backup', 1, 48, true, JOIN_SEQ - 1), d.nowUs + 10_000);
    expect(d.core.state).toBe('reprotecting');
  });

  it('waits for a spare that is silent, and uses it once it reports in', () => {
    const d = new FailoverDriver();
    d.start(0, primaryRecord(0), 1);
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), 2_000);
    d.fire(silentTimer(BACKUP));
    const dropped = d.settleMemberships();
    expect(allRoleChanges(dropped).map((c) => c.host)).toEqual([PRIMARY]);
    d.fire(silentTimer(SPARE));
    expect(d.core.state).toBe('unprotected');
    const joined = [...d.handle(heartbeatInput(SPARE, 'spare', 1), 50_000), ...d.settleMemberships()];
    expect(changesIn(joined)).toEqual([`${SPARE}:backup:${PRIMARY}`, `${PRIMARY}:primary:${SPARE}`]);
    expect(d.core.state).toBe('reprotecting');
  });

  it('drops a joining backup that falls silent, and stays unprotected with no spare left', () => {
    const d = withSpare();
    backupLost(d);
    d.handle(heartbeatInput(SPARE, 'backup', 1, 0, false), d.nowUs + 10_000);
    const effects = [...d.fire(silentTimer(SPARE)), ...d.settleMemberships()];
    expect(allRoleChanges(effects)).toEqual([{ type: 'roleChange', vmId: VM, term: 1, host: PRIMARY, role: 'primary', peerHost: '', seq: 3, committedEpoch: expect.any(Number), joinSeq: 0 }]);
    expect(d.core.state).toBe('unprotected');
    // The spare was used up: even if it reports in again it is not asked twice.
    expect(allRoleChanges(d.handle(heartbeatInput(SPARE, 'spare', 1), d.nowUs + 10_000))).toEqual([]);
  });

  it('promotes nobody when the primary dies while the new backup is still incomplete', () => {
    const d = withSpare();
    backupLost(d);
    d.handle(heartbeatInput(SPARE, 'backup', 1, 0, false), d.nowUs + 10_000);
    const late = d.fire(lateTimer(PRIMARY));
    const silent = d.fire(silentTimer(PRIMARY));
    expect([...leaseOps(late), ...leaseOps(silent)]).toEqual([]);
    expect(allRoleChanges(silent)).toEqual([]);
    expect(d.core.state).toBe('reprotecting');
  });

  it('fails over to the re-protected backup: the lease names it, at the next term', () => {
    const d = withSpare();
    backupLost(d);
    d.handle(heartbeatInput(SPARE, 'backup', 1, 48, true, JOIN_SEQ), d.nowUs + 10_000);
    expect(d.core.state).toBe('protected');
    const lastBeatUs = d.nowUs + 10_000;
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), lastBeatUs);
    d.handle(heartbeatInput(SPARE, 'backup', 1, 50, true, JOIN_SEQ), lastBeatUs);
    d.fire(lateTimer(PRIMARY));
    const take = d.fire(silentTimer(PRIMARY));
    expect(d.nowUs).toBe(lastBeatUs + MISS_COUNT * INTERVAL_US);
    expect(leaseOps(take).map((e) => e.op)).toMatchObject([{ type: 'cas', record: { primaryHost: SPARE, term: 2 } }]);
    d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: 9 });
    const promote = d.fire(PROMOTE_TIMER);
    expect(allRoleChanges(promote)).toEqual([{ type: 'roleChange', vmId: VM, term: 2, host: SPARE, role: 'primary', peerHost: '', seq: expect.any(Number), committedEpoch: expect.any(Number), joinSeq: 0 }]);
  });

  it('takes a backup that reports in as a spare (its service restarted empty) as lost, and re-protects onto it', () => {
    const d = new FailoverDriver();
    d.start(0, primaryRecord(0), 1);
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), 5_000);
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 3, true), 5_000);
    // The only other spare never reported in.
    d.fire(silentTimer(SPARE));
    const effects = [...d.handle(heartbeatInput(BACKUP, 'spare', 1), 32_000), ...d.settleMemberships()];
    expect(changesIn(effects)).toEqual([`${BACKUP}:backup:${PRIMARY}`, `${PRIMARY}:primary:${BACKUP}`]);
    expect(d.core.state).toBe('reprotecting');
  });

  it('takes a joining backup that reports as a spare after taking its join as restarted, even when its heartbeats as a backup were lost', () => {
    const d = withSpare();
    backupLost(d);
    const joinSeq = allRoleChanges(d.log).find((c) => c.host === SPARE && c.role === 'backup')!.seq;
    // Straight from "spare" to "spare, join taken": the service restarted empty right after joining.
    const effects = [...d.handle(heartbeatInput(SPARE, 'spare', 1, 0, false, joinSeq), d.nowUs + 10_000), ...d.settleMemberships()];
    // It is asked to join again from a new base epoch.
    expect(changesIn(effects)).toEqual([`${SPARE}:backup:${PRIMARY}`, `${PRIMARY}:primary:${SPARE}`]);
    expect(d.core.stats.reprotections).toBe(2);
    expect(d.core.state).toBe('reprotecting');
  });

  it('does not take a joining spare that still reports as a spare (it has not applied the join yet) as lost', () => {
    const d = withSpare();
    backupLost(d);
    expect(d.core.state).toBe('reprotecting');
    const effects = d.handle(heartbeatInput(SPARE, 'spare', 1), d.nowUs + 1_000);
    expect(allRoleChanges(effects).filter((c) => c.peerHost === '')).toEqual([]);
    expect(d.core.state).toBe('reprotecting');
  });

  describe('hosts that come back after a kill (the soak: three hosts, the primary killed every 90 s)', () => {
    /** Each host's supervisor process: a host that comes back is a new one. */
    const incarnation = new Map<string, number>();
    const beat = (host: string, role: 'primary' | 'backup' | 'spare', term: number, epoch: number, synced: boolean, controlSeq = NONE_TAKEN) =>
      heartbeatInput(host, role, term, epoch, synced, controlSeq, incarnation.get(host) ?? 1);
    /** The primary `from` falls silent; `to` takes over at `term` and reports as primary. */
    const failOver = (d: FailoverDriver, from: string, to: string, term: number) => {
      d.fire(lateTimer(from));
      d.fire(silentTimer(from));
      d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: d.pendingCas.expectedRevision + 1 });
      d.fire(PROMOTE_TIMER);
      d.handle(beat(to, 'primary', term, 100 * term, true), d.nowUs + 1_000);
      expect(d.core.primaryHost).toBe(to);
    };
    /** The re-protection now under way names `host`: it takes its join and reports a complete image. */
    const joins = (d: FailoverDriver, host: string, term: number) => {
      const effects = d.settleMemberships();
      const join = allRoleChanges([...d.log, ...effects]).filter((c) => c.host === host && c.role === 'backup').at(-1);
      expect(join, `${host} is asked to join`).toBeDefined();
      d.handle(beat(host, 'backup', term, 100 * term, true, join!.seq), d.nowUs + 1_000);
      expect(d.core.state).toBe('protected');
      expect(d.core.backupHost).toBe(host);
    };
    /** `host` starts again as a new process, in the role the VM was created with. */
    const comesBack = (d: FailoverDriver, host: string, role: 'primary' | 'backup' | 'spare') => {
      incarnation.set(host, (incarnation.get(host) ?? 1) + 1);
      d.handle(beat(host, role, 1, 0, role !== 'spare'), d.nowUs + 1_000);
    };

    it('takes each one back as a spare, whatever role it starts in, so every failover is followed by re-protection', () => {
      const d = withSpare();
      d.handle(heartbeatInput(PRIMARY, 'primary', 1, 10, true), 2_000);
      d.handle(heartbeatInput(BACKUP, 'backup', 1, 10, true), 2_000);
      failOver(d, PRIMARY, BACKUP, 2);
      joins(d, SPARE, 2);
      comesBack(d, PRIMARY, 'primary'); // created as the primary: fenced by term 2
      failOver(d, BACKUP, SPARE, 3);
      joins(d, PRIMARY, 3);
      comesBack(d, BACKUP, 'backup'); // created as the backup: an empty image calling itself complete
      failOver(d, SPARE, PRIMARY, 4);
      joins(d, BACKUP, 4);
      comesBack(d, SPARE, 'spare'); // created as the spare
      failOver(d, PRIMARY, BACKUP, 5);
      joins(d, SPARE, 5);
      expect(d.core.stats.failovers).toBe(4);
      expect(d.core.stats.reprotections).toBe(4);
    });
  });
});
