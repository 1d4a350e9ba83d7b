/**
 * Lease decisions: pure, no I/O, no clock reads. Time comes in as LeaseNow
 * (the caller's wall and monotonic clocks), store answers come in as values.
 * The safety rule and its derivation are in README.md.
 */
import { assert } from '../assert.js';
import { StaleTermError } from './errors.js';
import type { LeaseOptions } from './options.js';
import type { LeaseNow, LeaseRecord, Revision, VersionedLease } from './types.js';

export type LeaseWriteKind = 'create' | 'renew' | 'takeOver';

/** A write a host wants to make. One at a time per host and VM. */
export interface LeaseAttempt {
  readonly kind: LeaseWriteKind;
  readonly record: LeaseRecord;
  /** The revision to compare-and-set against; null for a create (no record may exist). */
  readonly expectedRevision: Revision | null;
  /** The writer's clocks when it sent the write: its release deadline counts from here. */
  readonly sentAt: LeaseNow;
  /**
   * The writer may not release before its wall clock reaches this: the
   * expiry of the record it replaced (−∞ for a create). Matters for a
   * take-over on the failover service's verdict, before that expiry.
   */
  readonly releaseNotBeforeWallMs: number;
}

/** A lease this host holds: a write of its own that the store confirmed. */
export interface LeaseGrant {
  readonly record: LeaseRecord;
  readonly revision: Revision;
  readonly sentAt: LeaseNow;
  readonly releaseNotBeforeWallMs: number;
}

/** What the failover service concluded about the current holder. */
export interface FailoverVerdict {
  /** The holder stopped heartbeating long enough to be declared dead: take over without waiting for expiry. */
  readonly holderDead: boolean;
}

export const HOLDER_ALIVE: FailoverVerdict = { holderDead: false };

export type AcquireDecision =
  | { readonly kind: 'write'; readonly attempt: LeaseAttempt }
  | { readonly kind: 'held'; readonly grant: LeaseGrant }
  /** Another host holds a live lease; look again at `untilWallMs` (own wall clock) or on a verdict. */
  | { readonly kind: 'wait'; readonly holder: string; readonly term: number; readonly untilWallMs: number };

export type RenewDecision =
  | { readonly kind: 'write'; readonly attempt: LeaseAttempt }
  /** A previous write lost its CAS or its outcome is unknown: re-read (observe) first. */
  | { readonly kind: 'read' };

/** Expired on the observer's wall clock. */
export function isExpired(record: LeaseRecord, observerWallMs: number): boolean {
  return observerWallMs >= record.expiresAtMs;
}

/** The record `hostId` writes at `now` for `term`. */
export function leaseRecordAt(hostId: string, term: number, now: LeaseNow, options: LeaseOptions): LeaseRecord {
  return { primaryHost: hostId, term, expiresAtMs: now.wallMs + options.leaseDurationMs };
}

/**
 * The holder's last instant of release, on its own monotonic clock:
 * `expiresAtMs − clockSkewBoundMs − safetyMs` translated to the monotonic
 * clock at the moment the write was sent.
 */
export function releaseDeadlineMonoMs(grant: LeaseGrant, options: LeaseOptions): number {
  const durationMs = grant.record.expiresAtMs - grant.sentAt.wallMs;
  return grant.sentAt.monoMs + durationMs - options.clockSkewBoundMs - options.safetyMs;
}

/** Whether the holder of `grant` may release output at `now` (strictly before the deadline, not before the predecessor's expiry). */
export function canRelease(grant: LeaseGrant | null, now: LeaseNow, options: LeaseOptions): boolean {
  if (grant === null) return false;
  return now.wallMs >= grant.releaseNotBeforeWallMs && now.monoMs < releaseDeadlineMonoMs(grant, options);
}

/**
 * What `hostId` should write to become the holder, given a fresh read.
 * No record: create at `createTerm`. A record (anyone's, even one of this
 * host's that it does not hold): take over at term + 1 when it is expired on
 * this host's wall clock or the failover service declared its holder dead;
 * otherwise wait.
 */
