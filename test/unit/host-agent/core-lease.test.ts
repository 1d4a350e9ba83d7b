/**
 * HostAgentCore at start, and the lease: heartbeats, renewals by
 * compare-and-set, release permits derived from confirmed renewals, and
 * deposition by a conflicting answer.
 */
import { describe, expect, it } from 'vitest';
import { HOST_SERVICES, type HostRole } from '../../../lib/codec/messages.js';
import { runConfigSchema } from '../../../lib/config/run-config.js';
import { hostAgentOptionsFromConfig } from '../../../services/host-agent/options-from-config.js';
import { AgentDriver, assignmentsIn, BACKUP, BEAT, heartbeatsIn, INTERVAL_US, LEASE_US, MARGIN_US, permitsIn, PRIMARY, renewalsIn, S, SPARE, VM } from './support.js';
import { ackerOptionsFromConfig } from '../../../services/acker/options-from-config.js';
import { checkpointerOptionsFromConfig } from '../../../services/checkpointer/options-from-config.js';
import { guestOptionsFromConfig } from '../../../services/guest/options-from-config.js';
import { netbufferOptionsFromConfig } from '../../../services/netbuffer/options-from-config.js';

const PEERS: Record<HostRole, [host: string, peer: string]> = { primary: [PRIMARY, BACKUP], backup: [BACKUP, PRIMARY], spare: [SPARE, ''] };

describe('HostAgentCore: start', () => {
  it('listens on its control subject and its services’ status subject', () => {
    const d = new AgentDriver({ ...AgentDriver.started(PRIMARY, 'primary', BACKUP).core.options });
    expect(d.core.name).toBe(`host.${PRIMARY}`);
    expect(d.core.subscriptions).toEqual([S.control(PRIMARY), S.host(PRIMARY).status]);
  });

  it('a first primary sends one primary assignment per service, naming its first backup, first epoch 1, not joining', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    const sent = assignmentsIn(d.log, PRIMARY);
    expect(sent.map((a) => a.service)).toEqual([...HOST_SERVICES]);
    for (const a of sent) expect(a).toEqual({ type: 'assignment', vmId: VM, host: PRIMARY, role: 'primary', term: 1, peerHost: BACKUP, seq: 1, incarnation: 1, joining: false, firstEpoch: 1, joinSeq: 0, service: a.service });
    expect(d.core.state).toBe('primary');
    expect(d.core.stats.assignmentsSent).toBe(4);
  });

  it('a first backup sends one backup assignment per service, naming the primary, not joining', () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    const sent = assignmentsIn(d.log, BACKUP);
    expect(sent.map((a) => a.service)).toEqual([...HOST_SERVICES]);
    for (const a of sent) expect(a).toEqual({ type: 'assignment', vmId: VM, host: BACKUP, role: 'backup', term: 1, peerHost: PRIMARY, seq: 1, incarnation: 1, joining: false, firstEpoch: 0, joinSeq: 0, service: a.service });
    expect(d.core.state).toBe('backup');
  });

  it('a spare sends one spare assignment per service, with no peer', () => {
    const d = AgentDriver.started(SPARE, 'spare', '');
    const sent = assignmentsIn(d.log, SPARE);
    expect(sent.map((a) => a.service)).toEqual([...HOST_SERVICES]);
    for (const a of sent) expect(a).toEqual({ type: 'assignment', vmId: VM, host: SPARE, role: 'spare', term: 1, peerHost: '', seq: 1, incarnation: 1, joining: false, firstEpoch: 0, joinSeq: 0, service: a.service });
    expect(d.core.state).toBe('spare');
  });

  it('takes its start time plus one as its incarnation, which every assignment carries', () => {
    const d = new AgentDriver({ ...AgentDriver.started(SPARE, 'spare', '').core.options });
    d.handle({ kind: 'start' }, 5_000);
    expect(assignmentsIn(d.log, SPARE).map((a) => a.incarnation)).toEqual([5_001, 5_001, 5_001, 5_001]);
  });

  it('heartbeats at once in its initial role, under term 1 with no role change taken, and arms the heartbeat timer one interval later', () => {
    for (const role of ['primary', 'backup', 'spare'] as const) {
      const [host, peer] = PEERS[role];
      const d = AgentDriver.started(host, role, peer);
      expect(heartbeatsIn(d.log, host), role).toEqual([{ type: 'heartbeat', vmId: VM, term: 1, host, role, epoch: 0, synced: role === 'primary', controlSeq: 0, incarnation: expect.any(Number), chunksStaged: 0, followedAgentIncarnation: 0 }]);
      expect(d.log.filter((e) => e.kind === 'setTimer'), role).toEqual([{ kind: 'setTimer', name: BEAT, atUs: INTERVAL_US }]);
    }
  });

  it('a first primary renews at once, creating the record (expected revision 0) with its term, its first backup and an expiry one lease from now', () => {
    const d = new AgentDriver({ ...AgentDriver.started(PRIMARY, 'primary', BACKUP).core.options });
    const effects = d.handle({ kind: 'start' }, 2_000);
    expect(renewalsIn(effects)).toEqual([{ type: 'cas', vmId: VM, expectedRevision: 0, record: { primaryHost: PRIMARY, term: 1, expiresAtMs: (2_000 + LEASE_US) / 1_000, backupHost: BACKUP, holderIncarnation: 2_001 } }]);
    // No permit before the store confirms.
    expect(permitsIn(effects, PRIMARY)).toEqual([]);
    expect(d.core.permitUntilUs).toBe(0);
  });

  it('a backup or a spare never touches the lease', () => {
    for (const role of ['backup', 'spare'] as const) {
      const [host, peer] = PEERS[role];
      const d = AgentDriver.started(host, role, peer);
      d.reportAll();
      for (let i = 0; i < 3; i++) d.beat();
      expect(renewalsIn(d.log), role).toEqual([]);
      expect(permitsIn(d.log, host), role).toEqual([]);
    }
  });
});

