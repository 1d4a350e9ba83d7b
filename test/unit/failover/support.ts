import type { Heartbeat, HostRole, RoleChange, WireMessage } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import type { Effect, Input, LeaseOp, LeaseRecord, LeaseResult } from '../../../lib/runtime/types.js';
import { FailoverCore, type FailoverOptions } from '../../../services/failover/core.js';

export const VM = 'vm1';
export const S = subjects(VM);
export const PRIMARY = 'host-a';
export const BACKUP = 'host-b';
export const SPARE = 'host-c';

export const INTERVAL_US = 10_000;
export const MISS_COUNT = 3;
export const LEASE_US = 30_000;
export const SKEW_US = 1_000;
/** The failover core's timer names (services/failover/core.ts). */
export const lateTimer = (host: string) => `failover.late.${host}`;
export const silentTimer = (host: string) => `failover.silent.${host}`;
export const PROMOTE_TIMER = 'failover.promote';

export const FAILOVER_OPTIONS: FailoverOptions = {
  vmId: VM,
  subjects: S,
  primaryHost: PRIMARY,
  backupHost: BACKUP,
  spareHosts: [SPARE],
  heartbeatIntervalUs: INTERVAL_US,
  missCount: MISS_COUNT,
  leaseDurationUs: LEASE_US,
  clockSkewUs: SKEW_US,
};

export const message = (subject: string, msg: WireMessage): Input => ({ kind: 'message', subject, msg });
export const timer = (name: string): Input => ({ kind: 'timer', name });
export const leaseResult = (result: LeaseResult): Input => ({ kind: 'leaseResult', result });

/** A heartbeat's controlSeq by default: 0, the host has taken no role change (tests of repeats pass their own). */
export const NONE_TAKEN = 0;
/** A heartbeat's supervisor incarnation by default: every host's agent has run since the start. */
export const FIRST_INCARNATION = 1;
/**
 * A heartbeat; primaries and backups hold a complete image unless told otherwise, a backup's following the stream
 * of the primary agent that has run since the start (`followed`).
 */
export const heartbeat = (host: string, role: HostRole, term: number, epoch = 0, synced = role !== 'spare', controlSeq = NONE_TAKEN, incarnation = FIRST_INCARNATION, chunksStaged = 0, followed = role === 'backup' ? FIRST_INCARNATION : 0): Heartbeat => ({
  type: 'heartbeat',
  vmId: VM,
  term,
  host,
  role,
  epoch,
  synced,
  controlSeq,
  incarnation,
  chunksStaged,
  followedAgentIncarnation: followed,
});
export const heartbeatInput = (host: string, role: HostRole, term: number, epoch = 0, synced = role !== 'spare', controlSeq = NONE_TAKEN, incarnation = FIRST_INCARNATION, chunksStaged = 0, followed = role === 'backup' ? FIRST_INCARNATION : 0): Input =>
  message(S.heartbeat(host), heartbeat(host, role, term, epoch, synced, controlSeq, incarnation, chunksStaged, followed));
let lastSeq = 0;
/** A role change; each gets the next sequence number unless given one. */
export const roleChange = (host: string, role: 'primary' | 'backup', term: number, peerHost = '', seq = ++lastSeq): RoleChange => ({ type: 'roleChange', vmId: VM, term, host, role, peerHost, seq, committedEpoch: 0, joinSeq: role === 'backup' ? seq : 0 });

type Send = Extract<Effect, { kind: 'send' }>;
type LeaseEffect = Extract<Effect, { kind: 'lease' }>;
type SetTimer = Extract<Effect, { kind: 'setTimer' }>;

export const sends = (effects: readonly Effect[]): Send[] => effects.filter((e): e is Send => e.kind === 'send');
export const sentOn = (effects: readonly Effect[], subject: string): WireMessage[] => sends(effects).filter((e) => e.subject === subject).map((e) => e.msg);
export const roleChangesTo = (effects: readonly Effect[], host: string): RoleChange[] => sentOn(effects, S.control(host)).filter((m): m is RoleChange => m.type === 'roleChange');
export const allRoleChanges = (effects: readonly Effect[]): RoleChange[] => sends(effects).map((e) => e.msg).filter((m): m is RoleChange => m.type === 'roleChange');
export const leaseOps = (effects: readonly Effect[]): LeaseEffect[] => effects.filter((e): e is LeaseEffect => e.kind === 'lease');
export const timers = (effects: readonly Effect[]): Map<string, number> => new Map(effects.filter((e): e is SetTimer => e.kind === 'setTimer').map((e) => [e.name, e.atUs]));

