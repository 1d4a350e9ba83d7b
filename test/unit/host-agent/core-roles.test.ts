/**
 * HostAgentCore and the failover service's role changes: a backup's
 * promotion (promoting → claiming → primary), a primary's membership
 * changes, a spare's join, and role changes repeated, delayed or deferred.
 */
import { describe, expect, it } from 'vitest';
import { HOST_SERVICES } from '../../../lib/codec/messages.js';
import { AgentDriver, assignmentsIn, BACKUP, BEAT, heartbeatsIn, INTERVAL_US, LEASE_US, MARGIN_US, permitsIn, PRIMARY, renewalsIn, rolesOf, SPARE, VM } from './support.js';

/** The guest's image of the backup holds this epoch when the promotion starts. */
const IMAGE_EPOCH = 9;

/** A synced backup told to become primary under term 2; returns the driver and the promotion. */
function promoting() {
  const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
  d.reportAll({ guest: { epoch: IMAGE_EPOCH, synced: true } });
  const change = d.roleChange('primary', 2, '');
  const effects = d.control(change, 1_000);
  return { d, change, effects };
}

/** …whose guest and acker then restored: the agent claims the lease. */
function claiming() {
  const p = promoting();
  p.d.reportAll({ guest: { ready: true, epoch: IMAGE_EPOCH, role: 'promoting' }, acker: { ready: true } }, 2_000);
  expect(p.d.core.state).toBe('claiming');
  return p;
}

/** …and got its claim confirmed. */
function promoted() {
  const p = claiming();
  const effects = p.d.answer('ok', undefined, 2_500);
  expect(p.d.core.state).toBe('primary');
  return { ...p, effects };
}

