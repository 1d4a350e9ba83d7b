import { MAX_REPORTS_REORDERED } from '../../../services/host-agent/core.js';
/**
 * HostAgentCore and its services: their reports (restarts, stale copies,
 * silence), assignments sent again to a service that missed one, what
 * heartbeats say of the host's image, and the planted bugs.
 */
import { describe, expect, it } from 'vitest';
import { HOST_SERVICES, type HostService, type ServiceStatus } from '../../../lib/codec/messages.js';
import type { Effect } from '../../../lib/runtime/types.js';
import { AgentDriver, assignmentsIn, BACKUP, BEAT, heartbeatsIn, INTERVAL_US, LEASE_US, MARGIN_US, permitsIn, PRIMARY, renewalsIn, rolesOf, S, SILENCE_US, SPARE, VM } from './support.js';

const OTHER_SERVICES: HostService[] = ['checkpointer', 'netbuffer', 'acker'];

/** A backup promoted under term 2, waiting for its services' restore. */
function promotingBackup(plantedBug?: 'stale-term-accepted') {
  const d = AgentDriver.started(BACKUP, 'backup', PRIMARY, plantedBug === undefined ? {} : { plantedBug });
  d.reportAll({ guest: { epoch: 6, synced: true } });
  d.control(d.roleChange('primary', 2, ''));
  return d;
}

/** …that claims and gets its claim. */
function promotedBackup(plantedBug?: 'stale-term-accepted') {
  const d = promotingBackup(plantedBug);
  d.reportAll({ guest: { ready: true, epoch: 6 }, acker: { ready: true } });
  const effects = d.answer('ok');
  return { d, effects };
}

/** Everything after `mark` in the driver's log. */
const since = (d: AgentDriver, mark: number): Effect[] => d.log.slice(mark);
/** Beats a loop may take before it counts as a runaway: the silences waited for here are a few dozen beats. */
const MAX_BEATS = 1_000;

