/**
 * The simulated host supervisor, driven directly: its heartbeat and start
 * timers by name, RoleChange messages on its control subject, and answers to
 * its lease renewals. Its hooks are a recording stand-in for the host.
 */
import { describe, expect, it } from 'vitest';
import type { Heartbeat, HostRole, RoleChange } from '../../../lib/codec/messages.js';
import type { Effect, Input, LeaseRecord, LeaseResult } from '../../../lib/runtime/types.js';
import { HostAgentCore, type HostAgentOptions } from '../../../sim/host-agent.js';
import { BACKUP, casOp, INTERVAL_US, LEASE_US, leaseOps, message, PRIMARY, roleChange, S, sentOn, SPARE, timer, timers, VM } from './support.js';

const BEAT = 'host.heartbeat';
const START = 'host.start';
const SAFETY_US = 6_000;
const START_DELAY_US = 5_000;
const ANSWER_AFTER_US = 500;

/** A stand-in host: reports the role, term and epoch it is told to, and records what the agent asks of it. */
class Host {
  epoch = 0;
  readonly fencedAtUs: number[] = [];
  readonly unfencedAtUs: number[] = [];
  readonly applied: { change: RoleChange; nowUs: number }[] = [];
  readonly delaysAsked: RoleChange[] = [];
  readonly prepared: RoleChange[] = [];
  constructor(
    public role: HostRole,
    public term = 1,
  ) {}
  status() {
    return { role: this.role, term: this.term, epoch: this.epoch, synced: this.role !== 'spare' };
  }
  startDelayUs(change: RoleChange): number {
    this.delaysAsked.push(change);
    return START_DELAY_US;
  }
  prepare(change: RoleChange): void {
    this.prepared.push(change);
  }
  onRoleChange(change: RoleChange, nowUs: number): void {
    this.applied.push({ change, nowUs });
    this.role = change.role;
    this.term = change.term;
  }
  onFenced(nowUs: number): void {
    this.fencedAtUs.push(nowUs);
  }
  onUnfenced(nowUs: number): void {
    this.unfencedAtUs.push(nowUs);
  }
}

/**
 * A shell for one agent: keeps the timers it armed (last deadline per name)
 * and fires every one that is due, in deadline order, before any later input.
 */
class AgentDriver {
  readonly host: Host;
  readonly agent: HostAgentCore;
  nowUs = 0;
  pending: number | null = null;
  readonly armed = new Map<string, number>();

  constructor(name: string, role: HostRole, options: Partial<HostAgentOptions> = {}) {
    this.host = new Host(role);
    this.agent = new HostAgentCore({ vmId: VM, host: name, subjects: S, heartbeatIntervalUs: INTERVAL_US, leaseDurationUs: LEASE_US, leaseSafetyUs: SAFETY_US, ...options }, this.host);
  }