export const casOp = (op: LeaseOp): Extract<LeaseOp, { type: 'cas' }> => {
  if (op.type !== 'cas') throw new Error(`expected a compare-and-set, got ${op.type}`);
  return op;
};

/** The record the primary's supervisor keeps renewing: written at `sentUs`. */
export const primaryRecord = (sentUs: number, term = 1, host = PRIMARY): LeaseRecord => ({ primaryHost: host, term, expiresAtMs: (sentUs + LEASE_US) / 1_000 });

/**
 * Drives a FailoverCore with inputs at explicit virtual times and keeps what a
 * shell would: the timers it armed (last deadline per name) and its
 * outstanding lease request.
 */
export class FailoverDriver {
  readonly core: FailoverCore;
  constructor(options: FailoverOptions = FAILOVER_OPTIONS) {
    this.core = new FailoverCore(options);
  }
  nowUs = 0;
  readonly armed = new Map<string, number>();
  pending: LeaseEffect | null = null;
  /** Every effect, in order. */
  readonly log: Effect[] = [];

  handle(input: Input, atUs = this.nowUs): Effect[] {
    if (atUs < this.nowUs) throw new Error(`time went back: ${atUs} < ${this.nowUs}`);
    this.nowUs = atUs;
    if (input.kind === 'timer') this.armed.delete(input.name); // it fired; the core may arm it again
    const effects = this.core.handle(input, atUs);
    for (const e of effects) {
      if (e.kind === 'setTimer') this.armed.set(e.name, e.atUs);
      if (e.kind === 'cancelTimer') this.armed.delete(e.name);
      if (e.kind === 'lease') this.pending = e;
    }
    this.log.push(...effects);
    return effects;
  }

  /** Starts the core at `atUs` and answers its first lease read with `current` at revision `revision`. */
  start(atUs = 0, current: LeaseRecord | null = primaryRecord(0), revision = current === null ? 0 : 1): Effect[] {
    const effects = this.handle({ kind: 'start' }, atUs);
    return [...effects, ...this.answer({ outcome: 'ok', record: current, revision })];
  }

  /** Fires the timer `name` at the time it was armed for (never before now). */
  fire(name: string): Effect[] {
    const atUs = this.armed.get(name);
    if (atUs === undefined) throw new Error(`timer ${name} is not armed`);
    return this.handle(timer(name), Math.max(atUs, this.nowUs));
  }

  /** Answers the outstanding lease request. */
  answer(result: Omit<LeaseResult, 'requestId'>, atUs = this.nowUs): Effect[] {
    const pending = this.pending;
    if (pending === null) throw new Error('no lease request outstanding');
    this.pending = null;
    return this.handle(leaseResult({ requestId: pending.requestId, ...result }), atUs);
  }

  /** Answers the outstanding compare-and-set (a membership write: the lease naming a new backup) as applied. */
  grantMembership(atUs = this.nowUs): Effect[] {
    const cas = this.pendingCas;
    return this.answer({ outcome: 'ok', record: cas.record, revision: cas.expectedRevision + 1 }, atUs);
  }

  /** Grants membership writes (compare-and-sets that keep the primary as holder) until none is outstanding; all effects meanwhile. */
  settleMemberships(atUs = this.nowUs): Effect[] {
    const effects: Effect[] = [];
    for (let i = 0; i < 8 && this.pending !== null && this.pending.op.type === 'cas' && this.pending.op.record.primaryHost === this.core.primaryHost; i++) effects.push(...this.grantMembership(atUs));
    return effects;
  }

  /** The outstanding lease request, which must be a compare-and-set. */
  get pendingCas(): Extract<LeaseOp, { type: 'cas' }> {
    if (this.pending === null) throw new Error('no lease request outstanding');
    return casOp(this.pending.op);
  }
}