describe('HostAgentCore: service restarts', () => {
  it('a backup whose guest restarts has lost its image: spare assignments, and heartbeats say spare', () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    d.reportAll({ guest: { epoch: 4, synced: true } });
    const effects = d.restart('guest');
    expect(d.core.state).toBe('spare');
    expect(rolesOf(assignmentsIn(effects, BACKUP))).toEqual(['spare', 'spare', 'spare', 'spare']);
    expect(assignmentsIn(effects, BACKUP)[0]).toMatchObject({ peerHost: '', joining: false });
    expect(d.core.stats.serviceRestarts).toBe(1);
    expect(effects).toContainEqual(expect.objectContaining({ kind: 'log', level: 'warn', event: 'agent.service_restarted' }));
    d.reportAll();
    expect(heartbeatsIn(d.beat(), BACKUP)).toMatchObject([{ role: 'spare', epoch: 0, synced: false }]);
  });

  it('a backup or spare whose other service restarts sends that service the current assignment again, and nothing else', () => {
    for (const [host, role, peer] of [[BACKUP, 'backup', PRIMARY], [SPARE, 'spare', '']] as const) {
      for (const service of OTHER_SERVICES) {
        const d = AgentDriver.started(host, role, peer);
        d.reportAll();
        const effects = d.restart(service);
        expect(d.core.state, `${role}/${service}`).toBe(role);
        expect(assignmentsIn(effects, host).map((a) => [a.service, a.role, a.seq]), `${role}/${service}`).toEqual([[service, role, 1]]);
      }
    }
    // A spare's guest restarting holds nothing either.
    const d = AgentDriver.started(SPARE, 'spare', '');
    d.reportAll();
    expect(assignmentsIn(d.restart('guest'), SPARE).map((a) => a.service)).toEqual(['guest']);
    expect(d.core.state).toBe('spare');
  });

  it('a primary whose service restarts halts: stopped assignments, the heartbeat timer cancelled, and no more heartbeats, renewals or permits', () => {
    for (const service of HOST_SERVICES) {
      const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
      d.reportAll();
      d.answer('ok');
      const effects = d.restart(service);
      expect(d.core.state, service).toBe('halted');
      expect(rolesOf(assignmentsIn(effects, PRIMARY)), service).toEqual(['stopped', 'stopped', 'stopped', 'stopped']);
      expect(effects, service).toContainEqual({ kind: 'cancelTimer', name: BEAT });
      expect(d.armed.has(BEAT)).toBe(false);
      const mark = d.log.length;
      // Whatever comes later: a late tick, an answer, a role change, reports.
      d.handle({ kind: 'timer', name: BEAT }, 2 * INTERVAL_US);
      d.answer('ok');
      d.control(d.roleChange('primary', 1, SPARE));
      d.reportAll();
      d.restart(service);
      expect(since(d, mark), service).toEqual([]);
      expect(d.core.state).toBe('halted');
    }
  });

  it('a restart while promoting, claiming or deposed halts too', () => {
    const p = promotingBackup();
    p.restart('checkpointer');
    expect(p.core.state).toBe('halted');
    const c = promotingBackup();
    c.reportAll({ guest: { ready: true }, acker: { ready: true } });
    expect(c.core.state).toBe('claiming');
    c.restart('guest');
    expect(c.core.state).toBe('halted');
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    d.answer('conflict', { primaryHost: BACKUP, term: 2, expiresAtMs: 40 });
    d.restart('netbuffer');
    expect(d.core.state).toBe('halted');
  });

  it('the first report of a service is no restart, whatever its incarnation', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    expect(d.core.stats.serviceRestarts).toBe(0);
    expect(d.core.state).toBe('primary');
  });

  it('ignores a report of an earlier incarnation of a service, counting it', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll({ checkpointer: { epoch: 8 } });
    const stale = d.status('checkpointer', { incarnation: d.incarnations.get('checkpointer')! - 1, epoch: 1 });
    expect(d.handle({ kind: 'message', subject: S.host(PRIMARY).status, msg: stale })).toEqual([]);
    expect(d.core.stats.staleStatuses).toBe(1);
    expect(d.core.state).toBe('primary');
    // What the heartbeat reports comes from the newest incarnation.
    expect(heartbeatsIn(d.beat(), PRIMARY)).toMatchObject([{ epoch: 8 }]);
  });

  it('ignores a late copy of an earlier report of the same incarnation, and a repeat of the newest: the heartbeat speaks of the newest', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    const early = d.status('checkpointer', { epoch: 7 });
    const newest = d.status('checkpointer', { epoch: 9 });
    d.handle({ kind: 'message', subject: S.host(PRIMARY).status, msg: newest });
    // The earlier report was delayed on the bus; then the newest is repeated.
    expect(d.handle({ kind: 'message', subject: S.host(PRIMARY).status, msg: early })).toEqual([]);
    expect(d.handle({ kind: 'message', subject: S.host(PRIMARY).status, msg: newest })).toEqual([]);
    expect(d.core.stats.staleStatuses).toBe(2);
    expect(d.core.stats.serviceRestarts).toBe(0);
    expect(heartbeatsIn(d.beat(), PRIMARY)).toMatchObject([{ epoch: 9 }]);
  });

  it('takes a report far behind the newest: that newest was forged, and would have silenced the service for good', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    const forged = d.status('checkpointer', { epoch: 9, reportSeq: 1_000_000 });
    d.handle({ kind: 'message', subject: S.host(PRIMARY).status, msg: forged });
    // A late copy stays refused within the reorder window; the service's next real reports are far behind, and stand.
    expect(d.handle({ kind: 'message', subject: S.host(PRIMARY).status, msg: d.status('checkpointer', { epoch: 4, reportSeq: 1_000_000 - MAX_REPORTS_REORDERED }) })).toEqual([]);
    expect(d.core.stats.staleStatuses).toBe(1);
    d.handle({ kind: 'message', subject: S.host(PRIMARY).status, msg: d.status('checkpointer', { epoch: 10, reportSeq: 3 }) });
    expect(d.core.stats.staleStatuses).toBe(1);
    expect(heartbeatsIn(d.beat(), PRIMARY)).toMatchObject([{ epoch: 10 }]);
  });

  it('ignores a report addressed for another host', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    const other = { ...d.status('guest', { incarnation: 99_999 }), host: SPARE };
    expect(d.handle({ kind: 'message', subject: S.host(PRIMARY).status, msg: other })).toEqual([]);
    expect(d.core.state).toBe('primary');
    expect(d.core.stats.foreignMessages).toBe(1);
  });

  it('ignores, and counts, a report or a role change of another VM: a restart there is nothing to this one', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    const otherVm = { ...d.status('guest', { incarnation: 99_999 }), vmId: 'another-vm' };
    expect(d.handle({ kind: 'message', subject: S.host(PRIMARY).status, msg: otherVm })).toEqual([]);
    expect(d.handle({ kind: 'message', subject: S.control(PRIMARY), msg: { ...d.roleChange('backup', 9, SPARE), vmId: 'another-vm' } })).toEqual([]);
    expect(d.core.state).toBe('primary');
    expect(d.core.stats.foreignMessages).toBe(2);
  });

  it('drops and counts a message of a type its subjects never carry (the codec decodes each subject as its own type: a bug)', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    const heartbeat = { type: 'heartbeat' as const, vmId: VM, term: 1, host: PRIMARY, role: 'backup' as const, epoch: 0, synced: true, controlSeq: 99, incarnation: 1, chunksStaged: 0, followedAgentIncarnation: 0 };
    expect(d.handle({ kind: 'message', subject: S.control(PRIMARY), msg: heartbeat })).toEqual([]);
    expect(d.core.stats.unexpectedMessages).toBe(1);
    expect(d.core.state).toBe('primary');
  });
});