describe('HostAgentCore: heartbeats and renewals', () => {
  it('heartbeats at every tick and arms the next one an interval later', () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    d.reportAll();
    for (let i = 1; i <= 3; i++) {
      const effects = d.beat();
      expect(d.nowUs).toBe(i * INTERVAL_US);
      expect(heartbeatsIn(effects, BACKUP)).toHaveLength(1);
      expect(effects).toContainEqual({ kind: 'setTimer', name: BEAT, atUs: (i + 1) * INTERVAL_US });
    }
    expect(d.core.stats.heartbeats).toBe(4);
  });

  it('a primary renews at every tick on the revision of the store’s last answer', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    d.answer('ok');
    expect(d.revision).toBe(1);
    const second = renewalsIn(d.beat());
    expect(second).toEqual([{ type: 'cas', vmId: VM, expectedRevision: 1, record: { primaryHost: PRIMARY, term: 1, expiresAtMs: (INTERVAL_US + LEASE_US) / 1_000, backupHost: BACKUP, holderIncarnation: 1 } }]);
    d.answer('ok');
    expect(renewalsIn(d.beat())).toMatchObject([{ expectedRevision: 2 }]);
    // An unavailable store leaves the revision where it was.
    d.answer('unavailable');
    expect(renewalsIn(d.beat())).toMatchObject([{ expectedRevision: 2 }]);
    expect(d.core.stats.renewals).toBe(4);
  });

  it('ignores the answer to a renewal that a newer one has replaced', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    const old = d.pending!;
    d.beat();
    const late = d.handle({ kind: 'leaseResult', result: { requestId: old.requestId, outcome: 'ok', record: null, revision: 1 } }, INTERVAL_US + 100);
    expect(late).toEqual([]);
    expect(d.core.permitUntilUs).toBe(0);
    const lateConflict = d.handle({ kind: 'leaseResult', result: { requestId: old.requestId, outcome: 'conflict', record: { primaryHost: BACKUP, term: 2, expiresAtMs: 99 }, revision: 2 } }, INTERVAL_US + 200);
    expect(lateConflict).toEqual([]);
    expect(d.core.state).toBe('primary');
  });
});

