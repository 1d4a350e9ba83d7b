/**
 * Model-based test of the host agent: @xstate/graph walks every state and
 * every (state, event) pair of hostAgentMachine from each initial role, the
 * edges and the actions each names are asserted exactly, and then every
 * path and edge is replayed on a real HostAgentCore, fed the inputs that
 * produce each event (role changes on its control subject, service reports
 * on its status subject, answers to its renewals, its heartbeat timer),
 * whose state and effects must follow the machine step by step.
 */
import { getAdjacencyMap, getPathsFromEvents, getShortestPaths, getSimplePaths, type StatePath } from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import { HOST_SERVICES, type AssignedRole, type HostRole } from '../../../lib/codec/messages.js';
import type { Effect } from '../../../lib/runtime/types.js';
import { hostAgentMachine, type HostAgentEvent, type HostAgentState } from '../../../services/host-agent/host-agent.machine.js';
import { AgentDriver, assignmentsIn, BEAT, BACKUP, heartbeatsIn, LEASE_US, permitsIn, PRIMARY, renewalsIn, S, SILENCE_US, SPARE, VM } from './support.js';

type Snapshot = SnapshotFrom<typeof hostAgentMachine>;
type EventType = HostAgentEvent['type'];
type InitialRole = HostRole;

/** The states a snapshot can rest in: booting only passes through. */
const STATES: HostAgentState[] = ['spare', 'backup', 'promoting', 'claiming', 'primary', 'deposed', 'halted'];
const EVENT_TYPES: EventType[] = ['JOIN', 'PROMOTE', 'PEER_CHANGED', 'RESTORED', 'LEASE_GRANTED', 'DEPOSED', 'IMAGE_LOST', 'SERVICE_RESTARTED', 'SERVICE_DIED'];
const INITIAL_ROLES: InitialRole[] = ['spare', 'backup', 'primary'];
const ACTIONS = ['assignPrimary', 'assignBackup', 'assignPromoting', 'assignSpare', 'claimLease', 'halt', 'refusePromotion'];

const serializeState = (snapshot: Snapshot) => String(snapshot.value);
const traversal = (initialRole: InitialRole) => ({ input: { initialRole }, events: EVENT_TYPES.map((type) => ({ type }) as HostAgentEvent), serializeState });

/**
 * Every edge that changes the state or performs an action, with the actions
 * the machine hands the core. Every other (state, event) pair is ignored.
 */
const EDGES: Record<string, string[]> = {
  'spare -JOIN-> backup': ['assignBackup'],
  'spare -PROMOTE-> spare': ['refusePromotion'],
  'spare -SERVICE_DIED-> halted': ['halt'],
  'backup -JOIN-> backup': ['assignBackup'],
  'backup -PROMOTE-> promoting': ['assignPromoting'],
  'backup -IMAGE_LOST-> spare': ['assignSpare'],
  'backup -SERVICE_DIED-> halted': ['halt'],
  'promoting -RESTORED-> claiming': ['claimLease'],
  'promoting -SERVICE_RESTARTED-> halted': ['halt'],
  'claiming -LEASE_GRANTED-> primary': ['assignPrimary'],
  'claiming -DEPOSED-> deposed': [],
  'claiming -SERVICE_RESTARTED-> halted': ['halt'],
  'primary -PEER_CHANGED-> primary': ['assignPrimary'],
  'primary -DEPOSED-> deposed': [],
  'primary -SERVICE_RESTARTED-> halted': ['halt'],
  'primary -SERVICE_DIED-> halted': ['halt'],
  'deposed -JOIN-> backup': ['assignBackup'],
  'deposed -SERVICE_RESTARTED-> halted': ['halt'],
  'deposed -SERVICE_DIED-> halted': ['halt'],
};

interface Edge {
  readonly from: HostAgentState;
  readonly event: EventType;
  readonly to: HostAgentState;
  readonly actions: string[];
}

const show = (e: { from: string; event: string; to: string }) => `${e.from} -${e.event}-> ${e.to}`;

