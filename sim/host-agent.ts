import type { HostRole, RoleChange } from '../lib/codec/messages.js';
import type { Subjects } from '../lib/codec/subjects.js';
import type { Core, Effect, Input, LeaseRecord } from '../lib/runtime/types.js';
import { US_PER_MS } from '../lib/units.js';

const TIMER_BEAT = 'host.heartbeat';
const TIMER_START = 'host.start';
const TIMER_FENCE = 'host.fence';

export interface HostAgentOptions {
  readonly vmId: string;
  readonly host: string;
  readonly subjects: Subjects;
  readonly heartbeatIntervalUs: number;
  readonly leaseDurationUs: number;
  /** The primary stops releasing output this long before its lease expires. */
  readonly leaseSafetyUs: number;
  /** The backup the first lease names, when this host writes it (the first primary). */
  readonly initialBackupHost?: string;
}

export interface HostAgentHooks {
  /** The host's role, the epoch it reports (committed on a primary, applied on a backup) and whether its image is complete. */
  status(): { role: HostRole; term: number; epoch: number; synced: boolean };
  /** Time the supervisor needs before the new role's services run (restoring the guest image). */
  startDelayUs(change: RoleChange): number;
  /** A role change arrived: stop what the old role did at once (a backup stops applying checkpoints). */
  prepare(change: RoleChange, nowUs: number): void;
  /** The failover service assigned this host a role: the simulated supervisor starts the services. */
  onRoleChange(change: RoleChange, nowUs: number): void;
  /** The lease could not be renewed in time: stop releasing output. */
  onFenced(nowUs: number): void;
  /** A renewal succeeded again under the same term (the store was out, nobody took over): release again. */
  onUnfenced(nowUs: number): void;
}

/**
 * The simulated host supervisor: sends heartbeats, renews the primary's lease
 * by compare-and-set on its term, fences its host when renewal fails, and
 * starts services when the failover service changes the host's role. It dies
 * with its host.
 */
export class HostAgentCore implements Core {
  readonly name: string;
  readonly subscriptions: readonly string[];
  #leaseRevision = 0;
  #renewalRequest = 0;
  /** Output may be released until this instant (own clock), from the last successful renewal. */
  #releaseUntilUs = 0;
  fenced = false;
  /** Fenced by a newer lease holder, not just by a failed renewal. */
  #fencedForGood = false;
  /** `seq` of the newest role change taken; heartbeats report it, older or repeated ones are ignored. */
  #controlSeq = 0;
  /** Role changes not newer than one already taken (repeats, or copies delayed on the bus), ignored. */
  staleRoleChanges = 0;
  /** The lease's backup as last seen in the store: only the failover service changes it, renewals carry it over. */
  #recordBackupHost: string;

  constructor(
    readonly options: HostAgentOptions,
    readonly hooks: HostAgentHooks,
  ) {
    this.name = `host.${options.host}`;
    this.#recordBackupHost = options.initialBackupHost ?? '';
    this.subscriptions = [options.subjects.control(options.host)];
  }

  get releaseUntilUs(): number {
    return this.#releaseUntilUs;
  }

