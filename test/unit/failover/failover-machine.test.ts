/**
 * Model-based test of the failover machine: @xstate/graph walks every state
 * and every (state, event) pair of the machine, the list of edges and the
 * actions each edge names are asserted exactly, and every edge the core can
 * produce is replayed, along a shortest path to its source, on a real
 * FailoverCore whose state and effects must follow the machine step by step.
 */
import { getAdjacencyMap, getShortestPaths, type StatePath } from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import type { Effect } from '../../../lib/runtime/types.js';
import { failoverMachine, type FailoverEvent, type FailoverState } from '../../../services/failover/failover.machine.js';
import { allRoleChanges, BACKUP, FailoverDriver, heartbeatInput, INTERVAL_US, LEASE_US, lateTimer, leaseOps, leaseResult, primaryRecord, PRIMARY, PROMOTE_TIMER, roleChangesTo, SKEW_US, silentTimer, SPARE, timer, timers } from './support.js';

type Snapshot = SnapshotFrom<typeof failoverMachine>;
type EventType = FailoverEvent['type'];

const STATES: FailoverState[] = ['protected', 'suspect', 'failingOver', 'promoting', 'unprotected', 'reprotecting'];
const EVENT_TYPES: EventType[] = ['PRIMARY_LATE', 'PRIMARY_SILENT', 'PRIMARY_ALIVE', 'BACKUP_SILENT', 'LEASE_TAKEN', 'LEASE_LOST', 'PROMOTED', 'SPARE_READY', 'BACKUP_SYNCED'];
/** Every event has an input that makes the core produce it (see ModelDriver). */
const CORE_EVENT_TYPES = EVENT_TYPES;
/** Actions the core performs itself; recordTerm and countFailover are context assignments inside the machine. */
const CORE_ACTIONS = ['takeLease', 'promoteBackup', 'dropBackup', 'startReprotection'];

const event = (type: EventType, snapshot: Snapshot): FailoverEvent => (type === 'LEASE_TAKEN' ? { type, term: snapshot.context.term + 1 } : { type });
const eventsOf = (types: readonly EventType[]) => (snapshot: Snapshot): FailoverEvent[] => types.map((t) => event(t, snapshot));
/** The terms and failover count only grow; the machine branches on its state alone. */
const serializeState = (snapshot: Snapshot) => String(snapshot.value);
const traversal = (types: readonly EventType[]) => ({ input: { term: 1 }, events: eventsOf(types), serializeState });

/** The named actions of the machine's definition for `type` in `state` (none when the state ignores it). */
function definedActions(state: FailoverState, type: EventType): string[] {
  const transitions = failoverMachine.root.states[state]!.transitions.get(type) ?? [];
  expect(transitions.length).toBeLessThanOrEqual(1); // no guards: one candidate per event
  return (transitions[0]?.actions ?? []).map((a) => (typeof a === 'string' ? a : (a as { type: string }).type));
}

interface Edge {
  readonly from: FailoverState;
  readonly event: EventType;
  readonly to: FailoverState;
  /** Executed actions, as xstate hands them to the core. */
  readonly actions: string[];
}

/** One edge per (reached state, event), computed with xstate's own transition function. */
function edgesFrom(paths: StatePath<Snapshot, FailoverEvent>[], types: readonly EventType[]): Edge[] {
  return paths.flatMap((p) =>
    types.map((type) => {
      const [next, actions] = transition(failoverMachine, p.state, event(type, p.state));
      return { from: p.state.value as FailoverState, event: type, to: next.value as FailoverState, actions: actions.map((a) => a.type) };
    }),
  );
}

const show = (e: { from: string; event: string; to: string }) => `${e.from} -${e.event}-> ${e.to}`;