/** One edge per (reached state, event), by xstate's own transition function. */
function edgesFrom(paths: StatePath<Snapshot, HostAgentEvent>[]): Edge[] {
  return paths.flatMap((p) =>
    EVENT_TYPES.map((type) => {
      const [next, actions] = transition(hostAgentMachine, p.state, { type });
      return { from: p.state.value as HostAgentState, event: type, to: next.value as HostAgentState, actions: actions.map((a) => a.type) };
    }),
  );
}

/** The events of a path, without the machine's own initialization step. */
const eventsOf = (path: StatePath<Snapshot, HostAgentEvent>): EventType[] => path.steps.map((s) => s.event.type).filter((t): t is EventType => (EVENT_TYPES as string[]).includes(t));

/**
 * The core cannot produce some events in some states, because one input
 * means another event there: a RoleChange(primary) is a PEER_CHANGED for a
 * primary (or a deposed one) and a PROMOTE otherwise; a guest's restart is
 * IMAGE_LOST only where the guest runs no VM (else SERVICE_RESTARTED).
 */
const UNPRODUCIBLE: Partial<Record<EventType, HostAgentState[]>> = {
  PROMOTE: ['primary', 'deposed'],
  PEER_CHANGED: ['spare', 'backup'],
  IMAGE_LOST: ['promoting', 'claiming', 'primary', 'deposed'],
};
const producible = (state: HostAgentState, type: EventType) => !(UNPRODUCIBLE[type] ?? []).includes(state);

const ROLE_OF: Record<HostAgentState, HostRole> = { booting: 'spare', spare: 'spare', backup: 'backup', promoting: 'backup', claiming: 'backup', primary: 'primary', deposed: 'primary', halted: 'spare' };
const ASSIGNED: Record<string, AssignedRole> = { assignPrimary: 'primary', assignBackup: 'backup', assignPromoting: 'promoting', assignSpare: 'spare', halt: 'stopped' };

const HOST = BACKUP;
const PEER_OF: Record<InitialRole, string> = { primary: SPARE, backup: PRIMARY, spare: '' };
/** The epoch the promoted guest restores from. */
const RESTORED_EPOCH = 7;

/**
 * Turns machine events into the inputs the core sees for them. Each step is
 * 100 µs after the last; the heartbeat timer fires only for SERVICE_DIED, so
 * no step is a tick in disguise.
 */
class ModelDriver {
  readonly d: AgentDriver;
  /** The newest term the failover service has given out. */
  fsTerm = 1;
  /** The term of the promotion under way. */
  promotionTerm = 0;

  constructor(readonly initialRole: InitialRole) {
    this.d = AgentDriver.started(HOST, initialRole, PEER_OF[initialRole]);
    this.d.reportAll({ guest: { epoch: 3, synced: true }, checkpointer: { epoch: 3 } });
  }