describe('HostAgentCore: silent services', () => {
  it('a service silent longer than serviceSilenceUs is dead: the host halts at the next tick, in any state that leaves an image elsewhere', () => {
    const setups: [string, () => AgentDriver][] = [
      ['spare', () => AgentDriver.started(SPARE, 'spare', '')],
      ['backup', () => AgentDriver.started(BACKUP, 'backup', PRIMARY)],
      ['primary', () => AgentDriver.started(PRIMARY, 'primary', BACKUP)],
    ];
    for (const [state, setup] of setups) {
      const d = setup();
      expect(d.core.state).toBe(state);
      // A primary's checkpointer says its backup holds a complete image.
      const fields = { checkpointer: { synced: true } };
      d.reportAll(fields);
      const lastHeardUs = d.nowUs;
      // The others keep reporting; the acker falls silent.
      const isHalted = () => d.core.state === 'halted';
      let halted: Effect[] = [];
      for (let beats = 0; !isHalted(); beats++) {
        if (beats > MAX_BEATS) throw new Error(`runaway: ${state} never halted`);
        for (const s of HOST_SERVICES) if (s !== 'acker') d.report(s, fields[s as 'checkpointer'] ?? {}, d.armed.get(BEAT)!);
        const effects = d.beat();
        if (isHalted()) halted = effects;
        else expect(d.nowUs - lastHeardUs, state).toBeLessThanOrEqual(SILENCE_US);
      }
      expect(d.nowUs - lastHeardUs, state).toBeGreaterThan(SILENCE_US);
      expect(d.nowUs - lastHeardUs, state).toBeLessThanOrEqual(SILENCE_US + INTERVAL_US);
      expect(rolesOf(assignmentsIn(halted, d.host)), state).toEqual(['stopped', 'stopped', 'stopped', 'stopped']);
      expect(heartbeatsIn(halted, d.host), state).toEqual([]);
      expect(renewalsIn(halted), state).toEqual([]);
      expect(halted, state).toContainEqual(expect.objectContaining({ kind: 'log', level: 'warn', event: 'agent.service_dead', fields: expect.objectContaining({ service: 'acker' }) }));
      expect(d.core.stats.serviceDeaths, state).toBe(1);
    }
  });

  it('holding the only image (taking over, or a primary whose backup is not complete), the host waits for a silent service, logs it once and carries on when it reports', () => {
    const setups: [string, () => AgentDriver, Partial<Record<HostService, Partial<ServiceStatus>>>][] = [
      ['promoting', () => promotingBackup(), { guest: { epoch: 6, synced: true } }],
      ['primary', () => AgentDriver.started(PRIMARY, 'primary', BACKUP), { checkpointer: { synced: false } }],
    ];
    for (const [state, setup, fields] of setups) {
      const d = setup();
      d.reportAll(fields);
      const mark = d.log.length;
      const lastHeardUs = d.nowUs;
      // The acker is silent for five times the bound: the host neither halts nor stops beating.
      for (let beats = 0; d.nowUs - lastHeardUs <= 5 * SILENCE_US; beats++) {
        if (beats > MAX_BEATS) throw new Error('runaway: the clock did not move on');
        for (const s of HOST_SERVICES) if (s !== 'acker') d.report(s, fields[s] ?? {}, d.armed.get(BEAT)!);
        expect(heartbeatsIn(d.beat(), d.host), state).toHaveLength(1);
        expect(d.core.state, state).toBe(state);
      }
      const silent = d.log.slice(mark).filter((e) => e.kind === 'log' && e.event === 'agent.service_silent');
      expect(silent, state).toEqual([expect.objectContaining({ level: 'warn', fields: expect.objectContaining({ service: 'acker', state }) })]);
      expect(d.core.stats.serviceDeaths, state).toBe(0);
      expect(d.core.stats.silencesWaitedOut, state).toBeGreaterThan(3);
      // It reports again: nothing was lost, and a later silence is logged again.
      d.reportAll(fields, d.armed.get(BEAT)!);
      d.beat();
      expect(d.core.state, state).toBe(state);
    }
  });

  it('a primary halts for a silent service once its backup is complete, not before', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll({ checkpointer: { synced: false } });
    const lastHeardUs = d.nowUs;
    for (let beats = 0; d.nowUs - lastHeardUs <= 2 * SILENCE_US; beats++) {
      if (beats > MAX_BEATS) throw new Error('runaway: the clock did not move on');
      d.report('guest', {}, d.armed.get(BEAT)!);
      d.report('netbuffer', {}, d.nowUs);
      d.report('checkpointer', { synced: false }, d.nowUs);
      d.beat();
    }
    expect(d.core.state).toBe('primary');
    // The new backup acknowledged its base epoch: the next check halts the host.
    d.report('checkpointer', { synced: true }, d.armed.get(BEAT)!);
    d.report('guest', {}, d.nowUs);
    d.report('netbuffer', {}, d.nowUs);
    d.beat();
    expect(d.core.state).toBe('halted');
    expect(d.core.stats.serviceDeaths).toBe(1);
    expect(d.log).toContainEqual(expect.objectContaining({ kind: 'log', event: 'agent.service_dead', fields: expect.objectContaining({ service: 'acker', silentForUs: expect.any(Number) }) }));
  });

  it("a primary does not halt on its checkpointer's word that a backup is complete when that word is of an earlier assignment (a backup the failover service may have dropped since)", () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    // The failover service drops the backup: the agent assigns the checkpointer a primary role with no peer.
    const before = d.current('checkpointer');
    d.control(d.roleChange('primary', 1, ''));
    expect(d.current('checkpointer').seq).toBeGreaterThan(before.seq);
    const lastHeardUs = d.nowUs;
    for (let beats = 0; d.nowUs - lastHeardUs <= 2 * SILENCE_US; beats++) {
      if (beats > MAX_BEATS) throw new Error('runaway: the clock did not move on');
      // A busy checkpointer, still on the earlier assignment, reports that backup's base acknowledged.
      d.report('checkpointer', { synced: true, assignmentSeq: before.seq }, d.armed.get(BEAT)!);
      d.report('guest', {}, d.nowUs);
      d.report('netbuffer', {}, d.nowUs);
      d.beat();
    }
    expect(d.core.state).toBe('primary');
    expect(d.core.stats.serviceDeaths).toBe(0);
    expect(d.core.stats.silencesWaitedOut).toBeGreaterThan(0);
    // On the current assignment, the same word halts it.
    d.report('checkpointer', { synced: true }, d.armed.get(BEAT)!);
    d.report('guest', {}, d.nowUs);
    d.report('netbuffer', {}, d.nowUs);
    d.beat();
    expect(d.core.state).toBe('halted');
  });

  it('a service silent exactly serviceSilenceUs is still alive', () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    d.reportAll({}, 500);
    d.handle({ kind: 'timer', name: BEAT }, 500 + SILENCE_US);
    expect(d.core.state).toBe('backup');
    d.handle({ kind: 'timer', name: BEAT }, 500 + SILENCE_US + 1);
    expect(d.core.state).toBe('halted');
  });

  it('a service never heard from is dead serviceSilenceUs after the agent started', () => {
    const d = AgentDriver.started(SPARE, 'spare', '');
    for (const s of ['guest', 'checkpointer', 'netbuffer'] as const) d.report(s);
    d.handle({ kind: 'timer', name: BEAT }, SILENCE_US);
    expect(d.core.state).toBe('spare');
    d.handle({ kind: 'timer', name: BEAT }, SILENCE_US + 1);
    expect(d.core.state).toBe('halted');
  });

  it('judges no service on a beat after the agent itself did not run for over an interval (reports may be waiting), and does on the next', () => {
    const d = AgentDriver.started(SPARE, 'spare', '');
    d.reportAll();
    // The whole process stalled: its next input is its own timer, long after the silence bound.
    const late = d.handle({ kind: 'timer', name: BEAT }, d.nowUs + SILENCE_US + INTERVAL_US);
    expect(d.core.state).toBe('spare');
    expect(d.core.stats).toMatchObject({ lateBeats: 1, serviceDeaths: 0 });
    expect(heartbeatsIn(late, SPARE)).toHaveLength(1);
    // The reports that waited are read now: every service lives.
    d.reportAll();
    d.beat();
    expect(d.core.state).toBe('spare');
    // With nothing to read, the next beat, on time, finds them dead.
    const d2 = AgentDriver.started(SPARE, 'spare', '');
    d2.reportAll();
    d2.handle({ kind: 'timer', name: BEAT }, d2.nowUs + SILENCE_US + INTERVAL_US);
    d2.beat();
    expect(d2.core.state).toBe('halted');
    expect(d2.core.stats.serviceDeaths).toBe(1);
  });

  it('a report from an earlier incarnation does not count as hearing from the service', () => {
    const d = AgentDriver.started(SPARE, 'spare', '');
    d.reportAll();
    d.restart('guest', {}, 100);
    const old = d.status('guest', { incarnation: d.incarnations.get('guest')! - 1 });
    d.handle({ kind: 'message', subject: S.host(SPARE).status, msg: old }, SILENCE_US);
    for (const s of OTHER_SERVICES) d.report(s, {}, SILENCE_US);
    d.handle({ kind: 'timer', name: BEAT }, 100 + SILENCE_US + 1);
    expect(d.core.state).toBe('halted');
  });
});