/** The edges that change state, with the actions the definition names for them. */
const CHANGING: Record<string, string[]> = {
  'protected -PRIMARY_LATE-> suspect': [],
  'protected -PRIMARY_SILENT-> failingOver': ['takeLease'],
  'protected -BACKUP_SILENT-> unprotected': ['dropBackup'],
  'suspect -PRIMARY_ALIVE-> protected': [],
  'suspect -PRIMARY_SILENT-> failingOver': ['takeLease'],
  'suspect -BACKUP_SILENT-> unprotected': ['dropBackup'],
  'failingOver -LEASE_TAKEN-> promoting': ['recordTerm', 'countFailover', 'promoteBackup'],
  'failingOver -LEASE_LOST-> suspect': [],
  'promoting -PROMOTED-> unprotected': [],
  'unprotected -SPARE_READY-> reprotecting': ['startReprotection'],
  'reprotecting -BACKUP_SYNCED-> protected': [],
  'reprotecting -BACKUP_SILENT-> unprotected': ['dropBackup'],
};

/**
 * Turns machine events into the inputs the core would see for them: deadline
 * timers by name, heartbeats, answers to its lease requests. Outside
 * failingOver a lease event is a late answer to a request that is no longer
 * outstanding, which the core must ignore.
 */

class ModelDriver {
  readonly d = new FailoverDriver();
  #lastRequestId = 0;

  constructor() {
    this.d.start(0, primaryRecord(0), 1);
    this.#lastRequestId = 1;
  }