describe('HostAgentCore: promotion', () => {
  it('a RoleChange(primary, term T) to a backup sends promoting assignments under term T, with no peer', () => {
    const { d, effects } = promoting();
    expect(d.core.state).toBe('promoting');
    const sent = assignmentsIn(effects, BACKUP);
    expect(sent.map((a) => a.service)).toEqual([...HOST_SERVICES]);
    for (const a of sent) expect(a).toMatchObject({ role: 'promoting', term: 2, peerHost: '', joining: false, seq: 2 });
    // Not primary yet: no lease, no permit; the heartbeat shows the change taken but still says backup.
    expect(renewalsIn(effects)).toEqual([]);
    expect(permitsIn(effects, BACKUP)).toEqual([]);
    expect(heartbeatsIn(effects, BACKUP)).toMatchObject([{ role: 'backup', controlSeq: 1, term: 1 }]);
  });

  it('runs the checkpointer from the epoch after the one the guest restored, whatever older report of the guest comes after (vopr seed 106989)', () => {
    const p = claiming();
    // A copy of the guest's report as a backup, an epoch behind, delayed on the bus past the restore.
    p.d.report('guest', { epoch: IMAGE_EPOCH - 1, synced: true, role: 'backup', assignmentSeq: p.d.current('guest').seq - 1 }, 2_200);
    const sent = assignmentsIn(p.d.answer('ok', undefined, 2_500), BACKUP);
    expect(p.d.core.state).toBe('primary');
    expect(sent.map((a) => [a.role, a.firstEpoch])).toEqual(HOST_SERVICES.map(() => ['primary', IMAGE_EPOCH + 1]));
  });

  it('claims the lease only once both the guest and the acker report ready on the current assignment', () => {
    const { d } = promoting();
    const promotingSeq = d.current('guest').seq;
    // The guest is ready, the acker not yet.
    d.report('guest', { ready: true, epoch: IMAGE_EPOCH });
    d.report('acker', { ready: false });
    // The acker says ready, but about its previous assignment (a report that crossed the new one).
    d.report('acker', { ready: true, assignmentSeq: promotingSeq - 1 });
    // …or about an assignment of an earlier incarnation of the agent.
    d.report('acker', { ready: true, agentIncarnation: 0 });
    // The checkpointer and the netbuffer have nothing to do with it.
    d.report('checkpointer', { ready: true });
    d.report('netbuffer', { ready: true });
    expect(d.core.state).toBe('promoting');
    expect(renewalsIn(d.log)).toEqual([]);
    const effects = d.report('acker', { ready: true }, 1_800);
    expect(d.core.state).toBe('claiming');
    expect(renewalsIn(effects)).toEqual([{ type: 'cas', vmId: VM, expectedRevision: 0, record: { primaryHost: BACKUP, term: 2, expiresAtMs: (1_800 + LEASE_US) / 1_000, backupHost: '', holderIncarnation: 1 } }]);
  });

  it('does not claim when the guest’s ready report is about an older assignment', () => {
    const { d } = promoting();
    d.report('acker', { ready: true });
    d.report('guest', { ready: true, assignmentSeq: 1 });
    expect(d.core.state).toBe('promoting');
    d.report('guest', { ready: true });
    expect(d.core.state).toBe('claiming');
  });

  it('on its claim confirmed, sends primary assignments under term T with no peer and the epoch after the image’s, a permit, and heartbeats at once as primary', () => {
    const { d, effects } = promoted();
    const sent = assignmentsIn(effects, BACKUP);
    expect(sent.map((a) => a.service)).toEqual([...HOST_SERVICES]);
    for (const a of sent) expect(a).toMatchObject({ role: 'primary', term: 2, peerHost: '', joining: false, firstEpoch: IMAGE_EPOCH + 1, joinSeq: 0 });
    // The permit counts from the claim's send (2_000), not from its answer.
    expect(permitsIn(effects, BACKUP)).toEqual([{ type: 'releasePermit', vmId: VM, term: 2, host: BACKUP, fromUs: 2_000, untilUs: 2_000 + LEASE_US - MARGIN_US, seq: 1 }]);
    expect(heartbeatsIn(effects, BACKUP)).toEqual([{ type: 'heartbeat', vmId: VM, term: 2, host: BACKUP, role: 'primary', epoch: 0, synced: true, controlSeq: 1, incarnation: expect.any(Number), chunksStaged: 0, followedAgentIncarnation: 0 }]);
    expect(d.core.term).toBe(2);
    // That heartbeat renews, as every primary heartbeat does, on the claim's revision.
    expect(renewalsIn(effects)).toMatchObject([{ expectedRevision: d.revision, record: { primaryHost: BACKUP, term: 2 } }]);
  });

  it('a claim that conflicts on its own lease (the failover service wrote it) renews again at once on the revision it was told', () => {
    const { d } = claiming();
    const retry = d.answer('conflict', { primaryHost: BACKUP, term: 2, expiresAtMs: 40, backupHost: '' });
    expect(renewalsIn(retry)).toEqual([{ type: 'cas', vmId: VM, expectedRevision: d.revision, record: { primaryHost: BACKUP, term: 2, expiresAtMs: (2_000 + LEASE_US) / 1_000, backupHost: '', holderIncarnation: 1 } }]);
    expect(d.core.state).toBe('claiming');
    // Once per heartbeat: a second conflict waits for the tick.
    expect(renewalsIn(d.answer('conflict', { primaryHost: BACKUP, term: 2, expiresAtMs: 40, backupHost: '' }))).toEqual([]);
  });

  it('while claiming, renews under term T at every tick until a renewal succeeds; heartbeats still say backup, and no permit leaves', () => {
    const { d } = claiming();
    d.answer('unavailable');
    for (let i = 0; i < 3; i++) {
      d.reportAll({ guest: { ready: true, epoch: IMAGE_EPOCH }, acker: { ready: true } });
      const effects = d.beat();
      expect(renewalsIn(effects)).toMatchObject([{ record: { primaryHost: BACKUP, term: 2 } }]);
      expect(heartbeatsIn(effects, BACKUP)).toMatchObject([{ role: 'backup' }]);
      d.answer('unavailable');
    }
    expect(d.core.state).toBe('claiming');
    expect(permitsIn(d.log, BACKUP)).toEqual([]);
    d.beat();
    d.answer('ok');
    expect(d.core.state).toBe('primary');
  });

  it('a claim answered by a lease of another host or a newer term deposes it: it never runs as primary, grants nothing and renews no more', () => {
    const { d } = claiming();
    const before = d.log.length;
    expect(d.answer('conflict', { primaryHost: SPARE, term: 3, expiresAtMs: 40 })).toEqual([]);
    expect(d.core.state).toBe('deposed');
    expect(permitsIn(d.log, BACKUP)).toEqual([]);
    d.beat();
    expect(d.log.slice(before).filter((e) => e.kind === 'lease' || (e.kind === 'send' && e.msg.type === 'assignment'))).toEqual([]);
  });

  it('defers role changes that arrive while promoting or claiming: not taken, counted, so the failover service repeats them', () => {
    for (const setup of [promoting, claiming]) {
      const { d } = setup();
      const state = d.core.state;
      const before = d.log.length;
      const effects = d.control(d.roleChange('primary', 2, SPARE));
      expect(effects, state).toEqual([]);
      expect(d.control(d.roleChange('backup', 3, SPARE)), state).toEqual([]);
      expect(d.core.state).toBe(state);
      expect(d.core.stats.roleChangesDeferred, state).toBe(2);
      expect(d.core.stats.staleRoleChanges, state).toBe(0);
      d.reportAll({ guest: { ready: true, epoch: IMAGE_EPOCH }, acker: { ready: true } });
      // Heartbeats still show only the promotion taken.
      expect(heartbeatsIn(d.beat(), BACKUP).map((h) => h.controlSeq), state).toEqual([1]);
      expect(d.log.slice(before).filter((e) => e.kind === 'send' && e.msg.type === 'assignment' && e.msg.seq > 2), state).toEqual([]);
    }
  });

  it('a take-over for this same host under a newer term, mid-promotion, re-terms the promotion: taken at once, and the claim renews under the newer term (vopr seed 237)', () => {
    // The failover service restarted while this host promoted (a slow handover), heard it as a synced backup and took over again.
    for (const setup of [promoting, claiming]) {
      const { d } = setup();
      const state = d.core.state;
      const again = d.roleChange('primary', 3, '');
      const effects = d.control(again);
      expect(d.core.state, state).toBe(state);
      expect(d.core.stats.promotionsRetermed, state).toBe(1);
      expect(heartbeatsIn(effects, BACKUP).map((h) => h.controlSeq), state).toEqual([again.seq]);
      // No new assignment: the services go on restoring the same image.
      expect(assignmentsIn(effects, BACKUP), state).toEqual([]);
      if (state === 'claiming') expect(renewalsIn(effects), state).toMatchObject([{ record: { primaryHost: BACKUP, term: 3 } }]);
      else d.reportAll({ guest: { ready: true, epoch: IMAGE_EPOCH, role: 'promoting' }, acker: { ready: true } }, 2_000);
      expect(renewalsIn(d.log).at(-1), state).toMatchObject({ record: { primaryHost: BACKUP, term: 3 } });
      const done = d.answer('ok');
      expect(d.core.state, state).toBe('primary');
      expect(assignmentsIn(done, BACKUP).map((a) => [a.role, a.term]), state).toEqual(HOST_SERVICES.map(() => ['primary', 3]));
      expect(permitsIn(done, BACKUP), state).toMatchObject([{ term: 3 }]);
    }
  });

  it('a claim whose renewal finds the lease taken over again for this same host under a newer term stays claiming for that role change, and is not deposed', () => {
    const { d } = claiming();
    expect(d.answer('conflict', { primaryHost: BACKUP, term: 3, expiresAtMs: 40, backupHost: '' })).toEqual([]);
    expect(d.core.state).toBe('claiming');
    expect(d.core.stats.claimsOvertaken).toBe(1);
    expect(permitsIn(d.log, BACKUP)).toEqual([]);
    d.control(d.roleChange('primary', 3, ''));
    expect(renewalsIn(d.log).at(-1)).toMatchObject({ record: { primaryHost: BACKUP, term: 3 } });
    d.answer('ok');
    expect(d.core.state).toBe('primary');
    expect(permitsIn(d.log, BACKUP)).toMatchObject([{ term: 3 }]);
  });

  it('takes the repeat of a deferred role change once it is primary', () => {
    const { d } = promoted();
    const membership = d.roleChange('primary', 2, SPARE, 2);
    const effects = d.control(membership);
    expect(assignmentsIn(effects, BACKUP)).toHaveLength(4);
    expect(heartbeatsIn(effects, BACKUP).map((h) => h.controlSeq)).toEqual([2]);
  });

  it('a backup whose image is a just-created VM\'s (epoch 0) refuses a promotion after committed output: chosen from heartbeats of before its reboot (vopr seed 1173)', () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    d.reportAll({ guest: { epoch: 0, synced: true } });
    const effects = d.control(d.roleChange('primary', 2, '', undefined, 40));
    expect(d.core.state).toBe('backup');
    expect(assignmentsIn(effects, BACKUP)).toEqual([]);
    expect(d.core.stats.promotionsRefused).toBe(1);
    expect(effects).toContainEqual(expect.objectContaining({ kind: 'log', level: 'error', event: 'agent.promotion_refused' }));
    // The same image is promoted when nothing was committed yet (the VM was just created), or when its epoch is not 0.
    const fresh = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    fresh.reportAll({ guest: { epoch: 0, synced: true } });
    fresh.control(fresh.roleChange('primary', 2, '', undefined, 0));
    expect(fresh.core.state).toBe('promoting');
    const behind = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    behind.reportAll({ guest: { epoch: 39, synced: true } });
    behind.control(behind.roleChange('primary', 2, '', undefined, 40));
    expect(behind.core.state).toBe('promoting');
  });

  it('a backup refuses a promotion whose term is not above its own (a stale copy or a forgery): it would make two primaries of one term', () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    d.reportAll({ guest: { epoch: 3, synced: true } });
    const effects = d.control(d.roleChange('primary', 1, ''));
    expect(d.core.state).toBe('backup');
    expect(assignmentsIn(effects, BACKUP)).toEqual([]);
    expect(renewalsIn(effects)).toEqual([]);
    expect(d.core.stats.promotionsRefused).toBe(1);
    expect(effects).toContainEqual(expect.objectContaining({ kind: 'log', level: 'error', event: 'agent.promotion_refused' }));
    // The take-over's own change, under the next term, promotes it.
    d.control(d.roleChange('primary', 2, ''));
    expect(d.core.state).toBe('promoting');
  });

  it('a spare told to become primary refuses: no assignment, counted, warns, and reports the change taken', () => {
    const d = AgentDriver.started(SPARE, 'spare', '');
    const effects = d.control(d.roleChange('primary', 2, ''));
    expect(d.core.state).toBe('spare');
    expect(assignmentsIn(effects, SPARE)).toEqual([]);
    expect(renewalsIn(effects)).toEqual([]);
    expect(d.core.stats.promotionsRefused).toBe(1);
    expect(effects).toContainEqual(expect.objectContaining({ kind: 'log', level: 'warn', event: 'agent.promotion_refused' }));
    expect(heartbeatsIn(effects, SPARE)).toMatchObject([{ role: 'spare', controlSeq: 1 }]);
  });

  it('ignores a role change addressed to another host', () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    const other = { ...d.roleChange('primary', 2, ''), host: SPARE };
    expect(d.control(other)).toEqual([]);
    expect(d.core.state).toBe('backup');
    expect(d.core.stats.staleRoleChanges + d.core.stats.roleChangesDeferred).toBe(0);
  });
});

