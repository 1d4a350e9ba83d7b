import { HOST_SERVICES, type AssignedRole, type Assignment, type Heartbeat, type HostRole, type HostService, type ReleasePermit, type RoleChange, type ServiceStatus } from '../../../lib/codec/messages.js';
import type { Effect, Input, LeaseOp, LeaseRecord, LeaseResult } from '../../../lib/runtime/types.js';
import { HostAgentCore, type HostAgentOptions } from '../../../services/host-agent/core.js';
import { BACKUP, casOp, INTERVAL_US, LEASE_US, leaseOps, PRIMARY, S, sentOn, SPARE, VM } from '../failover/support.js';

export { BACKUP, INTERVAL_US, LEASE_US, PRIMARY, S, SPARE, VM };

export const BEAT = 'agent.heartbeat';
/** The permit ends this long before the lease may expire (safety margin + clock skew). */
export const MARGIN_US = 7_000;
/** Ten missed reports, as options-from-config sets it. */
export const SILENCE_US = 10 * INTERVAL_US;
/** The agent starts at this instant of its clock: its incarnation is START_US + 1. */
export const START_US = 0;

type LeaseEffect = Extract<Effect, { kind: 'lease' }>;
type CasOp = Extract<LeaseOp, { type: 'cas' }>;

export const agentOptions = (host: string, initialRole: HostRole, initialPeerHost: string, over: Partial<HostAgentOptions> = {}): HostAgentOptions => ({
  vmId: VM,
  host,
  subjects: S,
  heartbeatIntervalUs: INTERVAL_US,
  leaseDurationUs: LEASE_US,
  permitMarginUs: MARGIN_US,
  // A service never heard from is as dead as a silent one (the tests start every service at once).
  serviceStartupUs: SILENCE_US,
  serviceSilenceUs: SILENCE_US,
  initialRole,
  initialPeerHost,
  ...over,
});

/** The assignments sent, in order, with the service each went to. */
export const assignmentsIn = (effects: readonly Effect[], host: string): (Assignment & { service: HostService })[] =>
  effects.flatMap((e) => {
    if (e.kind !== 'send' || e.msg.type !== 'assignment') return [];
    const service = HOST_SERVICES.find((s) => S.host(host).assign(s) === e.subject);
    if (service === undefined) throw new Error(`assignment on unexpected subject ${e.subject}`);
    return [{ ...e.msg, service }];
  });
export const heartbeatsIn = (effects: readonly Effect[], host: string): Heartbeat[] => sentOn(effects, S.heartbeat(host)) as Heartbeat[];
export const permitsIn = (effects: readonly Effect[], host: string): ReleasePermit[] => sentOn(effects, S.host(host).permit) as ReleasePermit[];
export const renewalsIn = (effects: readonly Effect[]): CasOp[] => leaseOps(effects).map((e) => casOp(e.op));

/**
 * A shell for one host agent: it keeps the timer the agent armed, its
 * outstanding renewal, and every effect; and it stands in for the host's
 * services, which report on the agent's status subject (each with its own
 * incarnation, on the newest assignment it was sent unless told otherwise).
 */
export class AgentDriver {
  readonly core: HostAgentCore;
  readonly host: string;
  nowUs = 0;
  readonly armed = new Map<string, number>();
  /** The newest renewal the agent sent. */
  pending: LeaseEffect | null = null;
  readonly log: Effect[] = [];
  readonly incarnations = new Map<HostService, number>(HOST_SERVICES.map((s, i) => [s, 1_000 + i]));
  #roleChangeSeq = 0;
  #revision = 0;
  /** Reports are numbered across services and restarts here: each newer than the last, as a service's own are. */
  #reportSeq = 0;

  constructor(options: HostAgentOptions) {
    this.core = new HostAgentCore(options);
    this.host = options.host;
  }

  static started(host: string, role: HostRole, peer: string, over: Partial<HostAgentOptions> = {}): AgentDriver {
    const d = new AgentDriver(agentOptions(host, role, peer, over));
    d.handle({ kind: 'start' }, START_US);
    return d;
  }

  handle(input: Input, atUs = this.nowUs): Effect[] {
    if (atUs < this.nowUs) throw new Error(`time went back: ${atUs} < ${this.nowUs}`);
    this.nowUs = atUs;
    if (input.kind === 'timer') this.armed.delete(input.name);
    const effects = this.core.handle(input, atUs);
    for (const e of effects) {
      if (e.kind === 'setTimer') this.armed.set(e.name, e.atUs);
      if (e.kind === 'cancelTimer') this.armed.delete(e.name);
      if (e.kind === 'lease') this.pending = e;
    }
    this.log.push(...effects);
    return effects;
  }