  #deliver(input: Input, atUs: number): Effect[] {
    this.nowUs = atUs;
    const effects = this.agent.handle(input, atUs);
    for (const e of effects) {
      if (e.kind === 'setTimer') this.armed.set(e.name, e.atUs);
      if (e.kind === 'cancelTimer') this.armed.delete(e.name);
      if (e.kind === 'lease') this.pending = e.requestId;
    }
    return effects;
  }

  /** Moves the clock to `toUs`, firing every timer due by then. */
  advance(toUs: number): Effect[] {
    if (toUs < this.nowUs) throw new Error(`time went back: ${toUs} < ${this.nowUs}`);
    const out: Effect[] = [];
    for (;;) {
      const due = [...this.armed].filter(([, at]) => at <= toUs).sort((a, b) => a[1] - b[1])[0];
      if (due === undefined) break;
      this.armed.delete(due[0]);
      out.push(...this.#deliver(timer(due[0]), Math.max(due[1], this.nowUs)));
    }
    this.nowUs = toUs;
    return out;
  }

  handle(input: Input, atUs = this.nowUs): Effect[] {
    return [...this.advance(atUs), ...this.#deliver(input, atUs)];
  }

  answer(result: Omit<LeaseResult, 'requestId'>, atUs = this.nowUs + ANSWER_AFTER_US): Effect[] {
    const id = this.pending;
    if (id === null) throw new Error('no renewal outstanding');
    this.pending = null;
    return this.handle({ kind: 'leaseResult', result: { requestId: id, ...result } }, atUs);
  }

  /** Runs to `atUs`, when the heartbeat timer is due; a renewal that beat sends is answered `outcome` shortly after. */
  beat(atUs: number, outcome?: LeaseResult['outcome'], revision = 0): Effect[] {
    expect(this.armed.get(BEAT)).toBe(atUs);
    const effects = this.advance(atUs);
    const renewal = leaseOps(effects).at(-1);
    if (renewal !== undefined && outcome !== undefined) this.answer({ outcome, record: outcome === 'unavailable' ? null : casOp(renewal.op).record, revision });
    return effects;
  }
}

const heartbeats = (effects: readonly Effect[], host: string) => sentOn(effects, S.heartbeat(host)) as Heartbeat[];
const renewals = (effects: readonly Effect[]) => leaseOps(effects).map((e) => casOp(e.op));

describe('HostAgentCore: heartbeats', () => {
  it('heartbeats at start and every interval with the role, term and epoch its host reports', () => {
    const d = new AgentDriver(BACKUP, 'backup');
    expect(d.agent.subscriptions).toEqual([S.control(BACKUP)]);
    const first = d.handle({ kind: 'start' }, 0);
    expect(heartbeats(first, BACKUP)).toEqual([{ type: 'heartbeat', vmId: VM, term: 1, host: BACKUP, role: 'backup', epoch: 0, synced: true, controlSeq: 0 }]);
    expect(timers(first).get(BEAT)).toBe(INTERVAL_US);
    d.host.epoch = 7;
    d.host.term = 3;
    const next = d.beat(INTERVAL_US);
    expect(heartbeats(next, BACKUP)).toEqual([{ type: 'heartbeat', vmId: VM, term: 3, host: BACKUP, role: 'backup', epoch: 7, synced: true, controlSeq: 0 }]);
    expect(timers(next).get(BEAT)).toBe(2 * INTERVAL_US);
  });

  it('leaves the lease alone on a backup or a spare', () => {
    for (const role of ['backup', 'spare'] as const) {
      const d = new AgentDriver(BACKUP, role);
      expect(leaseOps([...d.handle({ kind: 'start' }, 0), ...d.beat(INTERVAL_US), ...d.beat(2 * INTERVAL_US)])).toEqual([]);
    }
  });
});

describe('HostAgentCore: lease renewal', () => {
  it('renews the primary lease by compare-and-set at each beat, on the revision of its last write', () => {
    const d = new AgentDriver(PRIMARY, 'primary');
    const first = renewals(d.handle({ kind: 'start' }, 0));
    expect(first).toEqual([{ type: 'cas', vmId: VM, expectedRevision: 0, record: { primaryHost: PRIMARY, term: 1, expiresAtMs: LEASE_US / 1_000, backupHost: '' } }]);
    d.answer({ outcome: 'ok', record: first[0]!.record, revision: 4 });
    const second = renewals(d.beat(INTERVAL_US));
    expect(second).toEqual([{ type: 'cas', vmId: VM, expectedRevision: 4, record: { primaryHost: PRIMARY, term: 1, expiresAtMs: (INTERVAL_US + LEASE_US) / 1_000, backupHost: '' } }]);
  });

  it('carries over the backup the lease names: the failover service changed it, the renewal that conflicted retries with it', () => {
    const d = new AgentDriver(PRIMARY, 'primary');
    d.handle({ kind: 'start' }, 0);
    d.answer({ outcome: 'ok', record: null, revision: 4 });
    d.beat(INTERVAL_US);
    const retry = renewals(d.answer({ outcome: 'conflict', record: { primaryHost: PRIMARY, term: 1, expiresAtMs: LEASE_US / 1_000, backupHost: SPARE }, revision: 5 }));
    expect(retry).toEqual([{ type: 'cas', vmId: VM, expectedRevision: 5, record: { primaryHost: PRIMARY, term: 1, expiresAtMs: (INTERVAL_US + ANSWER_AFTER_US + LEASE_US) / 1_000, backupHost: SPARE } }]);
  });

  it('may release until the send time of its last granted renewal + lease duration − safety', () => {
    const d = new AgentDriver(PRIMARY, 'primary');
    expect(d.agent.releaseUntilUs).toBe(0);
    d.handle({ kind: 'start' }, 0);
    d.answer({ outcome: 'ok', record: null, revision: 1 }, 3_000);
    // Counted from when the renewal left, not from when the answer came back.
    expect(d.agent.releaseUntilUs).toBe(LEASE_US - SAFETY_US);
    d.beat(INTERVAL_US, 'ok', 2);
    expect(d.agent.releaseUntilUs).toBe(INTERVAL_US + LEASE_US - SAFETY_US);
  });

  it('ignores the answer to a renewal that a newer one has replaced', () => {
    const d = new AgentDriver(PRIMARY, 'primary');
    const old = leaseOps(d.handle({ kind: 'start' }, 0))[0]!;
    d.beat(INTERVAL_US);
    d.handle({ kind: 'leaseResult', result: { requestId: old.requestId, outcome: 'ok', record: casOp(old.op).record, revision: 1 } }, INTERVAL_US + 100);
    expect(d.agent.releaseUntilUs).toBe(0);
    d.handle({ kind: 'leaseResult', result: { requestId: old.requestId, outcome: 'conflict', record: { primaryHost: BACKUP, term: 2, expiresAtMs: 99 }, revision: 2 } }, INTERVAL_US + 200);
    expect(d.host.fencedAtUs).toEqual([]);
  });

  it('is fenced, once, by a conflict naming another host, and stops renewing', () => {
    const d = new AgentDriver(PRIMARY, 'primary');
    d.handle({ kind: 'start' }, 0);
    d.answer({ outcome: 'ok', record: null, revision: 1 });
    d.beat(INTERVAL_US);
    const taken: LeaseRecord = { primaryHost: BACKUP, term: 2, expiresAtMs: 50 };
    d.answer({ outcome: 'conflict', record: taken, revision: 2 }, INTERVAL_US + 700);
    expect(d.host.fencedAtUs).toEqual([INTERVAL_US + 700]);
    expect(d.agent.fenced).toBe(true);
    const later = [...d.beat(2 * INTERVAL_US), ...d.beat(3 * INTERVAL_US)];
    expect(renewals(later)).toEqual([]);
    expect(heartbeats(later, PRIMARY)).toHaveLength(2); // it still reports in; the failover service counts it stale
    expect(d.host.fencedAtUs).toHaveLength(1);
  });

  it('is fenced by a conflict with a higher term, even one naming its own host', () => {
    const d = new AgentDriver(PRIMARY, 'primary');
    d.handle({ kind: 'start' }, 0);
    d.answer({ outcome: 'conflict', record: { primaryHost: PRIMARY, term: 2, expiresAtMs: 40 }, revision: 3 });
    expect(d.host.fencedAtUs).toEqual([ANSWER_AFTER_US]);
  });

  it('takes only the revision from a conflict with its own record at its own term', () => {
    const d = new AgentDriver(PRIMARY, 'primary');
    d.handle({ kind: 'start' }, 0);
    d.answer({ outcome: 'conflict', record: { primaryHost: PRIMARY, term: 1, expiresAtMs: 30 }, revision: 7 });
    expect(d.host.fencedAtUs).toEqual([]);
    expect(d.agent.fenced).toBe(false);
    expect(renewals(d.beat(INTERVAL_US))).toMatchObject([{ expectedRevision: 7 }]);
  });

  it('stops releasing once its last granted renewal + lease − safety has passed, by the first beat after', () => {
    const d = new AgentDriver(PRIMARY, 'primary');
    d.handle({ kind: 'start' }, 0);
    d.answer({ outcome: 'ok', record: null, revision: 1 });
    d.beat(INTERVAL_US, 'ok', 2); // the last renewal that gets through
    const releaseUntilUs = INTERVAL_US + LEASE_US - SAFETY_US; // 34 ms
    expect(d.agent.releaseUntilUs).toBe(releaseUntilUs);
    d.beat(2 * INTERVAL_US, 'unavailable');
    d.beat(3 * INTERVAL_US, 'unavailable');
    expect(d.agent.releaseUntilUs).toBe(releaseUntilUs);
    expect(d.host.fencedAtUs).toEqual([]);
    d.beat(4 * INTERVAL_US, 'unavailable');
    expect(d.host.fencedAtUs).toHaveLength(1);
    const [fencedAtUs] = d.host.fencedAtUs as [number];
    expect(fencedAtUs).toBeGreaterThanOrEqual(releaseUntilUs);
    expect(fencedAtUs).toBeLessThanOrEqual(4 * INTERVAL_US);
    expect(d.agent.fenced).toBe(true);
    d.beat(5 * INTERVAL_US, 'unavailable');
    expect(d.host.fencedAtUs).toEqual([fencedAtUs]);
  });

  it('fences on a beat that falls exactly on the release deadline', () => {
    const d = new AgentDriver(PRIMARY, 'primary', { leaseSafetyUs: LEASE_US - 2 * INTERVAL_US });
    d.handle({ kind: 'start' }, 0);
    d.answer({ outcome: 'ok', record: null, revision: 1 });
    expect(d.agent.releaseUntilUs).toBe(2 * INTERVAL_US);
    d.beat(INTERVAL_US, 'unavailable');
    expect(d.host.fencedAtUs).toEqual([]);
    d.beat(2 * INTERVAL_US, 'unavailable');
    expect(d.host.fencedAtUs).toEqual([2 * INTERVAL_US]);
  });
});

describe('HostAgentCore: role changes', () => {
  it('applies a RoleChange for its host after the start delay, then heartbeats at once in the new role', () => {
    const d = new AgentDriver(BACKUP, 'backup');
    d.handle({ kind: 'start' }, 0);
    const change = roleChange(BACKUP, 'primary', 2);
    const received = d.handle(message(S.control(BACKUP), change), 1_000);
    expect(received).toEqual([{ kind: 'setTimer', name: START, atUs: 1_000 + START_DELAY_US }]);
    expect(d.host.delaysAsked).toEqual([change]);
    expect(d.host.applied).toEqual([]);
    const started = d.advance(1_000 + START_DELAY_US);
    // A new primary first renews the lease the failover service wrote for it, at the new term…
    expect(renewals(started)).toMatchObject([{ record: { primaryHost: BACKUP, term: 2 } }]);
    expect(d.host.applied).toEqual([]);
    // …and starts its services, and reports in as primary, only once that renewal went through.
    const renewed = d.answer({ outcome: 'ok', record: { primaryHost: BACKUP, term: 2, expiresAtMs: 99 }, revision: 3 });
    expect(d.host.applied).toEqual([{ change, nowUs: d.nowUs }]);
    expect(heartbeats(renewed, BACKUP)).toEqual([{ type: 'heartbeat', vmId: VM, term: 2, host: BACKUP, role: 'primary', epoch: 0, synced: true, controlSeq: change.seq }]);
  });

  it('a new primary whose first renewal conflicts on its own lease retries at once on the revision it was told', () => {
    const d = new AgentDriver(BACKUP, 'backup');
    d.handle({ kind: 'start' }, 0);
    d.handle(message(S.control(BACKUP), roleChange(BACKUP, 'primary', 2)), 1_000);
    d.advance(1_000 + START_DELAY_US);
    const retried = d.answer({ outcome: 'conflict', record: { primaryHost: BACKUP, term: 2, expiresAtMs: 99 }, revision: 7 });
    expect(renewals(retried)).toMatchObject([{ expectedRevision: 7, record: { primaryHost: BACKUP, term: 2 } }]);
    expect(d.host.applied).toEqual([]);
  });

  it("ignores a RoleChange for another host", () => {
    const d = new AgentDriver(BACKUP, 'backup');
    d.handle({ kind: 'start' }, 0);
    expect(d.handle(message(S.control(BACKUP), roleChange(PRIMARY, 'primary', 2)), 1_000)).toEqual([]);
    expect(d.host.delaysAsked).toEqual([]);
    expect(d.armed.has(START)).toBe(false);
    const later = d.advance(3 * INTERVAL_US);
    expect(d.host.applied).toEqual([]);
    expect(heartbeats(later, BACKUP).map((h) => h.role)).toEqual(['backup', 'backup', 'backup']);
  });
});

describe('HostAgentCore: role changes lost, repeated or reordered on the bus', () => {
  it('reports the newest role change it took in every heartbeat, and ignores repeats and older ones', () => {
    const d = new AgentDriver(PRIMARY, 'primary');
    d.handle({ kind: 'start' }, 0);
    const noPeer = roleChange(PRIMARY, 'primary', 1, '', 5);
    const withPeer = roleChange(PRIMARY, 'primary', 1, 'host-c', 6);
    d.handle(message(S.control(PRIMARY), noPeer), 1_000);
    d.advance(1_000 + START_DELAY_US);
    d.handle(message(S.control(PRIMARY), withPeer), 8_000);
    const beats = d.advance(8_000 + START_DELAY_US + INTERVAL_US);
    expect(d.host.applied.map((a) => a.change.seq)).toEqual([5, 6]);
    expect(heartbeats(beats, PRIMARY).map((h) => h.controlSeq)).toContain(6);
    // A repeat of the newest and a late copy of the older one change nothing.
    expect(d.handle(message(S.control(PRIMARY), withPeer), 30_000)).toEqual([]);
    expect(d.handle(message(S.control(PRIMARY), noPeer), 30_000)).toEqual([]);
    d.advance(30_000 + 2 * START_DELAY_US);
    expect(d.host.applied.map((a) => a.change.seq)).toEqual([5, 6]);
    expect(d.agent.staleRoleChanges).toBe(2);
  });

  it('does not take a newer change while one is starting; the repeat the failover service sends later is taken', () => {
    const d = new AgentDriver(PRIMARY, 'primary');
    d.handle({ kind: 'start' }, 0);
    d.handle(message(S.control(PRIMARY), roleChange(PRIMARY, 'primary', 1, '', 10)), 1_000);
    const newer = roleChange(PRIMARY, 'primary', 1, 'host-c', 11);
    d.handle(message(S.control(PRIMARY), newer), 2_000); // still starting the first
    const started = d.advance(1_000 + START_DELAY_US);
    expect(heartbeats(started, PRIMARY).map((h) => h.controlSeq)).toEqual([10]);
    d.handle(message(S.control(PRIMARY), newer), 20_000);
    d.advance(20_000 + START_DELAY_US);
    expect(d.host.applied.map((a) => a.change.seq)).toEqual([10, 11]);
  });
});