describe('HostAgentCore: assignments sent again', () => {
  it('at each tick, a service whose latest report shows an older assignment, or that has not reported, gets the current one again', () => {
    const d = AgentDriver.started(SPARE, 'spare', '');
    d.control(d.roleChange('backup', 1, PRIMARY)); // assignment 2
    d.report('guest'); // on 2
    d.report('acker', { assignmentSeq: 1 }); // still on 1
    d.report('netbuffer', { agentIncarnation: 0, assignmentSeq: 2 }); // an assignment of an earlier agent
    // The checkpointer has not reported at all.
    const effects = d.beat();
    const resent = assignmentsIn(effects, SPARE);
    expect(resent.map((a) => a.service).sort()).toEqual(['acker', 'checkpointer', 'netbuffer']);
    for (const a of resent) expect(a).toMatchObject({ role: 'backup', seq: 2 });
    expect(d.core.stats.assignmentsResent).toBe(3);
  });

  it('sends nothing again when every service reports the current assignment', () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    d.reportAll();
    expect(assignmentsIn(d.beat(), BACKUP)).toEqual([]);
    expect(d.core.stats.assignmentsResent).toBe(0);
  });

  it('while promoting, asks a guest or acker that is not ready again at each tick', () => {
    const d = promotingBackup();
    d.reportAll({ guest: { ready: true } });
    expect(assignmentsIn(d.beat(), BACKUP).map((a) => [a.service, a.role])).toEqual([['acker', 'promoting']]);
    d.reportAll({ guest: { ready: true } });
    expect(assignmentsIn(d.beat(), BACKUP).map((a) => a.service)).toEqual(['acker']);
    d.reportAll({ guest: { ready: false }, acker: { ready: false } });
    expect(assignmentsIn(d.beat(), BACKUP).map((a) => a.service)).toEqual(['guest', 'acker']);
  });

  it('a halted host sends nothing again: its timer no longer runs', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.restart('guest');
    d.restart('guest');
    expect(d.core.state).toBe('halted');
    expect(d.armed.size).toBe(0);
  });
});