  /** Fires the heartbeat timer when it is due (or at `atUs`, later). */
  beat(atUs?: number): Effect[] {
    const due = this.armed.get(BEAT);
    if (due === undefined) throw new Error('the heartbeat timer is not armed');
    return this.handle({ kind: 'timer', name: BEAT }, Math.max(atUs ?? due, this.nowUs));
  }

  /** The newest assignment sent to `service`. */
  current(service: HostService = 'guest'): Assignment {
    const a = assignmentsIn(this.log, this.host).filter((x) => x.service === service).at(-1);
    if (a === undefined) throw new Error(`no assignment sent to ${service}`);
    const { service: _s, ...rest } = a;
    return rest;
  }

  /** A report of `service` on the newest assignment it was sent. */
  status(service: HostService, fields: Partial<ServiceStatus> = {}): ServiceStatus {
    const a = this.current(service);
    return {
      type: 'serviceStatus',
      vmId: VM,
      term: a.term,
      host: this.host,
      service,
      incarnation: this.incarnations.get(service)!,
      assignmentSeq: a.seq,
      agentIncarnation: a.incarnation,
      role: a.role,
      epoch: 0,
      synced: false,
      ready: false,
      txEndSeqs: [],
      chunksStaged: 0,
      reportSeq: ++this.#reportSeq,
      followedAgentIncarnation: 0,
      ...fields,
    };
  }

  report(service: HostService, fields: Partial<ServiceStatus> = {}, atUs = this.nowUs): Effect[] {
    return this.handle({ kind: 'message', subject: S.host(this.host).status, msg: this.status(service, fields) }, atUs);
  }

  /** Every service reports on its newest assignment. */
  reportAll(fields: Partial<Record<HostService, Partial<ServiceStatus>>> = {}, atUs = this.nowUs): Effect[] {
    return HOST_SERVICES.flatMap((s) => this.report(s, fields[s] ?? {}, atUs));
  }

  /** `service` restarts and reports as a fresh, unassigned process. */
  restart(service: HostService, fields: Partial<ServiceStatus> = {}, atUs = this.nowUs): Effect[] {
    this.incarnations.set(service, this.incarnations.get(service)! + 1);
    return this.report(service, { assignmentSeq: 0, agentIncarnation: 0, role: 'spare', ...fields }, atUs);
  }

  /** A role change from the failover service; each gets the next seq unless given one. */
  roleChange(role: 'primary' | 'backup', term: number, peerHost: string, seq = ++this.#roleChangeSeq, committedEpoch = 0, joinSeq = role === 'backup' ? seq : 0): RoleChange {
    this.#roleChangeSeq = Math.max(this.#roleChangeSeq, seq);
    return { type: 'roleChange', vmId: VM, term, host: this.host, role, peerHost, seq, committedEpoch, joinSeq };
  }

  control(change: RoleChange, atUs = this.nowUs): Effect[] {
    return this.handle({ kind: 'message', subject: S.control(this.host), msg: change }, atUs);
  }

  /** Answers the newest renewal. The store's revision grows with every answer that carries one. */
  answer(outcome: LeaseResult['outcome'], record?: LeaseRecord | null, atUs = this.nowUs): Effect[] {
    const p = this.pending;
    if (p === null) throw new Error('no renewal sent');
    const cas = casOp(p.op);
    const rec = record === undefined ? (outcome === 'unavailable' ? null : cas.record) : record;
    const revision = outcome === 'unavailable' ? 0 : Math.max(this.#revision, cas.expectedRevision) + 1;
    if (outcome !== 'unavailable') this.#revision = revision;
    return this.handle({ kind: 'leaseResult', result: { requestId: p.requestId, outcome, record: rec, revision } }, atUs);
  }

  /** The revision the store gave in its newest answer. */
  get revision(): number {
    return this.#revision;
  }

  /** The newest renewal sent, as a compare-and-set. */
  get pendingCas(): CasOp {
    if (this.pending === null) throw new Error('no renewal sent');
    return casOp(this.pending.op);
  }
}

/** A role as a service runs it: the assignment's role. */
export const rolesOf = (as: readonly { role: AssignedRole }[]): AssignedRole[] => as.map((a) => a.role);