describe('HostAgentCore: membership', () => {
  it('a RoleChange(primary, peer P) to a primary sends primary assignments naming P, joining, under the same term and first epoch, and heartbeats and renews at once', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    d.answer('ok');
    // The failover service named the join by the spare's role change (seq 7 of its own).
    const effects = d.control(d.roleChange('primary', 1, SPARE, undefined, 0, 7), 3_000);
    const sent = assignmentsIn(effects, PRIMARY);
    expect(sent.map((a) => a.service)).toEqual([...HOST_SERVICES]);
    for (const a of sent) expect(a).toMatchObject({ role: 'primary', term: 1, peerHost: SPARE, joining: true, firstEpoch: 1, seq: 2, joinSeq: 7 });
    expect(heartbeatsIn(effects, PRIMARY)).toMatchObject([{ role: 'primary', controlSeq: 1 }]);
    expect(renewalsIn(effects)).toHaveLength(1);
    expect(d.core.state).toBe('primary');
  });

  it('a promoted primary keeps its term and the first epoch of its term through membership changes', () => {
    const { d } = promoted();
    const joined = assignmentsIn(d.control(d.roleChange('primary', 2, SPARE, undefined, 0, 5)), BACKUP);
    expect(joined.map((a) => a.service)).toEqual([...HOST_SERVICES]);
    for (const a of joined) expect(a).toMatchObject({ role: 'primary', term: 2, peerHost: SPARE, joining: true, firstEpoch: IMAGE_EPOCH + 1, joinSeq: 5 });
    // Its backup is dropped again: no peer, nothing to join.
    const dropped = assignmentsIn(d.control(d.roleChange('primary', 2, '')), BACKUP);
    expect(dropped.map((a) => a.service)).toEqual([...HOST_SERVICES]);
    for (const a of dropped) expect(a).toMatchObject({ role: 'primary', term: 2, peerHost: '', joining: false, firstEpoch: IMAGE_EPOCH + 1, joinSeq: 0 });
  });

  it('its renewals carry the backup as last seen in the store, not the one its role change named', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    expect(d.pendingCas.record.backupHost).toBe(BACKUP);
    d.answer('ok');
    // The role change naming SPARE does not change what the renewals write…
    d.control(d.roleChange('primary', 1, SPARE));
    expect(d.pendingCas.record.backupHost).toBe(BACKUP);
    // …the store's record does: the failover service wrote it before telling us.
    d.answer('conflict', { primaryHost: PRIMARY, term: 1, expiresAtMs: 30, backupHost: SPARE });
    expect(d.pendingCas.record.backupHost).toBe(SPARE);
    d.answer('ok');
    d.reportAll();
    expect(renewalsIn(d.beat())).toMatchObject([{ record: { backupHost: SPARE } }]);
  });

  it('a deposed primary takes a membership change without renewing or joining anything', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.answer('conflict', { primaryHost: BACKUP, term: 2, expiresAtMs: 40 });
    const effects = d.control(d.roleChange('primary', 1, SPARE));
    expect(d.core.state).toBe('deposed');
    expect(assignmentsIn(effects, PRIMARY)).toEqual([]);
    expect(renewalsIn(effects)).toEqual([]);
    expect(heartbeatsIn(effects, PRIMARY)).toMatchObject([{ role: 'primary', controlSeq: 1 }]);
  });
});