describe('HostAgentCore: what heartbeats say', () => {
  it('a primary reports the epoch its checkpointer committed, and synced', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll({ checkpointer: { epoch: 12 }, guest: { epoch: 3 } });
    expect(heartbeatsIn(d.beat(), PRIMARY)).toMatchObject([{ role: 'primary', epoch: 12, synced: true }]);
  });

  it('a backup reports the epoch its guest applied and whether its image is complete', () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    d.reportAll({ guest: { epoch: 5, synced: false }, checkpointer: { epoch: 99 } });
    expect(heartbeatsIn(d.beat(), BACKUP)).toMatchObject([{ role: 'backup', epoch: 5, synced: false }]);
    d.reportAll({ guest: { epoch: 6, synced: true } });
    expect(heartbeatsIn(d.beat(), BACKUP)).toMatchObject([{ role: 'backup', epoch: 6, synced: true }]);
  });

  it('a backup whose guest still runs as a spare (it has not taken the join) holds no image yet', () => {
    const d = AgentDriver.started(SPARE, 'spare', '');
    d.control(d.roleChange('backup', 1, PRIMARY));
    d.reportAll({ guest: { role: 'spare', assignmentSeq: 1, epoch: 4, synced: true } });
    expect(heartbeatsIn(d.beat(), SPARE)).toMatchObject([{ role: 'backup', epoch: 0, synced: false }]);
  });

  it('a promoting or claiming host still says backup, with its image’s epoch', () => {
    const d = promotingBackup();
    d.reportAll({ guest: { epoch: 6, synced: true } });
    expect(heartbeatsIn(d.beat(), BACKUP)).toMatchObject([{ role: 'backup', term: 1, epoch: 6, synced: true }]);
    d.reportAll({ guest: { epoch: 6, ready: true, synced: true }, acker: { ready: true } });
    expect(d.core.state).toBe('claiming');
    expect(heartbeatsIn(d.beat(), BACKUP)).toMatchObject([{ role: 'backup', epoch: 6, synced: true }]);
  });

  it('a spare reports no image', () => {
    const d = AgentDriver.started(SPARE, 'spare', '');
    d.reportAll({ guest: { epoch: 3, synced: true } });
    expect(heartbeatsIn(d.beat(), SPARE)).toMatchObject([{ role: 'spare', epoch: 0, synced: false }]);
  });
});