  handle(input: Input, nowUs: number): Effect[] {
    const out: Effect[] = [];
    switch (input.kind) {
      case 'start':
        this.#beat(nowUs, out);
        break;
      case 'timer':
        if (input.name === TIMER_BEAT) this.#beat(nowUs, out);
        else if (input.name === TIMER_FENCE) {
          // Exactly when the lease may lapse, not at the next heartbeat: a successor may start right after.
          if (this.hooks.status().role === 'primary' && nowUs >= this.#releaseUntilUs) this.#fence(nowUs);
        }
        else if (input.name === TIMER_START && this.#pendingChange !== null) {
          const change = this.#pendingChange;
          this.#pendingChange = null;
          this.#fencedForGood = false;
          this.fenced = false;
          if (change.role === 'primary' && this.hooks.status().role !== 'primary') {
            // A new primary starts its services only once it has renewed the lease itself: the lease
            // the failover service took for it has been running since before the promotion.
            this.#awaitingLease = change;
            this.#retriedThisBeat = false;
            this.#renew(nowUs, out, change.term);
          } else {
            this.hooks.onRoleChange(change, nowUs);
            this.#beat(nowUs, out);
          }
        }
        break;
      case 'message':
        if (input.msg.type !== 'roleChange' || input.msg.host !== this.options.host) break;
        if (input.msg.seq <= this.#controlSeq) {
          this.staleRoleChanges++; // a stale copy must not undo a newer role (a dropped peer, a lost primary role)
          break;
        }
        // While one change is starting, a newer one waits: the failover service repeats it until our heartbeat shows it.
        if (this.#pendingChange === null) {
          this.#controlSeq = input.msg.seq;
          this.#pendingChange = input.msg;
          this.hooks.prepare(input.msg, nowUs);
          out.push({ kind: 'setTimer', name: TIMER_START, atUs: nowUs + this.hooks.startDelayUs(input.msg) });
        }
        break;
      case 'leaseResult': {
        const r = input.result;
        if (r.requestId !== this.#renewalRequest) break;
        if (r.outcome === 'ok') {
          this.#leaseRevision = r.revision;
          const awaited = this.#awaitingLease;
          if (awaited !== null) {
            this.#awaitingLease = null;
            this.hooks.onRoleChange(awaited, nowUs);
            this.#beat(nowUs, out);
          }
          this.#releaseUntilUs = this.#renewalSentUs + this.options.leaseDurationUs - this.options.leaseSafetyUs;
          out.push({ kind: 'setTimer', name: TIMER_FENCE, atUs: this.#releaseUntilUs });
          if (this.fenced && !this.#fencedForGood) {
            this.fenced = false;
            this.hooks.onUnfenced(nowUs);
          }
        } else if (r.outcome === 'conflict') {
          // Someone wrote the lease: if it names another host or a higher term, we are fenced.
          this.#leaseRevision = r.revision;
          if (r.record?.backupHost !== undefined) this.#recordBackupHost = r.record.backupHost;
          const s = this.hooks.status();
          const ourTerm = this.#awaitingLease?.term ?? s.term;
          if (r.record !== null && (r.record.primaryHost !== this.options.host || r.record.term > ourTerm)) {
            this.#fencedForGood = true; // another host holds the lease: only a role change brings us back
            this.#fence(nowUs);
          } else if (r.record !== null && (s.role === 'primary' || this.#awaitingLease !== null) && !this.#retriedThisBeat) {
            // Our own lease, written by someone else (the failover service at promotion): renew on its revision now.
            this.#retriedThisBeat = true;
            this.#renew(nowUs, out, this.#awaitingLease?.term ?? s.term);
          }
        }
        break;
      }
    }
    return out;
  }

  #renewalSentUs = 0;
  #pendingChange: RoleChange | null = null;
  #retriedThisBeat = false;
  /** A promotion waiting for this host's first own lease renewal. */
  #awaitingLease: RoleChange | null = null;

  #beat(nowUs: number, out: Effect[]): void {
    const s = this.hooks.status();
    out.push({ kind: 'send', subject: this.options.subjects.heartbeat(this.options.host), msg: { type: 'heartbeat', vmId: this.options.vmId, term: s.term, host: this.options.host, role: s.role, epoch: s.epoch, synced: s.synced, controlSeq: this.#controlSeq } });
    out.push({ kind: 'setTimer', name: TIMER_BEAT, atUs: nowUs + this.options.heartbeatIntervalUs });
    if (this.#awaitingLease !== null) {
      this.#retriedThisBeat = false;
      this.#renew(nowUs, out, this.#awaitingLease.term); // still waiting for our first renewal
      return;
    }
    if (s.role !== 'primary' || this.#fencedForGood) return;
    if (this.#releaseUntilUs > 0 && nowUs >= this.#releaseUntilUs) this.#fence(nowUs);
    this.#renew(nowUs, out);
  }

  #renew(nowUs: number, out: Effect[], term = this.hooks.status().term): void {
    const record: LeaseRecord = { primaryHost: this.options.host, term, expiresAtMs: (nowUs + this.options.leaseDurationUs) / US_PER_MS, backupHost: this.#recordBackupHost };
    this.#renewalRequest++;
    this.#renewalSentUs = nowUs;
    out.push({ kind: 'lease', requestId: this.#renewalRequest, op: { type: 'cas', vmId: this.options.vmId, expectedRevision: this.#leaseRevision, record } });
  }

  #fence(nowUs: number): void {
    if (this.fenced) return;
    this.fenced = true;
    this.hooks.onFenced(nowUs);
  }
}