describe('HostAgentCore: join', () => {
  it('a RoleChange(backup) to a spare sends backup assignments under its term, naming the primary, joining', () => {
    const d = AgentDriver.started(SPARE, 'spare', '');
    const effects = d.control(d.roleChange('backup', 3, PRIMARY));
    expect(d.core.state).toBe('backup');
    const sent = assignmentsIn(effects, SPARE);
    expect(sent.map((a) => a.service)).toEqual([...HOST_SERVICES]);
    // Its join is named by the role change that made it (seq 1): it waits for a base that names the same.
    for (const a of sent) expect(a).toMatchObject({ role: 'backup', term: 3, peerHost: PRIMARY, joining: true, firstEpoch: 0, seq: 2, joinSeq: 1 });
    expect(heartbeatsIn(effects, SPARE)).toMatchObject([{ role: 'backup', term: 3, controlSeq: 1 }]);
    expect(d.core.term).toBe(3);
  });

  it("a backup told to join again reports no complete image until its guest reports on the new join: the old one's image is replaced", () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    d.reportAll({ guest: { epoch: 9, synced: true } });
    expect(heartbeatsIn(d.beat(), BACKUP)).toMatchObject([{ role: 'backup', epoch: 9, synced: true }]);
    d.control(d.roleChange('backup', 1, PRIMARY));
    // The guest has not yet reported on the join: its last report describes the image the join throws away.
    expect(heartbeatsIn(d.beat(), BACKUP)).toMatchObject([{ role: 'backup', epoch: 0, synced: false, controlSeq: 1 }]);
    d.report('guest', { epoch: 30, synced: false });
    expect(heartbeatsIn(d.beat(), BACKUP)).toMatchObject([{ role: 'backup', epoch: 30, synced: false }]);
  });

  it("a backup's heartbeats carry the chunks its guest staged, from any report: a join's progress before its guest reports on it", () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    d.reportAll({ guest: { epoch: 9, synced: true, chunksStaged: 40 } });
    d.control(d.roleChange('backup', 1, PRIMARY));
    // The count runs over the guest's lifetime: its report from before the join is where the join's count begins.
    expect(heartbeatsIn(d.beat(), BACKUP)).toMatchObject([{ role: 'backup', epoch: 0, synced: false, controlSeq: 1, chunksStaged: 40 }]);
    d.report('guest', { epoch: 0, synced: false, chunksStaged: 52 });
    expect(heartbeatsIn(d.beat(), BACKUP)).toMatchObject([{ role: 'backup', epoch: 0, chunksStaged: 52 }]);
  });

  it('a primary beats no staged chunks, whatever its guest counted as a backup before', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll({ guest: { chunksStaged: 40 } });
    expect(heartbeatsIn(d.beat(), PRIMARY)).toMatchObject([{ role: 'primary', chunksStaged: 0 }]);
  });

  it("a backup's heartbeats name the primary agent whose stream its guest's image follows; a primary's name none", () => {
    const backup = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    backup.reportAll({ guest: { epoch: 9, synced: true, followedAgentIncarnation: 7_001 } });
    expect(heartbeatsIn(backup.beat(), BACKUP)).toMatchObject([{ role: 'backup', synced: true, followedAgentIncarnation: 7_001 }]);
    // Told to join again: the guest's last report is of the image the join throws away, and of its stream.
    backup.control(backup.roleChange('backup', 1, PRIMARY));
    expect(heartbeatsIn(backup.beat(), BACKUP)).toMatchObject([{ role: 'backup', synced: false, followedAgentIncarnation: 0 }]);
    backup.report('guest', { epoch: 30, synced: true, followedAgentIncarnation: 7_002 });
    expect(heartbeatsIn(backup.beat(), BACKUP)).toMatchObject([{ role: 'backup', synced: true, followedAgentIncarnation: 7_002 }]);
    const primary = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    primary.reportAll({ guest: { followedAgentIncarnation: 7_001 } });
    expect(heartbeatsIn(primary.beat(), PRIMARY)).toMatchObject([{ role: 'primary', followedAgentIncarnation: 0 }]);
  });

  it('a repeated join (a new seq) sends a new backup assignment', () => {
    const d = AgentDriver.started(SPARE, 'spare', '');
    d.control(d.roleChange('backup', 1, PRIMARY));
    const again = d.control(d.roleChange('backup', 1, PRIMARY));
    expect(d.core.state).toBe('backup');
    expect(assignmentsIn(again, SPARE).map((a) => [a.role, a.seq, a.joining])).toEqual(HOST_SERVICES.map(() => ['backup', 3, true]));
  });

  it('a deposed primary told to join becomes a backup of the new primary, under the new term', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.answer('conflict', { primaryHost: BACKUP, term: 2, expiresAtMs: 40 });
    const effects = d.control(d.roleChange('backup', 2, BACKUP));
    expect(d.core.state).toBe('backup');
    expect(rolesOf(assignmentsIn(effects, PRIMARY))).toEqual(['backup', 'backup', 'backup', 'backup']);
    expect(assignmentsIn(effects, PRIMARY)[0]).toMatchObject({ term: 2, peerHost: BACKUP, joining: true });
    expect(heartbeatsIn(effects, PRIMARY)).toMatchObject([{ role: 'backup', term: 2 }]);
    d.reportAll();
    expect(renewalsIn(d.beat())).toEqual([]);
  });

  it('a primary told to join under a newer term steps down and joins, before its lease says so: only a take-over makes a newer term', () => {
    // Came back as the VM's first primary while the lease store is out: no renewal answered, so never deposed by it.
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.answer('unavailable');
    expect(d.core.state).toBe('primary');
    const effects = d.control(d.roleChange('backup', 2, BACKUP));
    expect(d.core.state).toBe('backup');
    expect(d.core.stats.steppedDown).toBe(1);
    expect(d.core.stats.roleChangesRefused).toBe(0);
    expect(assignmentsIn(effects, PRIMARY)[0]).toMatchObject({ role: 'backup', term: 2, peerHost: BACKUP, joining: true, joinSeq: 1 });
    expect(heartbeatsIn(effects, PRIMARY)).toMatchObject([{ role: 'backup', term: 2, controlSeq: 1 }]);
    expect(permitsIn(effects, PRIMARY)).toEqual([]);
    expect(effects).toContainEqual(expect.objectContaining({ kind: 'log', event: 'agent.stepped_down' }));
    d.reportAll();
    expect(renewalsIn(d.beat())).toEqual([]);
  });

  it('a backup or spare refuses a join under an older term than its own (a forgery): terms only grow, and its services would refuse that term', () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    d.control(d.roleChange('backup', 3, PRIMARY));
    expect(d.core.term).toBe(3);
    const effects = d.control(d.roleChange('backup', 2, PRIMARY));
    expect(d.core.term).toBe(3);
    expect(d.core.stats.roleChangesRefused).toBe(1);
    expect(assignmentsIn(effects, BACKUP)).toEqual([]);
    expect(heartbeatsIn(effects, BACKUP)).toMatchObject([{ term: 3 }]);
  });

  it('a primary refuses a join under its own term (a stale copy or a forgery): it stays primary, counted', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.answer('ok');
    d.control(d.roleChange('backup', 1, BACKUP));
    expect(d.core.state).toBe('primary');
    expect(d.core.stats.roleChangesRefused).toBe(1);
    expect(d.core.stats.steppedDown).toBe(0);
  });
});