export function decideAcquire(hostId: string, observed: VersionedLease | null, now: LeaseNow, options: LeaseOptions, verdict: FailoverVerdict = HOLDER_ALIVE, createTerm = 1): AcquireDecision {
  assert(Number.isInteger(createTerm) && createTerm >= 1, `create term ${createTerm}`);
  if (observed === null) {
    const record = leaseRecordAt(hostId, createTerm, now, options);
    return { kind: 'write', attempt: { kind: 'create', record, expectedRevision: null, sentAt: now, releaseNotBeforeWallMs: Number.NEGATIVE_INFINITY } };
  }
  const current = observed.record;
  if (!isExpired(current, now.wallMs) && !verdict.holderDead) {
    return { kind: 'wait', holder: current.primaryHost, term: current.term, untilWallMs: current.expiresAtMs };
  }
  const record = leaseRecordAt(hostId, current.term + 1, now, options);
  return {
    kind: 'write',
    attempt: { kind: 'takeOver', record, expectedRevision: observed.revision, sentAt: now, releaseNotBeforeWallMs: current.expiresAtMs },
  };
}

/** The holder's renewal: same host, same term, CAS on the revision it holds. */
export function renewAttempt(grant: LeaseGrant, now: LeaseNow, options: LeaseOptions): LeaseAttempt {
  return {
    kind: 'renew',
    record: leaseRecordAt(grant.record.primaryHost, grant.record.term, now, options),
    expectedRevision: grant.revision,
    sentAt: now,
    releaseNotBeforeWallMs: grant.releaseNotBeforeWallMs,
  };
}

/** Fencing at a receiver: a message from an older term than the current one is rejected. */
export function checkTerm(messageTerm: number, currentTerm: number): void {
  if (messageTerm < currentTerm) throw new StaleTermError(`term ${messageTerm} is older than the current term ${currentTerm}`);
}

function sameRecord(a: LeaseRecord, b: LeaseRecord): boolean {
  return a.primaryHost === b.primaryHost && a.term === b.term && a.expiresAtMs === b.expiresAtMs;
}

/**
 * One host's lease on one VM: the decisions above plus what the host knows
 * (its grant, its outstanding write, a write whose outcome it lost). Pure:
 * the caller performs the writes and reports the outcomes, one write at a
 * time.
 *
 *   acquire(read) / renew() → write → written(rev) | conflict() | unknown()
 *   conflict / unknown → the next step is a read: observe(read) or acquire(read)
 */
export class LeaseHolder {
  #grant: LeaseGrant | null = null;
  #pending: LeaseAttempt | null = null;
  /** A write whose outcome is unknown; a later read may show it applied. */
  #unresolved: LeaseAttempt | null = null;
  #mustRead = false;
  #highestTermSeen = 0;

  constructor(
    readonly hostId: string,
    readonly options: LeaseOptions,
  ) {}

  get grant(): LeaseGrant | null {
    return this.#grant;
  }

  /** The write in flight, if any. */
  get pending(): LeaseAttempt | null {
    return this.#pending;
  }

  /** The term this host holds, or null. */
  get term(): number | null {
    return this.#grant?.record.term ?? null;
  }

  get highestTermSeen(): number {
    return this.#highestTermSeen;
  }

  /** A previous write lost or has an unknown outcome: read before writing again. */
  get mustRead(): boolean {
    return this.#mustRead;
  }