  #fire(name: string): Effect[] {
    // A deadline the core no longer has armed is delivered now, as a late duplicate would be.
    return this.d.armed.has(name) ? this.d.fire(name) : this.d.handle(timer(name));
  }

  /** Heartbeats here show every role change sent so far taken: repeats of lost ones are tested on their own. */
  #tookAll(): number {
    return Math.max(0, ...allRoleChanges(this.d.log).map((c) => c.seq));
  }

  /** One machine event; the store grants a membership write it causes at once (its own failures are tested on their own). */
  step(type: EventType): Effect[] {
    const effects = this.#step(type);
    return [...effects, ...this.d.settleMemberships()];
  }

  #step(type: EventType): Effect[] {
    const d = this.d;
    d.nowUs += 100;
    switch (type) {
      case 'PRIMARY_LATE':
        return this.#fire(lateTimer(d.core.primaryHost));
      case 'PRIMARY_SILENT':
        return this.#fire(silentTimer(d.core.primaryHost));
      case 'PRIMARY_ALIVE':
        return d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, this.#tookAll()));
      case 'BACKUP_SILENT':
        return this.#fire(silentTimer(d.core.backupHost ?? BACKUP));
      case 'LEASE_TAKEN':
      case 'LEASE_LOST': {
        const pending = d.pending;
        if (pending !== null) this.#lastRequestId = pending.requestId;
        const result = type === 'LEASE_TAKEN' ? { outcome: 'ok' as const, record: pending === null ? primaryRecord(0) : d.pendingCas.record, revision: 2 } : { outcome: 'unavailable' as const, record: null, revision: 0 };
        return pending !== null ? d.answer(result) : d.handle(leaseResult({ requestId: this.#lastRequestId, ...result }));
      }
      case 'PROMOTED': {
        // The promotion timer fires (RoleChange to the backup), then the promoted host reports in.
        const effects = d.armed.has(PROMOTE_TIMER) ? d.fire(PROMOTE_TIMER) : [];
        return [...effects, ...d.handle(heartbeatInput(BACKUP, 'primary', d.core.term, 0, true, this.#tookAll()))];
      }
      case 'SPARE_READY': {
        // The spare reports in as a spare: an unprotected VM takes it at once. It has not taken a join sent to
        // it (a spare that took its join and still says "spare" restarted, which is another event).
        const joins = allRoleChanges(d.log).filter((c) => c.host === SPARE && c.role === 'backup').map((c) => c.seq);
        const took = joins.length === 0 ? this.#tookAll() : Math.min(this.#tookAll(), Math.max(...joins) - 1);
        return d.handle(heartbeatInput(SPARE, 'spare', 1, 0, false, took));
      }
      case 'BACKUP_SYNCED': {
        // The joining backup reports a complete image. With no backup there is no such report: another host's,
        // whatever it says, is a spare's, which an unprotected VM takes (vopr seed 102999).
        const backup = d.core.backupHost;
        return backup === null ? [] : d.handle(heartbeatInput(backup, 'backup', d.core.term, 0, true, this.#tookAll()));
      }
    }
  }
}

/** What the core must emit for one machine step. */
function expectEffects(all: Effect[], type: EventType, before: Snapshot, after: Snapshot, actions: string[], nowUs: number, termBefore: number, seqsBefore: ReadonlySet<number>): void {
  const what = `${before.value} -${type}-> ${after.value}`;
  // A role change sent again (a heartbeat did not show it taken) is no new decision.
  const effects = all.filter((e) => !(e.kind === 'send' && e.msg.type === 'roleChange' && seqsBefore.has(e.msg.seq)));
  const leases = leaseOps(effects);
  const membership = (backupHost: string) => ({ kind: 'lease', requestId: expect.any(Number), op: { type: 'cas', vmId: 'vm1', expectedRevision: expect.any(Number), record: expect.objectContaining({ primaryHost: PRIMARY, term: termBefore, backupHost }) } });
  if (actions.includes('takeLease')) {
    // Compare-and-set on the revision last seen, naming the backup (which starts with none), one term up.
    expect(leases, what).toEqual([{ kind: 'lease', requestId: expect.any(Number), op: { type: 'cas', vmId: 'vm1', expectedRevision: expect.any(Number), record: { primaryHost: BACKUP, term: termBefore + 1, expiresAtMs: (nowUs + LEASE_US) / 1_000, backupHost: '' } } }]);
  } else if (actions.includes('dropBackup')) {
    // The lease names no backup before the primary hears of it.
    expect(leases, what).toEqual([membership('')]);
  } else if (actions.includes('startReprotection')) {
    expect(leases, what).toEqual([membership(SPARE)]);
  } else {
    expect(leases, what).toEqual([]);
  }
  const set = timers(effects);
  // The old lease (renewed at 0) expires at LEASE_US; the promotion waits for that plus the clock skew.
  expect(set.get(PROMOTE_TIMER), what).toBe(actions.includes('promoteBackup') ? Math.max(nowUs, LEASE_US + SKEW_US) : undefined);
  const change = (host: string, role: 'primary' | 'backup', peerHost: string) => ({ type: 'roleChange', vmId: 'vm1', term: termBefore, host, role, peerHost, seq: expect.any(Number), committedEpoch: 0, joinSeq: peerHost === '' ? 0 : expect.any(Number) });
  const toPrimary = roleChangesTo(effects, PRIMARY);
  expect(toPrimary, what).toEqual([...(actions.includes('dropBackup') ? [change(PRIMARY, 'primary', '')] : []), ...(actions.includes('startReprotection') ? [change(PRIMARY, 'primary', SPARE)] : [])]);
  const toSpare = roleChangesTo(effects, SPARE);
  expect(toSpare, what).toEqual(actions.includes('startReprotection') ? [change(SPARE, 'backup', PRIMARY)] : []);
  // A join is named by the backup's role change, and the primary's names the same one.
  if (toSpare.length > 0) expect([toSpare[0]!.joinSeq, toPrimary.at(-1)!.joinSeq], what).toEqual([toSpare[0]!.seq, toSpare[0]!.seq]);
  const promoted = before.value === 'promoting' && type === 'PROMOTED';
  expect(roleChangesTo(effects, BACKUP), what).toEqual(promoted ? [{ type: 'roleChange', vmId: 'vm1', term: after.context.term, host: BACKUP, role: 'primary', peerHost: '', seq: expect.any(Number), committedEpoch: expect.any(Number), joinSeq: 0 }] : []);
  if (before.value === 'failingOver' && type === 'LEASE_LOST') expect(set.get(silentTimer(PRIMARY)), `${what}: retry one interval later`).toBe(nowUs + INTERVAL_US);
}

/** Replays `path` then `last` on a fresh machine and core, checking the core against the machine at every step. */
function replay(path: StatePath<Snapshot, FailoverEvent>, last?: EventType): void {
  const driver = new ModelDriver();
  let [snapshot] = initialTransition(failoverMachine, { term: 1 });
  // The first step of a path is the machine's own initialization.
  const steps = [...path.steps.map((st) => st.event.type).filter((t): t is EventType => (EVENT_TYPES as string[]).includes(t)), ...(last === undefined ? [] : [last])];
  for (const type of steps) {
    const [next, actions] = transition(failoverMachine, snapshot, event(type, snapshot));
    const termBefore = driver.d.core.term;
    const seqsBefore = new Set(allRoleChanges(driver.d.log).map((c) => c.seq));
    const effects = driver.step(type);
    expect(driver.d.core.state, `after ${steps.join(' → ')}`).toBe(next.value);
    expect(driver.d.core.term).toBe(next.context.term);
    expectEffects(effects, type, snapshot, next, actions.map((a) => a.type), driver.d.nowUs, termBefore, seqsBefore);
    snapshot = next;
  }
}

describe('failoverMachine, model-based', () => {
  const paths = getShortestPaths(failoverMachine, traversal(EVENT_TYPES));
  const all = edgesFrom(paths, EVENT_TYPES);

  it('reaches every state of the machine', () => {
    expect(paths.map((p) => p.state.value).sort()).toEqual([...STATES].sort());
  });

  it('has exactly the documented transitions; every other event is ignored', () => {
    const changing = all.filter((e) => e.from !== e.to).map(show);
    expect(changing.sort()).toEqual(Object.keys(CHANGING).sort());
    // One edge per (state, event): 6 × 9.
    expect(all).toHaveLength(STATES.length * EVENT_TYPES.length);
    for (const e of all.filter((x) => x.from === x.to)) {
      expect(definedActions(e.from, e.event), show(e)).toEqual([]);
      expect(e.actions, show(e)).toEqual([]);
    }
  });

  it('agrees with the adjacency map of @xstate/graph', () => {
    const adjacency = getAdjacencyMap(failoverMachine, traversal(EVENT_TYPES));
    const fromGraph: string[] = [];
    for (const [from, { transitions }] of Object.entries(adjacency)) {
      for (const { event: ev, state } of Object.values(transitions) as { event: FailoverEvent; state: Snapshot }[]) fromGraph.push(show({ from, event: ev.type, to: serializeState(state) }));
    }
    expect(fromGraph.sort()).toEqual(all.map(show).sort());
  });

  it('names on each edge the actions the core must perform, and hands the core exactly those', () => {
    for (const e of all.filter((x) => x.from !== x.to)) {
      const named = CHANGING[show(e)]!;
      expect(definedActions(e.from, e.event), show(e)).toEqual(named);
      expect(e.actions, show(e)).toEqual(named.filter((a) => CORE_ACTIONS.includes(a)));
    }
  });

  it('records the taken term and counts the failover when the lease is taken', () => {
    const [start] = initialTransition(failoverMachine, { term: 4 });
    const [failing] = transition(failoverMachine, start, { type: 'PRIMARY_SILENT' });
    const [promoting] = transition(failoverMachine, failing, { type: 'LEASE_TAKEN', term: 5 });
    expect(promoting.context).toEqual({ term: 5, failovers: 1 });
    const [lost] = transition(failoverMachine, failing, { type: 'LEASE_LOST' });
    expect(lost.context).toEqual({ term: 4, failovers: 0 });
  });

  describe('on the core', () => {
    const corePaths = getShortestPaths(failoverMachine, traversal(CORE_EVENT_TYPES));
    const pathTo = new Map(corePaths.map((p) => [serializeState(p.state), p]));
    const coreEdges = edgesFrom(corePaths, CORE_EVENT_TYPES);

    it('reaches every state', () => {
      expect([...pathTo.keys()].sort()).toEqual([...STATES].sort());
    });

    it('follows a shortest path to every state', () => {
      for (const path of corePaths) replay(path);
    });

    it('follows every transition, including events a state ignores', () => {
      expect(coreEdges).toHaveLength(STATES.length * CORE_EVENT_TYPES.length);
      expect(coreEdges.filter((e) => e.from !== e.to).map(show).sort()).toEqual(Object.keys(CHANGING).sort());
      for (const edge of coreEdges) replay(pathTo.get(edge.from)!, edge.event);
    });
  });
});