describe('HostAgentCore: stale role changes', () => {
  it('ignores a role change whose seq is not above the newest taken, counting it; heartbeats report the newest taken', () => {
    const d = AgentDriver.started(SPARE, 'spare', '');
    const join = d.roleChange('backup', 1, PRIMARY, 5);
    d.control(join);
    const older = d.roleChange('backup', 1, BACKUP, 4);
    expect(d.control(join)).toEqual([]);
    expect(d.control(older)).toEqual([]);
    // A stale promotion does not promote.
    expect(d.control(d.roleChange('primary', 2, '', 3))).toEqual([]);
    expect(d.core.stats.staleRoleChanges).toBe(3);
    expect(d.core.state).toBe('backup');
    d.reportAll();
    expect(heartbeatsIn(d.beat(), SPARE)).toMatchObject([{ controlSeq: 5 }]);
    expect(d.current().peerHost).toBe(PRIMARY);
  });

  it('a stale copy of an earlier membership change does not undo a newer one', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    const add = d.roleChange('primary', 1, SPARE, 1);
    const drop = d.roleChange('primary', 1, '', 2);
    d.control(add);
    d.control(drop);
    expect(d.control(add)).toEqual([]);
    expect(d.current().peerHost).toBe('');
    expect(d.core.stats.staleRoleChanges).toBe(1);
  });

  it('a stale role change while promoting is counted stale, not deferred', () => {
    const { d, change } = promoting();
    expect(d.control(change)).toEqual([]);
    expect(d.core.stats.staleRoleChanges).toBe(1);
    expect(d.core.stats.roleChangesDeferred).toBe(0);
  });
});

describe('HostAgentCore: heartbeat timer', () => {
  it('keeps its heartbeat timer armed one interval ahead through role changes', () => {
    const d = AgentDriver.started(SPARE, 'spare', '');
    d.control(d.roleChange('backup', 1, PRIMARY), 4_000);
    expect(d.armed.get(BEAT)).toBe(4_000 + INTERVAL_US);
  });
});