describe('HostAgentCore: release permits', () => {
  it('after a renewal answered ok, grants a permit until that renewal’s send time + lease duration − margin', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    const effects = d.answer('ok', undefined, 3_000);
    expect(permitsIn(effects, PRIMARY)).toEqual([{ type: 'releasePermit', vmId: VM, term: 1, host: PRIMARY, fromUs: 0, untilUs: LEASE_US - MARGIN_US, seq: 1 }]);
    expect(d.core.permitUntilUs).toBe(LEASE_US - MARGIN_US);
    expect(d.core.stats.permitsGranted).toBe(1);
  });

  it('numbers its permits under a term from 1, one more each: a subscriber that lost one can tell', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    const seqs = [permitsIn(d.answer('ok'), PRIMARY)];
    for (let i = 0; i < 3; i++) {
      d.beat();
      seqs.push(permitsIn(d.answer('ok'), PRIMARY));
    }
    expect(seqs.map((permits) => permits.map((p) => p.seq))).toEqual([[1], [2], [3], [4]]);
  });

  it('counts the permit from the renewal’s send, never from the answer: a slow answer shortens it', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    d.answer('ok');
    d.beat(); // renews at INTERVAL_US
    const slowAnswerAtUs = INTERVAL_US + 15_000;
    const effects = d.answer('ok', undefined, slowAnswerAtUs);
    const [p] = permitsIn(effects, PRIMARY);
    expect(p!.untilUs).toBe(INTERVAL_US + LEASE_US - MARGIN_US);
    expect(p!.untilUs - slowAnswerAtUs).toBe(LEASE_US - MARGIN_US - 15_000);
  });

  it('never sends a permit with an earlier (or the same) deadline than one already granted', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    d.answer('ok', undefined, 500);
    // The store's answer delivered twice: the same deadline again is no grant.
    expect(permitsIn(d.answer('ok', undefined, 600), PRIMARY)).toEqual([]);
    d.beat();
    d.answer('ok');
    d.beat();
    d.answer('ok');
    const deadlines = permitsIn(d.log, PRIMARY).map((p) => p.untilUs);
    expect(deadlines).toEqual([LEASE_US - MARGIN_US, INTERVAL_US + LEASE_US - MARGIN_US, 2 * INTERVAL_US + LEASE_US - MARGIN_US]);
    expect(d.core.stats.permitsGranted).toBe(3);
  });

  it('sends no permit when the store is unavailable: the last deadline stands, never extended by a heartbeat', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    d.answer('ok');
    const until = LEASE_US - MARGIN_US;
    for (let i = 0; i < 4; i++) {
      d.beat();
      expect(permitsIn(d.answer('unavailable'), PRIMARY)).toEqual([]);
      expect(d.core.permitUntilUs).toBe(until);
    }
    expect(permitsIn(d.log, PRIMARY)).toHaveLength(1);
    // Still primary, still trying: the store may come back.
    expect(d.core.state).toBe('primary');
    expect(renewalsIn(d.beat())).toHaveLength(1);
  });

  it('sends no permit for a conflicting renewal, even one on its own lease', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    const effects = d.answer('conflict', { primaryHost: PRIMARY, term: 1, expiresAtMs: 30, backupHost: BACKUP });
    expect(permitsIn(effects, PRIMARY)).toEqual([]);
    expect(d.core.permitUntilUs).toBe(0);
  });
});