  canRelease(now: LeaseNow): boolean {
    return canRelease(this.#grant, now, this.options);
  }

  /** The last monotonic instant of release under the current grant, or null (for a timer). */
  releaseDeadlineMonoMs(): number | null {
    return this.#grant === null ? null : releaseDeadlineMonoMs(this.#grant, this.options);
  }

  /** Whether the holder should renew now (renewIntervalMs after it sent the write it holds). */
  renewDue(now: LeaseNow): boolean {
    return this.#grant !== null && now.monoMs - this.#grant.sentAt.monoMs >= this.options.renewIntervalMs;
  }

  /**
   * Reconciles with a fresh read: adopts a write whose outcome was unknown if
   * the store shows it, keeps the grant while the record is still this host's
   * at the same term, drops it (fenced) otherwise.
   */
  observe(observed: VersionedLease | null): void {
    assert(this.#pending === null, `${this.hostId}: read reconciled while a write is outstanding`);
    const unresolved = this.#unresolved;
    this.#unresolved = null;
    this.#mustRead = false;
    if (observed === null) {
      // The record is gone (never written, or deleted by an operator): nothing to hold.
      this.#grant = null;
      return;
    }
    const current = observed.record;
    this.#highestTermSeen = Math.max(this.#highestTermSeen, current.term);
    if (unresolved !== null && sameRecord(unresolved.record, current)) {
      this.#grant = { record: current, revision: observed.revision, sentAt: unresolved.sentAt, releaseNotBeforeWallMs: unresolved.releaseNotBeforeWallMs };
      return;
    }
    const held = this.#grant;
    if (held !== null && current.primaryHost === this.hostId && current.term === held.record.term) {
      // Still ours. A newer revision at our term can only be a write of ours
      // we lost track of: keep the older send time (an earlier, safe deadline)
      // and compare-and-set against the newer revision from now on.
      if (observed.revision !== held.revision) this.#grant = { ...held, revision: observed.revision };
      return;
    }
    this.#grant = null;
  }

  /**
   * Given a fresh read, what to write to hold the lease (create, take over),
   * or that it is held already, or that another host's live lease must be
   * waited out (or declared dead by the failover service).
   */
  acquire(observed: VersionedLease | null, now: LeaseNow, verdict: FailoverVerdict = HOLDER_ALIVE): AcquireDecision {
    this.observe(observed);
    if (this.#grant !== null) return { kind: 'held', grant: this.#grant };
    const decision = decideAcquire(this.hostId, observed, now, this.options, verdict, this.#highestTermSeen + 1);
    if (decision.kind === 'write') this.#pending = decision.attempt;
    return decision;
  }

  /** The holder's renewal. StaleTermError when this host holds no lease (it never did, or it was fenced). */
  renew(now: LeaseNow): RenewDecision {
    assert(this.#pending === null, `${this.hostId}: renew while a write is outstanding`);
    if (this.#grant === null) throw new StaleTermError(`${this.hostId} holds no lease to renew (highest term seen ${this.#highestTermSeen})`);
    if (this.#mustRead) return { kind: 'read' };
    const attempt = renewAttempt(this.#grant, now, this.options);
    this.#pending = attempt;
    return { kind: 'write', attempt };
  }

  /** The outstanding write was applied at `revision`: it becomes the grant. */
  written(revision: Revision): LeaseGrant {
    const attempt = this.#takePending('written');
    this.#grant = { record: attempt.record, revision, sentAt: attempt.sentAt, releaseNotBeforeWallMs: attempt.releaseNotBeforeWallMs };
    this.#highestTermSeen = Math.max(this.#highestTermSeen, attempt.record.term);
    return this.#grant;
  }

  /**
   * The outstanding write lost its compare-and-set: it was not applied. A
   * grant stays until a read says otherwise (its deadline stays safe: a
   * take-over must wait out the record it replaced).
   */
  conflict(): void {
    this.#takePending('conflict');
    this.#mustRead = true;
  }

  /** The outstanding write's outcome is unknown (store unavailable, response lost). */
  unknown(): void {
    this.#unresolved = this.#takePending('unknown');
    this.#mustRead = true;
  }

  #takePending(outcome: string): LeaseAttempt {
    const attempt = this.#pending;
    assert(attempt !== null, `${this.hostId}: ${outcome} without an outstanding write`);
    this.#pending = null;
    return attempt;
  }
}