describe('HostAgentCore: planted bugs', () => {
  it('no-fencing grants a permit at every heartbeat while primary, even when no renewal is confirmed', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP, { plantedBug: 'no-fencing' });
    expect(permitsIn(d.log, PRIMARY)).toMatchObject([{ term: 1, untilUs: 2 * INTERVAL_US }]);
    d.reportAll();
    d.answer('unavailable');
    for (let i = 1; i <= 3; i++) {
      const effects = d.beat();
      expect(permitsIn(effects, PRIMARY)).toMatchObject([{ term: 1, untilUs: (i + 2) * INTERVAL_US }]);
      d.answer('unavailable');
      d.reportAll();
    }
  });

  it('no-fencing grants nothing from a confirmed renewal: its own schedule only', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP, { plantedBug: 'no-fencing' });
    expect(permitsIn(d.answer('ok'), PRIMARY)).toEqual([]);
  });

  it('no-fencing keeps granting after the host was deposed', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP, { plantedBug: 'no-fencing' });
    d.reportAll();
    d.answer('conflict', { primaryHost: BACKUP, term: 2, expiresAtMs: 40 });
    expect(d.core.state).toBe('deposed');
    expect(permitsIn(d.beat(), PRIMARY)).toMatchObject([{ term: 1, untilUs: 3 * INTERVAL_US }]);
  });

  it('no-fencing grants nothing to a backup or spare', () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY, { plantedBug: 'no-fencing' });
    d.reportAll();
    d.beat();
    expect(permitsIn(d.log, BACKUP)).toEqual([]);
  });

  it('stale-term-accepted makes a promoted host’s primary assignments, heartbeats and permits carry its old term', () => {
    const { d, effects } = promotedBackup('stale-term-accepted');
    expect(d.core.state).toBe('primary');
    const sent = assignmentsIn(effects, BACKUP);
    expect(sent.map((a) => a.service)).toEqual([...HOST_SERVICES]);
    for (const a of sent) expect(a).toMatchObject({ role: 'primary', term: 1 });
    expect(heartbeatsIn(effects, BACKUP)).toMatchObject([{ role: 'primary', term: 1 }]);
    expect(permitsIn(effects, BACKUP)).toMatchObject([{ term: 1 }]);
  });

  it('without it, the same promotion runs under the new term', () => {
    const { effects } = promotedBackup();
    const sent = assignmentsIn(effects, BACKUP);
    expect(sent.map((a) => a.service)).toEqual([...HOST_SERVICES]);
    for (const a of sent) expect(a).toMatchObject({ role: 'primary', term: 2 });
    // The claim left at 0, with the promotion's restore done at once.
    expect(permitsIn(effects, BACKUP)).toMatchObject([{ term: 2, untilUs: LEASE_US - MARGIN_US }]);
  });
});