describe('HostAgentCore: deposition', () => {
  it('a conflict naming another host deposes it: no more renewals or permits, and its heartbeats still say primary with the old term', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll({ checkpointer: { epoch: 4 } });
    d.answer('ok');
    d.beat();
    const effects = d.answer('conflict', { primaryHost: BACKUP, term: 2, expiresAtMs: 50, backupHost: '' }, INTERVAL_US + 700);
    expect(d.core.state).toBe('deposed');
    expect(effects).toEqual([]);
    const before = d.log.length;
    d.reportAll({ checkpointer: { epoch: 4 } });
    d.beat();
    d.reportAll({ checkpointer: { epoch: 4 } });
    d.beat();
    const later = d.log.slice(before);
    expect(renewalsIn(later)).toEqual([]);
    expect(permitsIn(later, PRIMARY)).toEqual([]);
    // It still reports in; the failover service counts it stale.
    expect(heartbeatsIn(later, PRIMARY)).toEqual([2, 3].map(() => ({ type: 'heartbeat', vmId: VM, term: 1, host: PRIMARY, role: 'primary', epoch: 4, synced: true, controlSeq: 0, incarnation: expect.any(Number), chunksStaged: 0, followedAgentIncarnation: 0 })));
    expect(d.core.role).toBe('primary');
    expect(d.core.term).toBe(1);
  });

  it('a conflict with a higher term deposes it, even one naming its own host', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.answer('conflict', { primaryHost: PRIMARY, term: 2, expiresAtMs: 40 });
    expect(d.core.state).toBe('deposed');
  });

  it('grants nothing for an ok that reaches it after it was deposed', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.answer('conflict', { primaryHost: BACKUP, term: 2, expiresAtMs: 40 });
    expect(d.answer('ok')).toEqual([]);
    expect(d.core.permitUntilUs).toBe(0);
    expect(d.core.state).toBe('deposed');
  });

  it('a restarted first primary that finds its lease renewed by its earlier process is deposed: the VM it started afresh gets no permit (vopr seed 20502)', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    expect(d.pendingCas.record.holderIncarnation).toBe(1); // started at 0
    const effects = d.answer('conflict', { primaryHost: PRIMARY, term: 1, expiresAtMs: 30, backupHost: BACKUP, committedEpoch: 240, holderIncarnation: 400 });
    expect(d.core.state).toBe('deposed');
    expect(permitsIn(effects, PRIMARY)).toEqual([]);
    expect(renewalsIn(effects)).toEqual([]);
    expect(d.core.stats.leasesOfEarlierProcess).toBe(1);
    expect(effects).toContainEqual(expect.objectContaining({ kind: 'log', level: 'error', event: 'agent.lease_of_earlier_process' }));
  });

  it('a record its own process wrote is its lease still: it renews again at once and stays primary', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    const effects = d.answer('conflict', { primaryHost: PRIMARY, term: 1, expiresAtMs: 30, backupHost: BACKUP, holderIncarnation: 1 });
    expect(d.core.state).toBe('primary');
    expect(renewalsIn(effects)).toHaveLength(1);
    expect(d.core.stats.leasesOfEarlierProcess).toBe(0);
  });

  it('an unavailable store never deposes it', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    for (let i = 0; i < 5; i++) {
      d.answer('unavailable');
      d.beat();
    }
    expect(d.core.state).toBe('primary');
  });
});

describe('HostAgentCore: conflicts on its own lease', () => {
  const membershipWrite = { primaryHost: PRIMARY, term: 1, expiresAtMs: 30, backupHost: SPARE };

  it('a conflict on its own lease (same host and term: a membership write) renews again at once on the new revision, carrying the backup the store names', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    const effects = d.answer('conflict', membershipWrite, 800);
    expect(d.core.state).toBe('primary');
    expect(renewalsIn(effects)).toEqual([{ type: 'cas', vmId: VM, expectedRevision: d.revision, record: { primaryHost: PRIMARY, term: 1, expiresAtMs: (800 + LEASE_US) / 1_000, backupHost: SPARE, holderIncarnation: 1 } }]);
    // The retry is the renewal its permit counts from.
    expect(permitsIn(d.answer('ok', undefined, 900), PRIMARY)).toMatchObject([{ untilUs: 800 + LEASE_US - MARGIN_US }]);
  });

  it('a conflict with a lower term on its own host is its own lease too', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.answer('conflict', { ...membershipWrite, term: 1 });
    expect(d.core.state).toBe('primary');
  });

  it('renews again at once only once per heartbeat: a second conflict in the same beat waits for the next tick', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    expect(renewalsIn(d.answer('conflict', membershipWrite))).toHaveLength(1);
    expect(renewalsIn(d.answer('conflict', membershipWrite))).toEqual([]);
    // The next tick renews on the newest revision it was told.
    expect(renewalsIn(d.beat())).toMatchObject([{ expectedRevision: d.revision, record: { backupHost: SPARE } }]);
  });

  it('keeps the backup it last saw when a conflicting record names none', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    d.answer('conflict', { primaryHost: PRIMARY, term: 1, expiresAtMs: 30 });
    expect(d.pendingCas.record.backupHost).toBe(BACKUP);
  });
});