  step(type: EventType): Effect[] {
    const d = this.d;
    const at = d.nowUs + 100;
    switch (type) {
      case 'JOIN':
        return d.control(d.roleChange('backup', this.fsTerm, PRIMARY), at);
      case 'PROMOTE':
        this.fsTerm++;
        if (d.core.state === 'backup') this.promotionTerm = this.fsTerm;
        return d.control(d.roleChange('primary', this.fsTerm, ''), at);
      case 'PEER_CHANGED':
        return d.control(d.roleChange('primary', d.core.term, SPARE), at);
      case 'RESTORED':
        return [...d.report('guest', { ready: true, epoch: RESTORED_EPOCH, txEndSeqs: [100] }, at), ...d.report('acker', { ready: true }, at)];
      case 'LEASE_GRANTED':
        // The answer to the newest renewal; with none sent yet, an answer that matches nothing.
        return d.pending !== null ? d.answer('ok', undefined, at) : d.handle({ kind: 'leaseResult', result: { requestId: 999, outcome: 'ok', record: null, revision: 1 } }, at);
      case 'DEPOSED': {
        this.fsTerm++;
        const taken = { primaryHost: PRIMARY, term: this.fsTerm, expiresAtMs: (at + LEASE_US) / 1_000, backupHost: '' };
        return d.pending !== null ? d.answer('conflict', taken, at) : d.handle({ kind: 'leaseResult', result: { requestId: 999, outcome: 'conflict', record: taken, revision: 1 } }, at);
      }
      case 'IMAGE_LOST':
        return d.restart('guest', {}, at);
      case 'SERVICE_RESTARTED':
        return d.restart('checkpointer', {}, at);
      case 'SERVICE_DIED': {
        // No report for longer than the silence bound: the next tick finds every service dead. The agent itself ran
        // meanwhile (here on a role change meant for another host, which it ignores): a stalled agent judges no one.
        const tick = d.nowUs + SILENCE_US + 1;
        // A primary halts only once its backup is complete: its checkpointer said so just before the others fell silent.
        if (d.core.state === 'primary') d.report('checkpointer', { synced: true }, tick - 200);
        expect(d.handle({ kind: 'message', subject: S.control(PRIMARY), msg: { type: 'roleChange', vmId: VM, term: 1, host: PRIMARY, role: 'primary', peerHost: '', seq: 1, committedEpoch: 0, joinSeq: 0 } }, tick - 1)).toEqual([]);
        return d.handle({ kind: 'timer', name: BEAT }, tick);
      }
    }
  }
}

/** What the core must emit for one machine step. */
function expectStep(m: ModelDriver, effects: Effect[], type: EventType, from: HostAgentState, to: HostAgentState, actions: string[], before: { seq: number; term: number; refused: number }): void {
  const what = `${from} -${type}-> ${to} [${actions.join(', ')}]`;
  const d = m.d;
  const fresh = assignmentsIn(effects, HOST).filter((a) => a.seq > before.seq);
  const assign = actions.find((a) => a in ASSIGNED);
  if (assign === undefined) {
    expect(fresh, `${what}: no new assignment`).toEqual([]);
  } else {
    // One new assignment, the same for every service, each on its own subject.
    expect(fresh.map((a) => a.service), what).toEqual([...HOST_SERVICES]);
    expect(new Set(fresh.map((a) => a.seq)).size, what).toBe(1);
    const { service: _s, ...a } = fresh[0]!;
    for (const x of fresh) expect({ ...x, service: undefined }, what).toEqual({ ...a, service: undefined });
    expect(a.role, what).toBe(ASSIGNED[assign]);
    expect(a.incarnation, what).toBe(1); // the agent started at 0
    switch (assign) {
      case 'assignPrimary':
        if (from === 'claiming') expect(a, what).toMatchObject({ term: m.promotionTerm, peerHost: '', joining: false, firstEpoch: RESTORED_EPOCH + 1 });
        else expect(a, what).toMatchObject({ term: before.term, peerHost: SPARE, joining: true });
        break;
      case 'assignBackup':
        expect(a, what).toMatchObject({ term: m.fsTerm, peerHost: PRIMARY, joining: true, firstEpoch: 0 });
        break;
      case 'assignPromoting':
        expect(a, what).toMatchObject({ term: m.promotionTerm, peerHost: '', joining: false });
        break;
      case 'assignSpare':
        expect(a, what).toMatchObject({ peerHost: '', joining: false });
        break;
      case 'halt':
        expect(effects, what).toContainEqual({ kind: 'cancelTimer', name: BEAT });
        expect(d.armed.has(BEAT), what).toBe(false);
        break;
    }
  }
  // Heartbeats, when the step sends any, say the new state's role; a primary (or claiming) host renews at each.
  const beats = heartbeatsIn(effects, HOST);
  for (const hb of beats) expect(hb.role, what).toBe(ROLE_OF[to]);
  const renewals = renewalsIn(effects);
  const renewingBeats = to === 'primary' || to === 'claiming' ? beats.length : 0;
  if (actions.includes('claimLease')) {
    expect(renewals, what).toHaveLength(1 + renewingBeats);
    expect(renewals[0]!.record, what).toMatchObject({ primaryHost: HOST, term: m.promotionTerm });
  } else {
    expect(renewals, what).toHaveLength(renewingBeats);
  }
  for (const r of renewals) expect(r.record.primaryHost, what).toBe(HOST);
  // Permits only while primary; the promotion's first comes with its primary assignment.
  const permits = permitsIn(effects, HOST);
  if (from === 'claiming' && to === 'primary') expect(permits, what).toMatchObject([{ term: m.promotionTerm, host: HOST }]);
  else if (to !== 'primary') expect(permits, what).toEqual([]);
  expect(d.core.stats.promotionsRefused - before.refused, what).toBe(actions.includes('refusePromotion') ? 1 : 0);
  if (actions.includes('refusePromotion')) expect(effects, what).toContainEqual(expect.objectContaining({ kind: 'log', level: 'warn', event: 'agent.promotion_refused' }));
}

/** Replays `events` on a fresh machine and core, checking the core against the machine at every step. */
function replay(initialRole: InitialRole, events: readonly EventType[]): void {
  const m = new ModelDriver(initialRole);
  let [snapshot] = initialTransition(hostAgentMachine, { initialRole });
  expect(m.d.core.state).toBe(snapshot.value);
  for (const [i, type] of events.entries()) {
    const from = snapshot.value as HostAgentState;
    if (!producible(from, type)) throw new Error(`the core cannot produce ${type} in ${from}`);
    const [next, actions] = transition(hostAgentMachine, snapshot, { type });
    const before = { seq: Math.max(0, ...assignmentsIn(m.d.log, HOST).map((a) => a.seq)), term: m.d.core.term, refused: m.d.core.stats.promotionsRefused };
    const effects = m.step(type);
    const to = next.value as HostAgentState;
    expect(m.d.core.state, `${initialRole}: after ${events.slice(0, i + 1).join(' → ')}`).toBe(to);
    expect(m.d.core.role).toBe(ROLE_OF[to]);
    expectStep(m, effects, type, from, to, actions.map((a) => a.type), before);
    snapshot = next;
  }
}

describe('hostAgentMachine, model-based', () => {
  const byRole = new Map(INITIAL_ROLES.map((r) => [r, getShortestPaths(hostAgentMachine, traversal(r))]));

  it('starts in the role the VM was created with, naming the assignment for it', () => {
    const expected: Record<InitialRole, [HostAgentState, string]> = { primary: ['primary', 'assignPrimary'], backup: ['backup', 'assignBackup'], spare: ['spare', 'assignSpare'] };
    for (const role of INITIAL_ROLES) {
      const [snapshot, actions] = initialTransition(hostAgentMachine, { initialRole: role });
      expect(snapshot.value).toBe(expected[role][0]);
      expect(actions.map((a) => a.type)).toEqual([expected[role][1]]);
    }
  });

  it('reaches every state from every initial role', () => {
    for (const role of INITIAL_ROLES) expect(byRole.get(role)!.map((p) => p.state.value).sort(), role).toEqual([...STATES].sort());
  });

  it('has exactly the documented edges and actions; every other event is ignored', () => {
    for (const role of INITIAL_ROLES) {
      const all = edgesFrom(byRole.get(role)!);
      expect(all).toHaveLength(STATES.length * EVENT_TYPES.length);
      const named = all.filter((e) => e.from !== e.to || e.actions.length > 0);
      expect(named.map(show).sort(), role).toEqual(Object.keys(EDGES).sort());
      for (const e of named) expect(e.actions, show(e)).toEqual(EDGES[show(e)]);
      for (const e of all.filter((x) => !(show(x) in EDGES))) {
        expect(e.to, show(e)).toBe(e.from);
        expect(e.actions, show(e)).toEqual([]);
      }
    }
  });

  it('names only the actions the core performs', () => {
    const used = new Set(Object.values(EDGES).flat());
    expect([...used].sort()).toEqual([...ACTIONS].sort());
    expect(Object.keys(hostAgentMachine.implementations.actions).sort()).toEqual([...ACTIONS].sort());
  });

  it('halts on a dead service from every state but those that hold the only image (promoting, claiming), and stays halted', () => {
    for (const p of byRole.get('spare')!) {
      const [next, actions] = transition(hostAgentMachine, p.state, { type: 'SERVICE_DIED' });
      const waits = p.state.value === 'promoting' || p.state.value === 'claiming';
      expect(next.value).toBe(waits ? p.state.value : 'halted');
      expect(actions.map((a) => a.type)).toEqual(p.state.value === 'halted' || waits ? [] : ['halt']);
    }
  });

  it('agrees with the adjacency map of @xstate/graph', () => {
    const adjacency = getAdjacencyMap(hostAgentMachine, traversal('spare'));
    const fromGraph: string[] = [];
    for (const [from, { transitions }] of Object.entries(adjacency)) {
      for (const { event: ev, state } of Object.values(transitions) as { event: HostAgentEvent; state: Snapshot }[]) fromGraph.push(show({ from, event: ev.type, to: serializeState(state) }));
    }
    expect(fromGraph.sort()).toEqual(edgesFrom(byRole.get('spare')!).map(show).sort());
  });

  describe('on the core', () => {
    it('starts in the state the machine starts in, from every initial role', () => {
      for (const role of INITIAL_ROLES) {
        const m = new ModelDriver(role);
        expect(m.d.core.state).toBe(role);
        expect(assignmentsIn(m.d.log, HOST).map((a) => a.role)).toEqual(HOST_SERVICES.map(() => role));
      }
    });

    it('follows a shortest path to every state, from every initial role', () => {
      for (const role of INITIAL_ROLES) for (const path of byRole.get(role)!) replay(role, eventsOf(path));
    });

    it('follows every edge it can produce, including events a state ignores, from every initial role', () => {
      let replayed = 0;
      for (const role of INITIAL_ROLES) {
        const paths = byRole.get(role)!;
        const pathTo = new Map(paths.map((p) => [serializeState(p.state), p]));
        for (const edge of edgesFrom(paths)) {
          if (!producible(edge.from, edge.event)) continue;
          replay(role, [...eventsOf(pathTo.get(edge.from)!), edge.event]);
          replayed++;
        }
      }
      const unproducible = Object.values(UNPRODUCIBLE).reduce((n, states) => n + states.length, 0);
      expect(replayed).toBe(INITIAL_ROLES.length * (STATES.length * EVENT_TYPES.length - unproducible));
    });

    it('follows every simple path from a spare', () => {
      const paths = getSimplePaths(hostAgentMachine, { ...traversal('spare'), events: (s: Snapshot) => EVENT_TYPES.filter((t) => producible(s.value as HostAgentState, t)).map((type) => ({ type }) as HostAgentEvent) });
      expect(paths.length).toBeGreaterThan(STATES.length);
      expect(new Set(paths.map((p) => serializeState(p.state)))).toEqual(new Set(STATES));
      for (const path of paths) replay('spare', eventsOf(path));
    });

    it('follows a whole life: joined, promoted, re-protected, deposed, rejoined, image lost, rejoined, promoted again, halted by a restart', () => {
      const life: EventType[] = ['JOIN', 'PROMOTE', 'RESTORED', 'LEASE_GRANTED', 'PEER_CHANGED', 'DEPOSED', 'JOIN', 'IMAGE_LOST', 'JOIN', 'PROMOTE', 'RESTORED', 'LEASE_GRANTED', 'SERVICE_RESTARTED'];
      // getPathsFromEvents builds its default start without the input: the start is given.
      const [fromState] = initialTransition(hostAgentMachine, { initialRole: 'spare' });
      const [path] = getPathsFromEvents(hostAgentMachine, life.map((type) => ({ type }) as HostAgentEvent), { input: { initialRole: 'spare' }, fromState, serializeState });
      expect(path!.state.value).toBe('halted');
      expect(new Set(path!.steps.map((s) => s.state.value))).toEqual(new Set(STATES));
      replay('spare', eventsOf(path!));
    });
  });
});