describe('hostAgentOptionsFromConfig', () => {
  it('gives each host its initial role and peer, the failover timings in µs, a permit margin of safety + skew, ten silent intervals for a dead service and the startup grace', () => {
    const config = runConfigSchema.parse({ mode: 'spec' });
    const f = config.failover;
    const expected = { vmId: config.vmId, heartbeatIntervalUs: f.heartbeatIntervalMs * 1_000, leaseDurationUs: f.leaseDurationMs * 1_000, permitMarginUs: (f.leaseSafetyMs + f.clockSkewMs) * 1_000, serviceSilenceUs: 10 * f.heartbeatIntervalMs * 1_000, serviceStartupUs: f.serviceStartupMs * 1_000 };
    expect(config.vmId).toBe(VM);
    const of = (host: string) => {
      const { subjects: subs, ...rest } = hostAgentOptionsFromConfig(config, host);
      expect(subs.control(host)).toBe(S.control(host));
      expect(subs.host(host).status).toBe(S.host(host).status);
      return rest;
    };
    expect(of(config.hosts.primary)).toEqual({ ...expected, host: config.hosts.primary, initialRole: 'primary', initialPeerHost: config.hosts.backup });
    expect(of(config.hosts.backup)).toEqual({ ...expected, host: config.hosts.backup, initialRole: 'backup', initialPeerHost: config.hosts.primary });
    expect(of(config.hosts.spares[0]!)).toEqual({ ...expected, host: config.hosts.spares[0], initialRole: 'spare', initialPeerHost: '' });
  });

  it('takes a service for dead after serviceMissCount status intervals, and every service reports at that interval (the heartbeat interval unless set)', () => {
    const config = runConfigSchema.parse({ mode: 'spec', failover: { heartbeatIntervalMs: 50, leaseDurationMs: 500, statusIntervalMs: 250, serviceMissCount: 20 } });
    expect(hostAgentOptionsFromConfig(config, PRIMARY).serviceSilenceUs).toBe(5_000_000);
    expect(hostAgentOptionsFromConfig(config, PRIMARY).heartbeatIntervalUs).toBe(50_000);
    const reporting = [ackerOptionsFromConfig(config, PRIMARY), checkpointerOptionsFromConfig(config, PRIMARY), netbufferOptionsFromConfig(config, PRIMARY), guestOptionsFromConfig(config, PRIMARY).supervision!];
    for (const options of reporting) expect(options.statusIntervalUs).toBe(250_000);
    const unset = runConfigSchema.parse({ mode: 'spec', failover: { heartbeatIntervalMs: 40, leaseDurationMs: 500 } });
    expect(ackerOptionsFromConfig(unset, PRIMARY).statusIntervalUs).toBe(40_000);
    expect(hostAgentOptionsFromConfig(unset, PRIMARY).serviceSilenceUs).toBe(unset.failover.serviceMissCount * 40_000);
  });

  it('passes on only the planted bugs the agent has', () => {
    const config = runConfigSchema.parse({ mode: 'spec' });
    expect(hostAgentOptionsFromConfig(config, PRIMARY, { plantedBug: 'no-fencing' }).plantedBug).toBe('no-fencing');
    expect(hostAgentOptionsFromConfig(config, PRIMARY, { plantedBug: 'stale-term-accepted' }).plantedBug).toBe('stale-term-accepted');
    expect('plantedBug' in hostAgentOptionsFromConfig(config, PRIMARY, { plantedBug: 'release-before-commit' })).toBe(false);
  });
});
