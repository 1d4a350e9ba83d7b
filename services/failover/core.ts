import { initialTransition, type SnapshotFrom } from 'xstate';
import { MachineStepper } from '../../lib/machines/stepper.js';
import { assert } from '../../lib/assert.js';
import type { Heartbeat, RoleChange } from '../../lib/codec/messages.js';
import type { Subjects } from '../../lib/codec/subjects.js';
import { sameWrite, successorMayStartAtUs, takeOverRecord, withBackup } from '../../lib/lease/take-over.js';
import type { Core, Effect, Input, LeaseRecord, LeaseResult } from '../../lib/runtime/types.js';
import { failoverMachine, type FailoverEvent, type FailoverState } from './failover.machine.js';

/** How far below its lease's committed epoch a holder must report to have started over (see #startedOver). */
const STARTED_OVER_SLACK_EPOCHS = 4;
const TIMER_PROMOTE = 'failover.promote';
const TIMER_RECOVERED = 'failover.recovered';
const TIMER_MEMBERSHIP = 'failover.membership';
const TIMER_JOIN_STALL = 'failover.join-stall';
/**
 * Miss-count periods a restarted service waits, beyond its first, for the
 * backup the lease names when the lease holder's host started over: the VM
 * is that backup's or lost, and only its report tells. Far longer than the
 * heartbeat losses vopr draws (up to 320 ms, 11 periods at the defaults);
 * past it the backup is taken for dead.
 */
export const NAMED_BACKUP_WAIT_PERIODS = 50;
/** A join's stall bound when none is configured. */
export const DEFAULT_JOIN_STALL_US = 30_000_000;
/** CAS retries without waiting, when the lease moved only because the silent holder renewed it. */
const MAX_IMMEDIATE_LEASE_RETRIES = 3;
/**
 * Take-over records remembered to recognise our own write after an unknown
 * outcome; at the bound the oldest goes (an outage that long only makes us
 * wait out our own older record as someone else's).
 */
export const MAX_REMEMBERED_TAKE_ATTEMPTS = 16;
/**
 * Failover and re-protection samples kept (durations and times, each list):
 * the first ones, as the checkpointer keeps its first commit latencies. They
 * go whole in every service report; a VM that fails over for months must not
 * grow them. Later ones are counted (`failovers`, and the `…NotKept` counters).
 */
export const MAX_FAILOVER_SAMPLES = 1_024;
/** Membership writes retried without waiting when the primary's renewal got in first; then once per interval. */
const MAX_IMMEDIATE_MEMBERSHIP_RETRIES = 3;
/** Per-host deadlines, re-armed by each heartbeat: detection is exact, not tick-granular. */
const lateTimer = (host: string) => `failover.late.${host}`;
const SILENT_TIMER_PREFIX = 'failover.silent.';
const silentTimer = (host: string) => `${SILENT_TIMER_PREFIX}${host}`;

export interface FailoverOptions {
  readonly vmId: string;
  readonly subjects: Subjects;
  readonly primaryHost: string;
  readonly backupHost: string;
  readonly spareHosts: readonly string[];
  readonly heartbeatIntervalUs: number;
  /** Heartbeats missed in a row before a host is declared silent. */
  readonly missCount: number;
  /** How long a lease lasts; a promotion waits until the old one has expired. */
  readonly leaseDurationUs: number;
  /** Bound on clock disagreement between hosts and the store. */
  readonly clockSkewUs: number;
  /**
   * A host not heard from since this service started is silent only after
   * this long (processes start at their own pace); 0: after missCount
   * intervals, as any other.
   */
  readonly startupGraceUs?: number;
  /**
   * After this service's own connection to the bus comes back, how long
   * every host gets to be heard again before it can be declared silent (the
   * hosts reconnect at their own pace). Default: two miss-count periods.
   */
  readonly reconnectGraceUs?: number;
  /**
   * A re-protection whose new backup shows no progress for this long (it
   * never takes its join, or applies no epoch after it) is given up and
   * started again, with the next spare. Default DEFAULT_JOIN_STALL_US.
   */
  readonly joinStallUs?: number;
}

/**
 * A new backup (or none) to record in the lease before anyone hears of it:
 * the primary commits without its old backup only after the store names the
 * new one, so a restarted service can trust the record.
 */
interface MembershipChange {
  readonly backupHost: string;
  /** The role changes to send once the record is written. */
  readonly announce: readonly (readonly [host: string, role: 'primary' | 'backup', peerHost: string])[];
}

export interface FailoverStats {
  failovers: number;
  /** Heartbeats naming another host than their subject's, or another VM: forged, ignored. */
  foreignHeartbeats: number;
  /** Messages of a type its subjects never carry to it (the codec decodes each subject as its own type: only a bug gets here), dropped. */
  unexpectedMessages: number;
  /** Supervisors heard from again as a new process: their host's guest image, if any, started over. */
  supervisorRestarts: number;
  /** Backups given up when the primary fell silent, as they held a just-created VM's image after epochs were committed. */
  backupsBehind: number;
  /** Heartbeats of a joined backup that called itself synced below what the primary had committed: not yet protecting. */
  syncedBehindCommitted: number;
  /**
   * Primaries that started over empty while no backup held a complete image
   * (a join under way, or none): the VM had no image left, and no take-over
   * follows, even for a backup that completes its join later (it joined the
   * VM the restarted host created anew, behind the output that left).
   */
  restartsWithoutImage: number;
  /**
   * Silences of such a primary, taken over for no one: its backup holds the
   * VM the restarted host created anew (vopr seed 20529: heartbeats lost on
   * the bus made the restarted primary silent after its new VM had synced).
   */
  silencesWithoutImage: number;
  /**
   * Silences of the primary while no backup held a complete image (unprotected, or re-protecting): nothing to
   * promote, so nothing is done; the VM runs nowhere until its primary is heard again. Counted once per silence.
   */
  primarySilencesUnprotected: number;
  /** Starts whose first lease read showed a VM that ran before (leaseShowsHistory): a restart, which learned the roles first. */
  restartsDetected: number;
  /** Timers that fired with nothing to do (a promotion made already, a recovery over): ignored. */
  staleTimers: number;
  /** Re-protections given up after joinStallUs without progress, and started again (a lost join, a stuck host). */
  joinsStalled: number;
  /** The longest a join went without progress before it moved on or completed: what joinStallUs must stay above. */
  joinQuietMaxUs: number;
  /** Membership changes not announced to the primary because its host started over as a backup or a spare: it runs no VM to change. */
  primaryRoleChangesWithheld: number;
  /**
   * Checks of a silent primary that put the take-over off because its backup
   * had not been heard since this service's connection came back: cut off, it
   * could not see that backup crash, and the lease would go to a host that
   * may hold nothing (vopr seed 74233).
   */
  takeOversWaitingForBackup: number;
  /** From the old primary's last heartbeat to the first heartbeat of the promoted one: the first MAX_FAILOVER_SAMPLES. */
  failoverDurationsUs: number[];
  /** When each promoted primary first reported in: the first MAX_FAILOVER_SAMPLES. */
  promotedAtUs: number[];
  /** Failovers past MAX_FAILOVER_SAMPLES: counted in `failovers`, their duration and time not kept. */
  failoverSamplesNotKept: number;
  leaseConflicts: number;
  leaseUnavailable: number;
  /** Lease answers that said a write was made without the record written: taken as no answer. */
  leaseMalformed: number;
  /** Lease requests sent while another was unanswered (that one's answer, if it comes, is then not ours to act on). */
  leaseRequestsSuperseded: number;
  /** Lease answers to a request superseded or already answered, dropped. */
  staleLeaseAnswers: number;
  staleHeartbeats: number;
  /** Spares that joined as backups. */
  reprotections: number;
  /** From each join to the new backup's first synced heartbeat: the first MAX_FAILOVER_SAMPLES. */
  reprotectDurationsUs: number[];
  /** When each re-protection completed (the VM protected again): the first MAX_FAILOVER_SAMPLES. */
  reprotectedAtUs: number[];
  /** Re-protections completed past MAX_FAILOVER_SAMPLES: their duration and time not kept. */
  reprotectSamplesNotKept: number;
  /** Role changes sent again because a heartbeat showed the host had not taken them (lost on the bus). */
  roleChangesResent: number;
  /** Take-over records forgotten at MAX_REMEMBERED_TAKE_ATTEMPTS (the oldest first): only a long lease-store outage gets there. */
  takeAttemptsForgotten: number;
  /** Membership changes given up because the lease moved to another holder or term meanwhile. */
  membershipAbandoned: number;
  /**
   * Silence deadlines that fired over an interval late: this service itself
   * did not run for that long (a stalled process), and heartbeats may be
   * waiting to be read. Looked at again one interval later.
   */
  lateDeadlinesDeferred: number;
  /** Deadlines that fell while this service was cut off from the bus, looked at again later: its silence is not theirs. */
  deadlinesDeferredCutOff: number;
}

/**
 * The failover service, independent of both hosts: watches heartbeats,
 * declares a host silent after `missCount` intervals, fences the old primary
 * by taking the lease under a higher term (compare-and-set), waits until the
 * old lease has expired, and promotes the backup.
 */
export class FailoverCore implements Core {
  readonly name = 'failover';
  readonly subscriptions: readonly string[];
  readonly stats: FailoverStats = { failovers: 0, failoverDurationsUs: [], promotedAtUs: [], failoverSamplesNotKept: 0, leaseConflicts: 0, leaseUnavailable: 0, leaseMalformed: 0, leaseRequestsSuperseded: 0, staleLeaseAnswers: 0, staleHeartbeats: 0, reprotections: 0, reprotectDurationsUs: [], reprotectedAtUs: [], reprotectSamplesNotKept: 0, roleChangesResent: 0, takeAttemptsForgotten: 0, membershipAbandoned: 0, lateDeadlinesDeferred: 0, deadlinesDeferredCutOff: 0, foreignHeartbeats: 0, supervisorRestarts: 0, backupsBehind: 0, syncedBehindCommitted: 0, restartsWithoutImage: 0, silencesWithoutImage: 0, primarySilencesUnprotected: 0, restartsDetected: 0, staleTimers: 0, joinsStalled: 0, joinQuietMaxUs: 0, primaryRoleChangesWithheld: 0, unexpectedMessages: 0, takeOversWaitingForBackup: 0 };
  #snapshot: SnapshotFrom<typeof failoverMachine>;
  readonly #stepper = new MachineStepper(failoverMachine, { term: 1 });
  /** When each late and silence deadline is due (bounded: two per watched host). */
  readonly #deadlineDueUs = new Map<string, number>();
  #primary: string;
  #backup: string | null;
  readonly #lastSeenUs = new Map<string, number>();
  readonly #lastRole = new Map<string, Heartbeat>();
  /**
   * Per host, the highest role change its current process showed taken: heartbeats may come reordered, and the last
   * to arrive may be older than one before it. Bound: one per host.
   */
  readonly #controlSeqTaken = new Map<string, { readonly incarnation: number; readonly controlSeq: number }>();
  #term = 1;
  #leaseRevision = 0;
  #leaseRecord: LeaseRecord | null = null;
  #requestId = 0;
  #pendingRequest: { id: number; purpose: 'read' | 'take' | 'membership' } | null = null;
  /** The membership change wanted; written when no other lease request is outstanding. */
  #membership: MembershipChange | null = null;
  /** The one whose write is outstanding (the wanted one may have replaced it meanwhile). */
  #membershipInFlight: MembershipChange | null = null;
  #membershipRetries = 0;
  #membershipWaits = false;
  #silentSinceUs = 0;
  /**
   * The primary's last heartbeat from a host that ran the VM (null: none since
   * it became primary). A restarted host's heartbeats speak of no VM: a
   * failover measured from them would leave out the time the VM was gone.
   */
  #primaryServedUntilUs: number | null = null;
  #promotedHost: string | null = null;
  #immediateRetries = 0;
  /** A take-over found the lease renewed by the silent primary: it is alive, only not heard (until it beats again or is replaced). */
  #primaryRenewedUnheard = false;
  /** Spares not yet used, in preference order. */
  readonly #spares: string[];
  /** Backups this service gave up (silent) or found given up (after a restart): each may join again, as a spare. */
  readonly #givenUp = new Set<string>();
  /** Each host's supervisor process, as its heartbeats last named it. */
  readonly #incarnations = new Map<string, number>();
  /** Hosts whose heartbeats stopped (miss count reached), until they beat again. */
  readonly #silentHosts = new Set<string>();
  #reprotectStartedUs = 0;
  /**
   * The join under way (re-protecting): the newest epoch its backup applied
   * after taking it and the chunks its guest had staged by then (-1 both: not
   * taken yet), and since when neither rose.
   */
  #join: { epoch: number; chunksStaged: number; sinceUs: number; quietMaxUs: number } | null = null;
  /** When the join's timer was set to fire: one that fires over an interval later found this service stalled. */
  #joinTimerDueUs = 0;
  #roleChangeSeq = 0;
  /** `seq` of the join sent to the current backup: 0 for one that was a backup from the start or before a restart, infinite before it is sent. */
  #backupJoinSeq = 0;
  /** The newest role change per host that its heartbeats do not show taken yet (one per host: bounded). */
  readonly #unconfirmed = new Map<string, RoleChange>();
  /** Heartbeat subject → the host it belongs to (one per configured host). */
  readonly #hostBySubject: ReadonlyMap<string, string>;
  /** Every host it watches, as configured: the first primary, the first backup, the spares. */
  readonly #watchedHosts: readonly string[];
  #recovering: boolean;
  #recoveryStartedUs = 0;
  /** Recovering, the lease holder's host started over and the backup the lease names was not heard yet: waited for. */
  #namedBackupAwaited = false;
  /** While recovering: the highest committed epoch each host reported as primary (heartbeats may come reordered). */
  readonly #recoveryPrimaryEpochs = new Map<string, number>();
  #publishedView = '';
  /** The primary's host whose supervisor was heard restarted: its VM is gone, and a take-over is owed. */
  #primaryRestarted: string | null = null;
  /**
   * Whether a backup held a complete image when #primaryRestarted started over: only then is there one to take over
   * for. `untold` while a join was under way: its backup may have completed it unseen (#primaryStartedOver).
   */
  #restartImage: RestartImage = 'none';
  /** What #primaryRestarted had committed by its earlier process's reports and the lease: a backup's image of the VM holds that much. */
  #restartCommittedEpoch = 0;
  /** The role change that told the primary of its backup's join (by its join's name), to tell whether a restarted primary's earlier process took it. */
  #primaryJoinChange: { readonly joinSeq: number; readonly seq: number } | null = null;
  /** Between a report that this service lost the bus and the one that it is back. */
  #cutOff = false;
  /** When the connection last came back after a cut-off (never: -Infinity); a host not heard since may have crashed unseen. */
  #reconnectedAtUs = -Infinity;
  /** When a take-over last said it waits for its backup (failover.take_over_waits_for_backup). */
  #takeOverWaitLoggedUs = -Infinity;
  /** When a silence of the primary with no complete backup was last said (once a silence). */
  #unprotectedSilenceLoggedUs = -Infinity;
  /** Whether this start is a restart, known from the first lease read that is answered (#decideStart). */
  #startDecided = false;
  /** Each host's newest heartbeat before that answer: handled as usual if the start is a first one. Bound: one per host. */
  readonly #heardBeforeDecision = new Map<string, { readonly hb: Heartbeat; readonly atUs: number }>();
  /** A deadline fired (ignored) before that answer: a first start then arms every host's deadlines again. */
  #deadlineIgnoredBeforeDecision = false;

  constructor(readonly options: FailoverOptions) {
    const hosts = [options.primaryHost, options.backupHost, ...options.spareHosts];
    this.#watchedHosts = hosts;
    this.subscriptions = hosts.map((h) => options.subjects.heartbeat(h));
    this.#hostBySubject = new Map(hosts.map((h) => [options.subjects.heartbeat(h), h]));
    this.#primary = options.primaryHost;
    this.#backup = options.backupHost;
    this.#spares = [...options.spareHosts];
    // Whether this is a first start or a restart, only the lease can tell (the first read's answer): until then, act on nothing.
    this.#recovering = true;
    [this.#snapshot] = initialTransition(failoverMachine, { term: 1 });
  }

  get state(): FailoverState {
    return this.#snapshot.value as FailoverState;
  }
  get primaryHost(): string {
    return this.#primary;
  }
  get term(): number {
    return this.#term;
  }
  /** The backup it would promote; null when none (unprotected, or being promoted). */
  get backupHost(): string | null {
    return this.#backup;
  }
  /** Still learning the roles after a restart: it acts on nothing yet. */
  get recovering(): boolean {
    return this.#recovering;
  }

  handle(input: Input, nowUs: number): Effect[] {
    const out: Effect[] = [];
    switch (input.kind) {
      case 'start':
        for (const h of this.#watchedHosts) this.#armDeadlines(h, nowUs, out, this.options.startupGraceUs ?? 0);
        this.#lease(out, 'read', { type: 'read', vmId: this.options.vmId });
        this.#recoveryStartedUs = nowUs;
        out.push({ kind: 'setTimer', name: TIMER_RECOVERED, atUs: nowUs + this.options.missCount * this.options.heartbeatIntervalUs });
        break;
      case 'message':
        if (input.msg.type !== 'heartbeat') {
          this.stats.unexpectedMessages++;
          break;
        }
        // A heartbeat names the host of its subject and this VM; any other is forged, and would add a host to watch.
        if (input.msg.host !== this.#hostBySubject.get(input.subject) || input.msg.vmId !== this.options.vmId) {
          this.stats.foreignHeartbeats++;
          break;
        }
        // Hosts ignore role changes not newer than one they took: a restarted service numbers its own above theirs.
        this.#roleChangeSeq = Math.max(this.#roleChangeSeq, input.msg.controlSeq);
        if (this.#recovering) {
          if (!this.#startDecided) this.#heardBeforeDecision.set(input.msg.host, { hb: input.msg, atUs: nowUs });
          this.#listen(input.msg, nowUs, out);
        } else this.#onHeartbeat(input.msg, nowUs, out);
        break;
      case 'timer':
        if (input.name === TIMER_RECOVERED) {
          // Once the roles are learned, learning them again mid-failover would undo it: a late firing does nothing.
          if (!this.#recovering) this.stats.staleTimers++;
          // Hosts unheard while cut off are not silent: wait until the connection is back (which re-arms this).
          else if (!this.#cutOff) this.#finishRecovery(nowUs, out);
        }
        else if (input.name === TIMER_MEMBERSHIP) {
          this.#membershipWaits = false;
          this.#writeMembership(out);
        }
        else if (this.#recovering) {
          // Deadlines mean nothing until the roles are known.
          if (!this.#startDecided) this.#deadlineIgnoredBeforeDecision = true;
          break;
        }
        else if (input.name === TIMER_JOIN_STALL) this.#onJoinStallTimer(nowUs, out);
        else if (input.name === TIMER_PROMOTE) {
          // One promotion per take-over: a second firing, or one outside it, has nothing to promote.
          if (this.state === 'promoting' && this.#promotedHost === null) this.#promote(out);
          else this.stats.staleTimers++;
        }
        else this.#onDeadline(input.name, nowUs, out);
        break;
      case 'leaseResult':
        this.#onLease(input.result, nowUs, out);
        break;
      case 'connection':
        this.#onConnection(input.connected, nowUs, out);
        break;
    }
    this.#publishView(out);
    return out;
  }

  /** Tells watchers (operators, the auditor) its view whenever it changes. */
  #publishView(out: Effect[]): void {
    const view = `${this.state}/${this.#term}/${this.#primary}/${this.#backup ?? ''}/${this.#recovering}`;
    if (view === this.#publishedView) return;
    this.#publishedView = view;
    out.push({ kind: 'send', subject: this.options.subjects.failover, msg: { type: 'failoverStatus', vmId: this.options.vmId, term: this.#term, state: this.state, primaryHost: this.#primary, backupHost: this.#backup ?? '', recovering: this.#recovering } });
  }

  #send(event: FailoverEvent, nowUs: number, out: Effect[]): void {
    const [next, actions] = this.#stepper.step(this.#snapshot, event);
    this.#snapshot = next;
    for (const action of actions) this.#perform(action.type, nowUs, out);
    if (this.#join !== null && this.state !== 'reprotecting') {
      this.#join = null;
      out.push({ kind: 'cancelTimer', name: TIMER_JOIN_STALL });
    }
    // A backup that fell silent while a take-over was under way (the deadline meant nothing then) is given up now: once
    // the take-over is over. During one the event is nothing, and sent again after each step it recursed until the stack
    // ran out (vopr seed 107204: the primary came back started over, and its heartbeat asked for the take-over again).
    if (this.#backupSilenceCounts && this.#snapshot.can({ type: 'BACKUP_SILENT' })) this.#send({ type: 'BACKUP_SILENT' }, nowUs, out);
    if (this.state === 'unprotected' && this.#readySpare() !== undefined) this.#send({ type: 'SPARE_READY' }, nowUs, out);
  }

  /**
   * A spare that is heard from: one that reports as a spare, as any backup
   * (this service counts no image of a host among its spares: one still
   * catching up when found after a restart, one that synced since, one given
   * up as silent but only slow), or as a primary fenced by a newer term.
   * Joining replaces whatever image it holds with a new one from a base epoch.
   */
  #readySpare(): string | undefined {
    // No VM to protect: a join would only wait for a base that never comes.
    if (this.#primaryRunsNoVm) return undefined;
    return this.#spares.find((h) => {
      const r = this.#lastRole.get(h);
      if (r === undefined || this.#silentHosts.has(h)) return false;
      if (r.role === 'primary') return r.term < this.#term && this.#givenUp.has(h); // fenced (#fencedPrimaryHeard)
      // A backup that synced after a restart of this service, which had found it catching up (a join it never knew
      // of, on a slow link), is a backup of no membership: left out, it kept a VM on two hosts unprotected after the
      // primary's next failure (vopr seed 102999).
      assert(h !== this.#backup, () => `${h} is the backup and a spare`);
      return true;
    });
  }

  #perform(action: string, nowUs: number, out: Effect[]): void {
    switch (action) {
      case 'takeLease': {
        const backup = this.#backup;
        // The machine takes the lease only from protected or suspect, where a backup holds the image.
        assert(backup !== null, () => `taking the lease for no backup in ${this.state}`);
        // The silence being acted on began at the primary's last heartbeat (not at an earlier false alarm), or, if its
        // host started over, at the last one from the host that ran the VM (vopr seed 61585 read 5 ms for 434 ms).
        const lastSeenUs = this.#lastSeenUs.get(this.#primary) ?? nowUs;
        this.#silentSinceUs = this.#primaryRestarted === this.#primary ? Math.min(lastSeenUs, this.#primaryServedUntilUs ?? lastSeenUs) : lastSeenUs;
        out.push({ kind: 'log', level: 'warn', event: 'failover.primary_silent', fields: { primary: this.#primary, backup, term: this.#term + 1, silentForUs: nowUs - this.#silentSinceUs } });
        // The promoted host starts without a backup.
        const record = takeOverRecord(backup, this.#term + 1, nowUs, this.options.leaseDurationUs, this.#leaseRecord);
        // Bounded: an outage long enough to fill it only makes us wait out our own older record.
        if (this.#takeAttempts.length >= MAX_REMEMBERED_TAKE_ATTEMPTS) {
          this.#takeAttempts.shift();
          this.stats.takeAttemptsForgotten++;
        }
        this.#takeAttempts.push(record);
        this.#lease(out, 'take', { type: 'cas', vmId: this.options.vmId, expectedRevision: this.#leaseRevision, record });
        return;
      }
      case 'promoteBackup': {
        // The old primary stops releasing output before its lease expires on its own clock; wait that out on ours.
        out.push({ kind: 'setTimer', name: TIMER_PROMOTE, atUs: Math.max(nowUs, successorMayStartAtUs(this.#leaseRecordBefore, this.options.clockSkewUs)) });
        return;
      }
      case 'dropBackup':
        if (this.#primaryRestarted === this.#primary && this.#restartImage !== 'none') {
          // The primary started over while this backup held the VM's image (or may have: its join under way), and it
          // goes before the take-over for it: its host restarted too, it fell silent, or its join stalled. Nothing
          // holds the VM now, and a later backup copies the VM the primary's host made anew (vopr seed 93249: both
          // hosts came back at once; this one's restart was heard after the primary's, and the copy was promoted at byte 0).
          this.#restartImage = 'none';
          this.#noImageLeft(out, { backupDropped: true });
        }
        if (this.#backup !== null) {
          // Its join, if not yet taken, must not be repeated: it is not the backup any more.
          this.#unconfirmed.delete(this.#backup);
          // Silent is not dead: a backup that was only slow (a loaded machine) may join again, after the spares.
          this.#giveUp(this.#backup);
        }
        out.push({ kind: 'log', level: 'warn', event: 'failover.backup_dropped', fields: { primary: this.#primary, backup: this.#backup } });
        this.#backup = null;
        this.#changeMembership({ backupHost: '', announce: [[this.#primary, 'primary', '']] }, out);
        return;
      case 'startReprotection': {
        // The spare becomes the backup; the primary sends it a base epoch and then every epoch.
        const spare = this.#readySpare();
        // SPARE_READY is sent only when #readySpare found one, in the same step.
        assert(spare !== undefined, () => `re-protecting in ${this.state} with no spare ready`);
        this.#spares.splice(this.#spares.indexOf(spare), 1);
        this.#givenUp.delete(spare);
        this.#backup = spare;
        this.#backupJoinSeq = Infinity; // a spare until its join, written to the lease first, is sent and taken
        this.#reprotectStartedUs = nowUs;
        this.#join = { epoch: -1, chunksStaged: -1, sinceUs: nowUs, quietMaxUs: 0 };
        this.#armJoinTimer(nowUs + this.#joinStallUs, out);
        this.stats.reprotections++;
        out.push({ kind: 'log', level: 'info', event: 'failover.reprotecting', fields: { primary: this.#primary, backup: spare } });
        this.#changeMembership({ backupHost: spare, announce: [[spare, 'backup', this.#primary], [this.#primary, 'primary', spare]] }, out);
        return;
      }
      default:
        assert(false, () => `no such action: ${action}`);
    }
  }

  #leaseRecordBefore: LeaseRecord | null = null;
  /** Records this take-over tried to write: one found in the store after an unknown outcome is ours. */
  readonly #takeAttempts: LeaseRecord[] = [];

  #changeMembership(change: MembershipChange, out: Effect[]): void {
    this.#membership = change;
    this.#membershipRetries = 0;
    this.#membershipWaits = false;
    this.#writeMembership(out);
  }

  /** Writes the wanted membership into the lease by compare-and-set, keeping the primary's own fields. */
  #writeMembership(out: Effect[]): void {
    const change = this.#membership;
    // Written once the outstanding request is answered, or (after an outage or repeated conflicts) at TIMER_MEMBERSHIP.
    if (change === null || this.#pendingRequest !== null || this.#membershipWaits) return;
    const current = this.#leaseRecord ?? { primaryHost: this.#primary, term: this.#term, expiresAtMs: 0 };
    this.#membershipInFlight = change;
    this.#lease(out, 'membership', { type: 'cas', vmId: this.options.vmId, expectedRevision: this.#leaseRevision, record: withBackup(current, change.backupHost) });
  }

  #onMembershipWritten(result: LeaseResult, nowUs: number, out: Effect[]): void {
    const written = this.#membershipInFlight;
    this.#membershipInFlight = null;
    if (written === null || written !== this.#membership) return; // replaced meanwhile: the newer one is written next
    if (result.outcome === 'ok') {
      this.#membership = null;
      for (const [host, role, peerHost] of written.announce) {
        const reported = this.#lastRole.get(host);
        // It would take a 'primary' role change for a promotion of the image it holds, and send that image's output on
        // the VM's connections (vopr seed 64806: a backup of a VM created anew, 32 epochs in).
        if (role === 'primary' && host === this.#primary && this.#primaryRunsNoVm) {
          this.stats.primaryRoleChangesWithheld++;
          out.push({ kind: 'log', level: 'error', event: 'failover.primary_not_running', fields: { primary: host, reportsAs: reported?.role ?? '', term: this.#term, peerHost } });
          continue;
        }
        // A primary's peer change carries what it committed too: a host that came back as a backup "as at creation"
        // takes it for a promotion, and an epoch-0 image refuses one above 0 (vopr seed 1830, repeats rate-limited).
        this.#roleChange(host, role, peerHost, out, role === 'primary' ? this.#committedEpoch(reported) : 0);
      }
      return;
    }
    const record = result.record;
    if (result.outcome === 'conflict' && record !== null && (record.primaryHost !== this.#primary || record.term > this.#term)) {
      // The lease moved under us: this membership belongs to a VM that is not ours to change any more.
      this.stats.membershipAbandoned++;
      this.#membership = null;
      return;
    }
    // The primary renewed in between (retry on the revision the answer carried), or the store is out.
    if (result.outcome === 'conflict' && this.#membershipRetries < MAX_IMMEDIATE_MEMBERSHIP_RETRIES) {
      this.#membershipRetries++;
      return; // written again below, once this answer is processed
    }
    this.#membershipRetries = 0;
    this.#membershipWaits = true;
    out.push({ kind: 'setTimer', name: TIMER_MEMBERSHIP, atUs: nowUs + this.options.heartbeatIntervalUs });
  }

  #promote(out: Effect[]): void {
    const host = this.#backup;
    // The lease was taken for this backup, and nothing drops a backup while it is promoted.
    assert(host !== null, () => `promoting no backup in ${this.state}`);
    this.#promotedHost = host;
    this.#primaryRenewedUnheard = false;
    out.push({ kind: 'log', level: 'warn', event: 'failover.promoting', fields: { from: this.#primary, to: host, term: this.#term } });
    // A primary that started over reports the VM it made anew: what the VM committed is what its earlier process did.
    const restarted = this.#primaryRestarted === this.#primary ? this.#restartCommittedEpoch : 0;
    const committedEpoch = Math.max(this.#committedEpoch(this.#lastRole.get(this.#primary)), restarted);
    this.#primary = host;
    this.#primaryServedUntilUs = null;
    this.#backup = null;
    this.#roleChange(host, 'primary', '', out, committedEpoch);
  }

  /**
   * Sends a role change and keeps it until the host's heartbeats show it
   * taken: each heartbeat that does not sends it again (a lost one is
   * repeated within a heartbeat interval; a dead host gets no repeats).
   */
  #roleChange(host: string, role: 'primary' | 'backup', peerHost: string, out: Effect[], committedEpoch = 0): void {
    const seq = ++this.#roleChangeSeq;
    // A join is named by its backup's role change, announced before the primary's: the base the primary sends for
    // it carries the name, and the backup takes no base of another join (vopr seed 92265).
    const joinSeq = role === 'backup' ? seq : peerHost === '' ? 0 : this.#backupJoinSeq;
    assert(role === 'backup' || peerHost === '' || (peerHost === this.#backup && Number.isSafeInteger(joinSeq) && joinSeq > 0), () => `${host} is told to replicate to ${peerHost} (backup ${this.#backup ?? 'none'}) before that backup's join (${joinSeq})`);
    const msg: RoleChange = { type: 'roleChange', vmId: this.options.vmId, term: this.#term, host, role, peerHost, seq, committedEpoch, joinSeq };
    if (role === 'backup' && host === this.#backup) this.#backupJoinSeq = msg.seq;
    if (role === 'primary' && peerHost !== '') this.#primaryJoinChange = { joinSeq, seq };
    this.#unconfirmed.set(host, msg);
    out.push({ kind: 'send', subject: this.options.subjects.control(host), msg });
  }

  #confirmRoleChange(hb: Heartbeat, out: Effect[]): void {
    const sent = this.#unconfirmed.get(hb.host);
    if (sent === undefined) return;
    // Taken, or overtaken by events (the host was dropped or replaced since): nothing more to repeat.
    const stillMeant = sent.role === 'primary' ? hb.host === this.#primary : hb.host === this.#backup;
    if (hb.controlSeq >= sent.seq || !stillMeant) {
      this.#unconfirmed.delete(hb.host);
      return;
    }
    this.stats.roleChangesResent++;
    out.push({ kind: 'send', subject: this.options.subjects.control(hb.host), msg: sent });
  }

  #onHeartbeat(hb: Heartbeat, nowUs: number, out: Effect[]): void {
    if (hb.term < this.#term && hb.role === 'primary') {
      this.stats.staleHeartbeats++; // a fenced primary still talking
      if (hb.host !== this.#primary && hb.host !== this.#backup) this.#fencedPrimaryHeard(hb, nowUs, out);
      return;
    }
    const firstHeard = !this.#incarnations.has(hb.host);
    const before = this.#lastRole.get(hb.host);
    const takenBefore = this.#controlSeqTaken.get(hb.host)?.controlSeq ?? 0;
    this.#noteControlSeq(hb);
    const restarted = this.#noteIncarnation(hb, out) || (firstHeard && this.#holderRestartedUnheard(hb, out));
    // A role change not taken was meant for the process that is gone: the new one starts as at the VM's creation, and
    // a primary's join repeated to it would send its backup the base of the VM it made anew under that join's name.
    if (restarted) this.#unconfirmed.delete(hb.host);
    this.#armDeadlines(hb.host, nowUs, out);
    this.#confirmRoleChange(hb, out);
    this.#lastRole.set(hb.host, hb);
    this.#silentHosts.delete(hb.host);
    if (hb.host === this.#primary) this.#primaryRenewedUnheard = false;
    // A host outside the membership holds no image of it, whatever it reports: a host that came back after a kill
    // starts in the role the VM was created with (backup, spare). It may join as a spare; without this a VM on
    // three hosts had none left after its third failover, with every host up (found by the soak).
    if (hb.host !== this.#primary && hb.host !== this.#backup && !this.#spares.includes(hb.host)) this.#giveUp(hb.host);
    // A backup that took its join (or never needed one) and reports as a spare again restarted empty. Its
    // heartbeat as a backup in between may have been lost: what it took, not what it said last, decides.
    if (hb.host === this.#backup && hb.role === 'spare' && hb.controlSeq >= this.#backupJoinSeq) {
      // Its backup service restarted with nothing: a spare again, which re-protection can use.
      if (!this.#spares.includes(hb.host)) this.#spares.push(hb.host);
      this.#send({ type: 'BACKUP_SILENT' }, nowUs, out);
    }
    // A restarted supervisor makes its guest a backup anew: an empty image that calls itself complete (the first
    // backup starts so with its guest). Whatever our backup held is gone however fast it came back: give it up,
    // and it joins again from a base epoch.
    if (restarted && hb.host === this.#backup) this.#send({ type: 'BACKUP_SILENT' }, nowUs, out);
    // The same on the primary's host: its services started over empty, so the VM is gone from it, however fast it
    // came back (faster than its silence was noticed: this service was cut off, found by vopr). It may renew the
    // lease of its old term, so only a take-over for the backup saves the VM.
    if (restarted && hb.host === this.#primary) {
      // Started over again while the join's outcome is untold: the process that took the join still decides it, and
      // what it committed is what the image must hold. Its successors ran a VM made anew, which the backup never takes.
      const untold = this.#primaryRestartLeft('untold');
      this.#primaryStartedOver(out, untold ? 'untold' : this.#imageAtRestart(takenBefore), untold ? this.#restartCommittedEpoch : this.#committedEpoch(before));
    }
    if (this.#primaryRestarted !== null && this.#primaryRestarted !== this.#primary) this.#primaryRestarted = null; // taken over
    // A restart that left no image elsewhere made the VM anew on that host: its heartbeats are the VM's again.
    if (hb.host === this.#primary && (this.#primaryRestarted !== hb.host || this.#restartImage === 'none')) this.#primaryServedUntilUs = nowUs;
    if (this.#primaryRestarted === hb.host) {
      // Its heartbeats say nothing of a VM it no longer runs: each one asks for the take-over again until it is made.
      this.#takeOverForRestartedPrimary(nowUs, out);
      return;
    }
    if (hb.host === this.#primary && this.state === 'suspect') {
      this.#immediateRetries = 0; // the next silence gets its own immediate retries
      this.#send({ type: 'PRIMARY_ALIVE' }, nowUs, out);
    }
    if (this.#promotedHost === hb.host && hb.role === 'primary' && hb.term === this.#term) {
      this.#promotedHost = null;
      this.stats.failovers++;
      if (this.stats.promotedAtUs.length < MAX_FAILOVER_SAMPLES) {
        this.stats.failoverDurationsUs.push(nowUs - this.#silentSinceUs);
        this.stats.promotedAtUs.push(nowUs);
      } else this.stats.failoverSamplesNotKept++;
      this.#silentSinceUs = 0;
      this.#send({ type: 'PROMOTED' }, nowUs, out);
    }
    // The backup's report under its join: a host that reported before taking it (a backup given up, or one whose
    // supervisor restarted) speaks of an image from its old membership until its join replaces it.
    const joinedBackup = hb.host === this.#backup && hb.role === 'backup' && hb.term === this.#term && hb.controlSeq >= this.#backupJoinSeq;
    // A join moves on: taken, then each checkpoint chunk its backup takes in (a base is many) and each epoch it applies.
    const join = this.#join;
    if (join !== null && joinedBackup && (hb.epoch > join.epoch || hb.chunksStaged > join.chunksStaged)) {
      const quietUs = nowUs - join.sinceUs;
      if (join.epoch < 0) out.push({ kind: 'log', level: 'info', event: 'failover.join_taken', fields: { backup: hb.host, afterUs: quietUs } });
      this.stats.joinQuietMaxUs = Math.max(this.stats.joinQuietMaxUs, quietUs);
      this.#join = { epoch: hb.epoch, chunksStaged: hb.chunksStaged, sinceUs: nowUs, quietMaxUs: Math.max(join.quietMaxUs, quietUs) };
    }
    // Synced means holding what the primary has committed, and so released: an image of an earlier join may complete
    // late (chunks queued on a slow link) and call itself synced below the epochs the primary committed alone after
    // that join was given up (vopr seed 92265: promoted at epoch 75 behind the output of local epoch 76).
    // Told after the primary started over, by what its earlier process committed: the epochs its new one reports are
    // those of a VM made anew (vopr seed 134409: the join had completed at 10, and was held to the new VM's 111).
    const restartUntold = this.#primaryRestartLeft('untold');
    const holdsCommitted = hb.epoch >= (restartUntold ? this.#restartCommittedEpoch : this.#committedEpoch(this.#lastRole.get(this.#primary)));
    if (joinedBackup && hb.synced && !holdsCommitted) this.stats.syncedBehindCommitted++;
    if (joinedBackup && hb.synced && holdsCommitted && this.state === 'reprotecting') {
      out.push({ kind: 'log', level: 'info', event: 'failover.reprotected', fields: { primary: this.#primary, backup: hb.host, durationUs: nowUs - this.#reprotectStartedUs, quietMaxUs: this.#join?.quietMaxUs ?? null } });
      if (restartUntold) {
        // The join completed before the primary started over (it cannot complete after: the new process never sends
        // this join's base), and every epoch the primary committed since was acknowledged by this backup: its image
        // is the VM (vopr seed 109309: this service, cut off, heard the restart before the backup's synced report).
        this.#restartImage = 'left';
        out.push({ kind: 'log', level: 'warn', event: 'failover.restart_left_image', fields: { primary: this.#primary, backup: hb.host, backupEpoch: hb.epoch } });
      }
      if (this.stats.reprotectedAtUs.length < MAX_FAILOVER_SAMPLES) {
        this.stats.reprotectDurationsUs.push(nowUs - this.#reprotectStartedUs);
        this.stats.reprotectedAtUs.push(nowUs);
      } else this.stats.reprotectSamplesNotKept++;
      this.#send({ type: 'BACKUP_SYNCED' }, nowUs, out);
      // A primary whose silence came during the re-protection (nothing to act on then) is judged now, as protected: its
      // deadline does not come again, and a VM protected by a dead primary stood still (vopr seed 14252).
      if (this.#silentHosts.has(this.#primary)) this.#setDeadline(silentTimer(this.#primary), nowUs, out);
      if (restartUntold) this.#takeOverForRestartedPrimary(nowUs, out);
    }
    // A spare reporting in may be what an unprotected VM waits for.
    if (this.state === 'unprotected' && this.#readySpare() !== undefined) this.#send({ type: 'SPARE_READY' }, nowUs, out);
  }

  #armJoinTimer(atUs: number, out: Effect[]): void {
    this.#joinTimerDueUs = atUs;
    out.push({ kind: 'setTimer', name: TIMER_JOIN_STALL, atUs });
  }

  get #joinStallUs(): number {
    return this.options.joinStallUs ?? DEFAULT_JOIN_STALL_US;
  }

  /**
   * The join's progress is looked at when its bound would pass (moved on
   * lazily: progress only pushes the deadline back). A join that made none
   * for joinStallUs is given up, as a silent backup is, and the next spare
   * joins (the same host, if it is the only one, from a new base epoch): a
   * join lost on the way or stuck on its host must not leave the VM
   * unprotected for good while every host beats (the soak saw one stuck for
   * half a minute).
   */
  #onJoinStallTimer(nowUs: number, out: Effect[]): void {
    const join = this.#join;
    if (join === null || this.state !== 'reprotecting') {
      this.stats.staleTimers++; // cancelled when the re-protection ended, and fired anyway
      return;
    }
    const dueUs = join.sinceUs + this.#joinStallUs;
    if (nowUs < dueUs) {
      this.#armJoinTimer(dueUs, out);
      return;
    }
    if (this.#cutOff || nowUs - this.#joinTimerDueUs > this.options.heartbeatIntervalUs) {
      // Cut off from the bus, or this service did not run for over an interval: the backup's heartbeats may be waiting.
      if (this.#cutOff) this.stats.deadlinesDeferredCutOff++;
      else this.stats.lateDeadlinesDeferred++;
      this.#armJoinTimer(nowUs + this.options.heartbeatIntervalUs, out);
      return;
    }
    const backup = this.#backup;
    assert(backup !== null, 're-protecting without a backup');
    this.stats.joinsStalled++;
    const report = this.#lastRole.get(backup);
    out.push({ kind: 'log', level: 'warn', event: 'failover.join_stalled', fields: { primary: this.#primary, backup, term: this.#term, joinTaken: report !== undefined && report.controlSeq >= this.#backupJoinSeq, backupRole: report?.role ?? null, backupEpoch: report?.epoch ?? null, backupChunksStaged: report?.chunksStaged ?? null, appliedSinceJoin: join.epoch, stalledForUs: nowUs - join.sinceUs } });
    this.#send({ type: 'BACKUP_SILENT' }, nowUs, out);
  }

  /**
   * An old primary, fenced by a newer term, that is up (it was only cut off,
   * or its host came back and its agent started in the role the VM was
   * created with). Its agent takes a join once its lease is lost, so it may
   * serve as a spare: without this a VM on three hosts had no spare left
   * after its second failover, whatever came back.
   */
  #fencedPrimaryHeard(hb: Heartbeat, nowUs: number, out: Effect[]): void {
    // Its process is the one that will take the join: known now, its first heartbeat as a backup is no restart.
    this.#noteIncarnation(hb, out);
    this.#noteControlSeq(hb);
    this.#armDeadlines(hb.host, nowUs, out);
    this.#lastRole.set(hb.host, hb);
    this.#silentHosts.delete(hb.host);
    this.#giveUp(hb.host);
    if (this.state === 'unprotected' && this.#readySpare() !== undefined) this.#send({ type: 'SPARE_READY' }, nowUs, out);
  }

  /** `host` holds no image this service trusts, but may join as a spare (after the configured ones). */
  #giveUp(host: string): void {
    this.#givenUp.add(host);
    if (!this.#spares.includes(host)) this.#spares.push(host);
  }

  /**
   * The primary's first heartbeat this process hears comes from another agent
   * process than the one whose renewal wrote the lease: its host restarted
   * while this service was not listening (restarting too, or cut off), and
   * its agent started over in the role the VM was created with, running the
   * VM anew. A restart seen live is an incarnation that changes; this one
   * only the lease shows. Without it the new VM was protected to a spare,
   * and that image promoted behind the output that had left (vopr seed 38646).
   */
  #holderRestartedUnheard(hb: Heartbeat, out: Effect[]): boolean {
    const lease = this.#leaseRecord;
    if (lease === null || lease.holderIncarnation === undefined) return false;
    if (hb.host !== this.#primary || hb.host !== lease.primaryHost || hb.role !== 'primary' || hb.term !== lease.term || hb.incarnation === lease.holderIncarnation) return false;
    this.stats.supervisorRestarts++;
    out.push({ kind: 'log', level: 'warn', event: 'failover.supervisor_restarted', fields: { host: hb.host, wasBackup: false, seenBy: 'lease' } });
    return true;
  }

  /**
   * Records the supervisor process a heartbeat comes from; returns whether
   * it is another one than last heard (the host's supervisor restarted). Any
   * change counts, not only a newer one: a forged heartbeat with a far
   * future incarnation must not lock the real process out. A heartbeat
   * delayed across a restart costs a re-protection, never an image.
   */
  #noteIncarnation(hb: Heartbeat, out: Effect[]): boolean {
    const known = this.#incarnations.get(hb.host);
    this.#incarnations.set(hb.host, hb.incarnation);
    if (known === undefined || hb.incarnation === known) return false;
    this.stats.supervisorRestarts++;
    out.push({ kind: 'log', level: 'warn', event: 'failover.supervisor_restarted', fields: { host: hb.host, wasBackup: hb.host === this.#backup } });
    return true;
  }

  /**
   * The first lease read answered: a record only a VM that ran before this
   * process started can have (leaseShowsHistory) makes this start a restart,
   * and the roles are learned over one miss-count period (#finishRecovery);
   * none, or the first primary's own record, makes it a first start, which
   * handles the heartbeats heard meanwhile as usual. The same decision under
   * every runtime: a process does not know whether it was restarted, and a
   * deployment restarts it without saying so (docs/failover.md).
   */
  #decideStart(record: LeaseRecord | null, nowUs: number, out: Effect[]): void {
    assert(!this.#startDecided && this.#recovering, 'the start is decided once, while nothing is acted on');
    this.#startDecided = true;
    const heard = [...this.#heardBeforeDecision.values()];
    this.#heardBeforeDecision.clear();
    if (record !== null && leaseShowsHistory(record, this.options)) {
      this.stats.restartsDetected++;
      out.push({ kind: 'log', level: 'warn', event: 'failover.restart_detected', fields: { leaseHolder: record.primaryHost, term: record.term, committedEpoch: record.committedEpoch ?? 0 } });
      return;
    }
    this.#recovering = false;
    this.#recoveryPrimaryEpochs.clear();
    out.push({ kind: 'cancelTimer', name: TIMER_RECOVERED });
    if (this.#deadlineIgnoredBeforeDecision) for (const h of this.#watchedHosts) this.#armDeadlines(h, nowUs, out);
    // Each host is first heard now, by its newest heartbeat: a primary's agent other than the lease's writer is found
    // restarted (#holderRestartedUnheard). Noted while listening, it went unchecked, and a primary deposed by a lease
    // of its earlier process was left to hold the VM forever, nothing taken over for its backup.
    this.#incarnations.clear();
    for (const { hb, atUs } of heard) this.#onHeartbeat(hb, atUs, out);
  }

  /** While recovering: only note who reports what. */
  #listen(hb: Heartbeat, nowUs: number, out: Effect[]): void {
    this.#noteIncarnation(hb, out);
    this.#noteControlSeq(hb);
    if (hb.role === 'primary') this.#recoveryPrimaryEpochs.set(hb.host, Math.max(hb.epoch, this.#recoveryPrimaryEpochs.get(hb.host) ?? 0));
    this.#lastSeenUs.set(hb.host, nowUs);
    this.#lastRole.set(hb.host, hb);
    this.#roleChangeSeq = Math.max(this.#roleChangeSeq, hb.controlSeq);
  }

  /**
   * One miss-count period after a restart, from the lease and what the hosts
   * reported meanwhile:
   * - the lease holder reports as primary under the lease's term: it is the
   *   primary; the backup is a synced host that reports as one;
   * - the holder reports as a synced backup: a promotion was cut short by the
   *   restart; it is taken over again for that host (a new term, and the wait
   *   for the lease read to expire, as in any take-over), unless its image is
   *   a just-created VM's while the lease shows committed epochs: then its
   *   host started over, and the backup the lease names is taken over for;
   * - the holder is silent: it is treated as failed, and a synced backup, if
   *   any, is promoted.
   * Without a backup the VM is unprotected and a spare may join.
   */
  #finishRecovery(nowUs: number, out: Effect[]): void {
    const lease = this.#leaseRecord;
    if (lease === null) {
      // The lease is not known yet: ask again (if the last read failed) and wait one more interval.
      if (this.#pendingRequest === null) this.#lease(out, 'read', { type: 'read', vmId: this.options.vmId });
      out.push({ kind: 'setTimer', name: TIMER_RECOVERED, atUs: nowUs + this.options.heartbeatIntervalUs });
      return;
    }
    const hosts = this.#watchedHosts;
    const heard = (h: string) => (this.#lastSeenUs.get(h) ?? -1) >= this.#recoveryStartedUs && this.#lastRole.has(h);
    const report = (h: string) => (heard(h) ? this.#lastRole.get(h)! : undefined);
    const holder = lease.primaryHost;
    const holderReport = report(holder);
    // Only the backup the lease names: one given up earlier still reports itself a synced backup, but the primary
    // has committed without it since. (A record without membership, from another writer: any synced backup.)
    const named = lease.backupHost;
    // And not one holding a just-created VM's image while the holder has committed epochs (see #primarySilent).
    const committed = this.#committedEpoch(holderReport);
    const syncedBackups = hosts.filter((h) => h !== holder && (named === undefined || h === named) && report(h)?.role === 'backup' && report(h)!.synced && !isCreationImage(report(h)!, committed));
    let primarySilent: boolean;
    // Its host came back while this service was down, and its agent started over: as the lease's primary with the VM
    // started anew (vopr seed 2411), or as at the VM's creation, a backup with an empty image after the holder had
    // committed epochs (seed 18398: taken for a promotion cut short, it promoted no one and kept a deposed host as
    // primary). The VM is the backup's, if any: as for a restart seen live, take over for it.
    // Or its agent, heard as the lease's primary, is another process than the one whose renewals wrote the lease: the
    // host restarted while this service was down, as #holderRestartedUnheard finds when it was cut off. With no backup
    // holding the VM (its host restarted too), the VM is lost, and the one the host made anew must not be protected
    // and promoted as if it were the VM (vopr seed 87911: promoted at byte 0 behind 12.7 MB that had left).
    const holderAnotherProcess = holderReport?.role === 'primary' && holderReport.term === lease.term && lease.holderIncarnation !== undefined && holderReport.incarnation !== lease.holderIncarnation;
    const holderStartedOver =
      holderAnotherProcess ||
      (holderReport?.role === 'primary' && holderReport.term >= this.#term && this.#startedOver(holder, syncedBackups.map(report), lease.committedEpoch ?? 0)) ||
      (holderReport?.role === 'backup' && holderReport.synced && this.#backupHolderStartedOver(holderReport, lease));
    const periodUs = this.options.missCount * this.options.heartbeatIntervalUs;
    if (holderStartedOver && named !== undefined && named !== '' && named !== holder && !heard(named) && nowUs < this.#recoveryStartedUs + (1 + NAMED_BACKUP_WAIT_PERIODS) * periodUs) {
      // Deciding without it lost a VM its backup held (vopr seed 60: the backup's heartbeats were lost while this
      // service started). Waiting costs nothing: the holder's host runs a VM made anew, and its lease is fenced.
      if (!this.#namedBackupAwaited) out.push({ kind: 'log', level: 'warn', event: 'failover.named_backup_awaited', fields: { holder, backup: named } });
      this.#namedBackupAwaited = true;
      out.push({ kind: 'setTimer', name: TIMER_RECOVERED, atUs: nowUs + this.options.heartbeatIntervalUs });
      return;
    }
    this.#recovering = false;
    if (holderStartedOver) {
      this.#primary = holder;
      // Beside a holder from another process, only a backup that follows the stream of the lease's writer holds the VM.
      const holding = syncedBackups.find((h) => !holderAnotherProcess || this.#followsLeaseHolder(report(h)!, lease)) ?? null;
      this.#backup = holding ?? syncedBackups[0] ?? null;
      this.stats.supervisorRestarts++; // no incarnation heard before the restart to compare: counted here
      if (holderAnotherProcess) out.push({ kind: 'log', level: 'warn', event: 'failover.supervisor_restarted', fields: { host: holder, wasBackup: false, seenBy: 'lease' } });
      // Whether a backup holds the VM. Told by a process: only one that follows the stream of the lease's writer
      // (#followsLeaseHolder). Otherwise a synced backup the lease names that holds no just-created VM's image
      // (#startedOver found one only so).
      const leftImage = holding !== null;
      this.#primaryStartedOver(out, leftImage ? 'left' : 'none', lease.committedEpoch ?? 0);
      primarySilent = true;
    } else if (holderReport?.role === 'primary' && holderReport.term >= this.#term) {
      this.#primary = holder;
      this.#backup = syncedBackups[0] ?? null;
      primarySilent = false;
    } else if (holderReport?.role === 'backup' && holderReport.synced) {
      this.#primary = hosts.find((h) => h !== holder && report(h)?.role === 'primary') ?? hosts.find((h) => h !== holder)!;
      this.#backup = holder;
      primarySilent = true;
    } else {
      this.#primary = holder;
      this.#backup = syncedBackups[0] ?? null;
      primarySilent = true;
    }
    this.#spares.length = 0;
    // A backup still catching up joins again from a new base epoch: its join may have been cut short too.
    // Spares first; then backups the lease does not name (given up before the restart), which may join again.
    const others = hosts.filter((h) => h !== this.#primary && h !== this.#backup);
    this.#spares.push(...others.filter((h) => report(h)?.role === 'spare' || (report(h)?.role === 'backup' && !report(h)!.synced)));
    for (const h of others.filter((x) => this.#givenUp.has(x) || (report(x)?.role === 'backup' && report(x)!.synced))) this.#giveUp(h);
    for (const h of hosts) {
      if (!heard(h)) {
        this.#silentHosts.add(h);
        continue;
      }
      // Deadlines that passed while recovering were ignored: arm them again from the host's last heartbeat.
      const lastUs = this.#lastSeenUs.get(h)!;
      this.#setDeadline(lateTimer(h), Math.max(nowUs, lastUs + Math.ceil(1.5 * this.options.heartbeatIntervalUs)), out);
      this.#setDeadline(silentTimer(h), Math.max(nowUs, lastUs + this.options.missCount * this.options.heartbeatIntervalUs), out);
    }
    if (this.#backup === null) this.#send({ type: 'BACKUP_SILENT' }, nowUs, out); // tells the primary it has no backup; a spare may join
    else if (primarySilent) this.#primarySilent(nowUs, out);
  }

  /**
   * The backup holding the VM's image is silent, and the primary is not: it
   * is given up and another joins. So too while the primary is silent but
   * renews its lease (a take-over found it renewed): it is alive, and waits
   * for the backup's acknowledgements until told it has none. While the
   * primary is silent with nothing to show it alive, the backup's silence
   * waits: it holds the only image the VM may still have, and whichever of
   * the two is heard first decides (the backup is promoted, or the primary
   * goes on and gives up the backup then). Giving it up there left the VM on
   * a primary that had crashed and came back empty (vopr seed 61585: the
   * primary crashed, the lease store out, the backup cut off). A primary
   * whose lease store is out cannot be told it has no backup anyway. A
   * primary heard started over is no more alive for the VM: it runs one made
   * anew, and the backup's silence waits as well (vopr seed 982: the
   * backup's heartbeats were lost for 16 ms past the grace after a cut-off,
   * and it was given up with the VM's only image).
   */
  get #backupSilenceCounts(): boolean {
    const primaryMayBeDead = this.#silentHosts.has(this.#primary) && !this.#primaryRenewedUnheard;
    const primaryStartedOver = this.#primaryRestartLeft('left');
    return this.#backupHoldsImage && this.#backup !== null && this.#silentHosts.has(this.#backup) && !primaryMayBeDead && !primaryStartedOver;
  }

  /**
   * The primary's host started over as a backup or a spare (as at the VM's
   * creation): it runs no VM, whatever image it holds (maybe one of a VM
   * created anew that it has applied epochs to since).
   */
  get #primaryRunsNoVm(): boolean {
    const reported = this.#lastRole.get(this.#primary);
    return this.#primaryRestarted === this.#primary && reported !== undefined && reported.role !== 'primary';
  }

  /** Protected, suspect or failing over: the backup holds a complete image (re-protecting, its join is under way). */
  get #backupHoldsImage(): boolean {
    // failingOver: the take-over for that backup is under way (the lease store may be out for a while; vopr seed 20502).
    return this.state === 'protected' || this.state === 'suspect' || this.state === 'failingOver';
  }

  /**
   * The primary's services started over empty: from now on its heartbeats ask for a take-over for the backup.
   * `image`: `left` when a backup holds a complete image of the VM (protected, suspect or failing over, seen live);
   * `none` when unprotected, and no take-over follows (vopr seed 1152 with repeats of parts rate-limited). Re-protecting,
   * `untold`: the join may have completed unseen (this service cut off, the backup's reports late), and only the backup's
   * reports under its join tell. The join cannot complete from now on: the restarted host's new process never sends
   * its base (its role change is not repeated to that process, #onHeartbeat), the backup takes no base of another join,
   * and no epoch of another primary process (StandbyImage follows one stream).
   */
  #primaryStartedOver(out: Effect[], image: RestartImage, committedEpoch: number): void {
    assert(image !== 'untold' || (this.state === 'reprotecting' && this.#backup !== null), () => `a restart with a backup's image untold in ${this.state}`);
    this.#primaryRestarted = this.#primary;
    this.#restartImage = image;
    this.#restartCommittedEpoch = committedEpoch;
    if (image === 'none') this.#noImageLeft(out);
    out.push({ kind: 'log', level: 'warn', event: 'failover.primary_restarted', fields: { primary: this.#primary, backup: this.#backup, backupImage: image } });
  }

  /**
   * What the primary, heard started over, left by its earlier process's last report `before`. Re-protecting, the
   * join may have completed unseen only if that process took the join's role change: one it did not take may have
   * reached the new process, which then sends the VM it made anew under the join's name (vopr seed 38646).
   */
  #imageAtRestart(takenBefore: number): RestartImage {
    if (this.#backupHoldsImage) return this.#backupFollowsAnotherStream() ? 'none' : 'left';
    const change = this.#primaryJoinChange;
    const joinTaken = change !== null && change.joinSeq === this.#backupJoinSeq && takenBefore >= change.seq;
    return this.state === 'reprotecting' && joinTaken ? 'untold' : 'none';
  }

  /**
   * Whether the backup's heartbeats name the stream of another agent than
   * the one whose renewals wrote the primary's lease: its image is of the VM
   * the primary's restarted host made anew, not the VM's. The backup's host
   * rebooted while this service was restarting, came back as the backup it
   * was created as, and took that stream from its start (vopr seed 3515:
   * taken for the VM's backup at the primary's restart, it was promoted at
   * byte 0 behind 236 kB that had left). A backup that follows no stream
   * yet says nothing.
   */
  #backupFollowsAnotherStream(): boolean {
    const lease = this.#leaseRecord;
    const backup = this.#backup === null ? undefined : this.#lastRole.get(this.#backup);
    if (lease === null || lease.holderIncarnation === undefined || backup === undefined || backup.followedAgentIncarnation === 0) return false;
    return lease.primaryHost === this.#primary && backup.term === lease.term && backup.followedAgentIncarnation !== lease.holderIncarnation;
  }

  /** The current primary was heard started over, leaving `image` elsewhere (#primaryStartedOver). */
  #primaryRestartLeft(image: RestartImage): boolean {
    return this.#primaryRestarted === this.#primary && this.#restartImage === image;
  }

  /** The primary started over while a backup holds the VM: take over for that backup (once per lease answer). */
  #takeOverForRestartedPrimary(nowUs: number, out: Effect[]): void {
    if (this.#restartImage === 'left' && this.#backup !== null && this.#backupHoldsImage && this.#pendingRequest === null) this.#primarySilent(nowUs, out);
  }

  /** The primary started over and no backup holds the VM's image: the VM is lost (counted and logged once per cause). */
  #noImageLeft(out: Effect[], fields: Record<string, unknown> = {}): void {
    this.stats.restartsWithoutImage++;
    out.push({ kind: 'log', level: 'error', event: 'failover.restart_without_image', fields: { primary: this.#primary, backup: this.#backup, state: this.state, ...fields } });
  }

  /**
   * Whether the lease holder, heard while recovering as a synced backup (a promotion cut short by this service's
   * restart, it seems), holds another image than the VM's: its host came back as at the VM's creation and backs up
   * the VM its old primary's host made anew (vopr seed 111198: both hosts had crashed and come back, and that image,
   * at epoch 10 under a lease at 41, was promoted at byte 0 behind 9 MB that had left). The VM's backup holds what
   * the lease says was committed (every commit waited for its acknowledgement, and it applies before it
   * acknowledges; idle since its primary went, its reports have caught up), and is the process that claimed the
   * lease, if one did.
   */
  #backupHolderStartedOver(holderReport: Heartbeat, lease: LeaseRecord): boolean {
    const anotherProcess = lease.holderIncarnation !== undefined && lease.holderIncarnation !== holderReport.incarnation;
    // Below the lease's committed epoch covers a just-created VM's image (epoch 0) too.
    return holderReport.epoch < (lease.committedEpoch ?? 0) || anotherProcess;
  }

  /**
   * Whether the lease holder, heard as primary while recovering, started the
   * VM over: every committed epoch it reported is below what its lease
   * records (a renewal records the epoch its heartbeat reports, and never
   * lowers it), and a synced backup holds that much. A holder that merely
   * lags never reports less than its own renewals recorded; one just
   * promoted has no synced backup yet.
   */
  #startedOver(holder: string, syncedBackups: readonly (Heartbeat | undefined)[], leaseCommittedEpoch: number): boolean {
    const reported = this.#recoveryPrimaryEpochs.get(holder);
    // Slack: a renewal retried within a beat may record an epoch or two its heartbeats have not shown yet.
    if (reported === undefined || reported + STARTED_OVER_SLACK_EPOCHS >= leaseCommittedEpoch) return false;
    return syncedBackups.some((b) => b !== undefined && b.epoch >= leaseCommittedEpoch);
  }

  /**
   * Whether `backup`'s image is the VM the lease's holder protected: it
   * follows the stream of the lease's writer (the agent its heartbeats name,
   * from the manifests it took) under the lease's term, and holds what the
   * lease says was committed. An incarnation is a start time on its host's
   * clock, so only the term (one primary host each) makes it that host's.
   * A backup synced with the VM the holder's restarted host made anew follows
   * that host's new agent. Told before by epochs alone, such a backup, which
   * this service's previous process may have protected, was promoted at byte
   * 0 (vopr seed 91830: at epoch 34 under a lease at 88), so the VM's own
   * backup counted only while the holder's new VM was below the lease's
   * epoch; past it, the VM was taken for lost while that backup held it
   * (seed 134275: the new VM at 813, the backup at 94 under a lease at 93).
   */
  #followsLeaseHolder(backup: Heartbeat, lease: LeaseRecord): boolean {
    assert(lease.holderIncarnation !== undefined, () => `judging ${backup.host}'s stream by a lease that names no holder process`);
    return backup.term === lease.term && backup.followedAgentIncarnation === lease.holderIncarnation && backup.epoch >= (lease.committedEpoch ?? 0);
  }

  /** The highest role change `hb`'s process showed taken; a new process starts over from its own. */
  #noteControlSeq(hb: Heartbeat): void {
    const known = this.#controlSeqTaken.get(hb.host);
    if (known !== undefined && hb.incarnation < known.incarnation) return; // a late heartbeat of an earlier process
    const controlSeq = known !== undefined && known.incarnation === hb.incarnation ? Math.max(known.controlSeq, hb.controlSeq) : hb.controlSeq;
    this.#controlSeqTaken.set(hb.host, { incarnation: hb.incarnation, controlSeq });
  }

  /** `graceUs`: at start, a host is silent no earlier than this after it (0: missCount intervals, as always). */
  #armDeadlines(host: string, nowUs: number, out: Effect[], graceUs = 0): void {
    const interval = this.options.heartbeatIntervalUs;
    this.#lastSeenUs.set(host, nowUs);
    this.#setDeadline(lateTimer(host), nowUs + Math.max(Math.ceil(1.5 * interval), graceUs), out);
    this.#setDeadline(silentTimer(host), nowUs + Math.max(this.options.missCount * interval, graceUs), out);
  }

  /** A late or silence deadline, remembered so that firing late can be told from firing on time. */
  #setDeadline(name: string, atUs: number, out: Effect[]): void {
    this.#deadlineDueUs.set(name, atUs);
    out.push({ kind: 'setTimer', name, atUs });
  }

  /**
   * This service's own connection to the bus went (false) or came back
   * (true). Cut off, it hears no heartbeat from anyone, and that says
   * nothing about the hosts: no deadline counts until it is back, and then
   * every host that was not already silent gets the reconnect grace to be
   * heard again. Without this a restart of the nats-server made the service
   * give up backups that were fine, and their re-protections piled up.
   */
  #onConnection(connected: boolean, nowUs: number, out: Effect[]): void {
    if (!connected) {
      if (!this.#cutOff) out.push({ kind: 'log', level: 'warn', event: 'failover.cut_off' });
      this.#cutOff = true;
      return;
    }
    if (!this.#cutOff) return;
    this.#cutOff = false;
    this.#reconnectedAtUs = nowUs;
    const interval = this.options.heartbeatIntervalUs;
    const graceUs = this.options.reconnectGraceUs ?? 2 * this.options.missCount * interval;
    out.push({ kind: 'log', level: 'info', event: 'failover.reconnected', fields: { graceUs } });
    if (this.#recovering) {
      out.push({ kind: 'setTimer', name: TIMER_RECOVERED, atUs: nowUs + Math.max(this.options.missCount * interval, graceUs) });
      return;
    }
    for (const host of this.#hostBySubject.values()) {
      if (this.#silentHosts.has(host)) continue;
      this.#setDeadline(lateTimer(host), nowUs + Math.max(Math.ceil(1.5 * interval), graceUs), out);
      this.#setDeadline(silentTimer(host), nowUs + Math.max(this.options.missCount * interval, graceUs), out);
    }
    // Progress it could not see while cut off is not a stall: the join's bound runs again from now.
    if (this.#join !== null) this.#join = { ...this.#join, sinceUs: Math.max(this.#join.sinceUs, nowUs) };
  }

  #onDeadline(name: string, nowUs: number, out: Effect[]): void {
    if (this.#cutOff) {
      // Re-armed with the reconnect grace when the connection is back; until then, looked at once an interval.
      this.stats.deadlinesDeferredCutOff++;
      this.#setDeadline(name, nowUs + this.options.heartbeatIntervalUs, out);
      return;
    }
    const dueUs = this.#deadlineDueUs.get(name) ?? nowUs;
    if (nowUs - dueUs > this.options.heartbeatIntervalUs) {
      // This service did not run for over an interval: the heartbeats of that time may be waiting to be read.
      this.stats.lateDeadlinesDeferred++;
      this.#setDeadline(name, nowUs + this.options.heartbeatIntervalUs, out);
      return;
    }
    const state = this.state;
    if (name.startsWith(SILENT_TIMER_PREFIX)) this.#silentHosts.add(name.slice(SILENT_TIMER_PREFIX.length));
    if (name === lateTimer(this.#primary)) {
      if (state === 'protected') this.#send({ type: 'PRIMARY_LATE' }, nowUs, out);
    } else if (name === silentTimer(this.#primary)) {
      if (state !== 'protected' && state !== 'suspect') {
        // Nothing to promote: said once a silence (its last heartbeat began it), since the VM may be running nowhere.
        const silentSinceUs = this.#lastSeenUs.get(this.#primary) ?? -Infinity;
        if ((state === 'unprotected' || state === 'reprotecting') && this.#unprotectedSilenceLoggedUs < silentSinceUs) {
          this.#unprotectedSilenceLoggedUs = nowUs;
          this.stats.primarySilencesUnprotected++;
          out.push({ kind: 'log', level: 'error', event: 'failover.primary_silent_unprotected', fields: { primary: this.#primary, backup: this.#backup, state, silentForUs: nowUs - silentSinceUs } });
        }
        return;
      }
      if (this.#pendingRequest !== null) {
        // The lease store has not answered yet: look again one interval later.
        this.#setDeadline(name, nowUs + this.options.heartbeatIntervalUs, out);
        return;
      }
      this.#primarySilent(nowUs, out);
    } else if (this.#backup !== null && name === silentTimer(this.#backup)) {
      if (state === 'reprotecting' || ((state === 'protected' || state === 'suspect') && this.#backupSilenceCounts)) this.#send({ type: 'BACKUP_SILENT' }, nowUs, out);
    }
  }

  /**
   * The primary is silent: take over for the backup, unless the backup holds
   * the image of a VM that was just created (synced at epoch 0) while the
   * primary has committed epochs, and so may have released output: its
   * supervisor restarted unseen and made its guest a backup "as at
   * creation". Promoting it would lose output that left: it is given up
   * instead, and with nothing to promote the VM is lost. (Only epoch 0 tells:
   * a real backup's heartbeat may lag the primary's by an epoch or two.)
   * Nor for any backup once the primary started over while no backup held a
   * complete image (#primaryStartedOver): that VM is lost for good.
   */
  #primarySilent(nowUs: number, out: Effect[]): void {
    const backup = this.#backup;
    // Untold only while re-protecting, where no silence is acted on.
    assert(!this.#primaryRestartLeft('untold'), () => `a silent primary acted on in ${this.state} while its backup's image is untold`);
    if (this.#primaryRestartLeft('none')) {
      // The VM was lost when its primary started over with no complete image elsewhere: whatever the backup
      // holds since, it copied from the VM that host created anew, behind the output that left.
      this.stats.silencesWithoutImage++;
      out.push({ kind: 'log', level: 'error', event: 'failover.no_image_to_promote', fields: { primary: this.#primary, backup } });
      return;
    }
    const b = backup === null ? undefined : this.#lastRole.get(backup);
    if (this.#backupFollowsAnotherStream()) {
      // Its image is of the VM the primary's restarted host made anew, behind the output that left (vopr seed 3515,
      // where only the lease store's outage kept this service, just restarted, from promoting it at once).
      this.stats.silencesWithoutImage++;
      out.push({ kind: 'log', level: 'error', event: 'failover.backup_of_another_stream', fields: { primary: this.#primary, backup, followed: b?.followedAgentIncarnation ?? null, leaseWriter: this.#leaseRecord?.holderIncarnation ?? null } });
      return;
    }
    const committed = this.#committedEpoch(this.#lastRole.get(this.#primary));
    if (backup !== null && b !== undefined && isCreationImage(b, committed)) {
      this.stats.backupsBehind++;
      out.push({ kind: 'log', level: 'error', event: 'failover.backup_behind', fields: { primary: this.#primary, backup, backupEpoch: b.epoch, committedEpoch: committed } });
      this.#send({ type: 'BACKUP_SILENT' }, nowUs, out);
      return;
    }
    if (backup !== null && (this.#lastSeenUs.get(backup) ?? -Infinity) < this.#reconnectedAtUs) {
      // Not heard since the connection came back: the backup may have crashed while this service could not see it.
      // Look again an interval later: whichever of the two is heard first decides (a live backup's next heartbeat
      // lets the take-over go on; the primary's means it lives, and the backup's silence is judged on its own).
      this.stats.takeOversWaitingForBackup++;
      // Said once a silence of the primary (its last heartbeat began it), not every interval it lasts.
      if (this.#takeOverWaitLoggedUs < (this.#lastSeenUs.get(this.#primary) ?? -Infinity)) {
        out.push({ kind: 'log', level: 'warn', event: 'failover.take_over_waits_for_backup', fields: { primary: this.#primary, backup, reconnectedAtUs: this.#reconnectedAtUs } });
        this.#takeOverWaitLoggedUs = nowUs;
      }
      this.#setDeadline(silentTimer(this.#primary), nowUs + this.options.heartbeatIntervalUs, out);
      return;
    }
    this.#send({ type: 'PRIMARY_SILENT' }, nowUs, out);
  }

  /** What the primary has committed, by its last heartbeat as primary or by the lease it renews (which outlives it). */
  #committedEpoch(primary: Heartbeat | undefined): number {
    return Math.max(primary?.role === 'primary' ? primary.epoch : 0, this.#leaseRecord?.committedEpoch ?? 0);
  }

  #lease(out: Effect[], purpose: 'read' | 'take' | 'membership', op: Extract<Effect, { kind: 'lease' }>['op']): void {
    const id = ++this.#requestId;
    if (this.#pendingRequest !== null) this.stats.leaseRequestsSuperseded++;
    this.#pendingRequest = { id, purpose };
    out.push({ kind: 'lease', requestId: id, op });
  }

  #onLease(result: LeaseResult, nowUs: number, out: Effect[]): void {
    const pending = this.#pendingRequest;
    if (pending === null || pending.id !== result.requestId) {
      this.stats.staleLeaseAnswers++;
      return;
    }
    this.#pendingRequest = null;
    // A write the store made comes back with the record written: without it, or for a take-over with another
    // record than the one sent (nothing else could have been written by it), the answer is malformed, and taken as none.
    const sentTake = pending.purpose === 'take' ? this.#takeAttempts[this.#takeAttempts.length - 1] : undefined;
    if (pending.purpose !== 'read' && result.outcome === 'ok' && (result.record === null || (sentTake !== undefined && !sameWrite(sentTake, result.record)))) {
      this.stats.leaseMalformed++;
      out.push({ kind: 'log', level: 'error', event: 'failover.lease_malformed', fields: { requestId: result.requestId, purpose: pending.purpose } });
      result = { ...result, outcome: 'unavailable' };
    }
    const termBefore = this.#term;
    // A take-over answered `unavailable` may still have been applied (a request resent after a reconnect):
    // the retry then conflicts with our own record. Exactly what we wrote is ours; take it as granted.
    const found = result.record;
    if (pending.purpose === 'take' && result.outcome === 'conflict' && found !== null && this.#takeAttempts.some((r) => sameWrite(r, found))) {
      result = { ...result, outcome: 'ok' };
    }
    if (result.outcome === 'unavailable') this.stats.leaseUnavailable++;
    if (result.outcome === 'conflict') this.stats.leaseConflicts++;
    if (result.record !== null && result.outcome !== 'unavailable') {
      this.#leaseRecordBefore = this.#leaseRecord;
      this.#leaseRecord = result.record;
      this.#leaseRevision = result.revision;
      // Terms only grow: a take-over after a newer term goes above it, never back to ours + 1.
      this.#term = Math.max(this.#term, result.record.term);
    } else if (result.outcome === 'conflict') {
      this.#leaseRevision = result.revision; // the record is gone: the next attempt creates it
    }
    if (!this.#startDecided && pending.purpose === 'read' && result.outcome === 'ok') this.#decideStart(result.record, nowUs, out);
    if (pending.purpose === 'membership') this.#onMembershipWritten(result, nowUs, out);
    else if (pending.purpose === 'take') this.#onTakeAnswered(result, termBefore, nowUs, out);
    // A membership change that waited for this answer (or was refused just now by a renewal) goes out.
    this.#writeMembership(out);
  }

  #onTakeAnswered(result: LeaseResult, termBefore: number, nowUs: number, out: Effect[]): void {
    if (result.outcome === 'ok') {
      this.#immediateRetries = 0;
      this.#takeAttempts.length = 0;
      assert(result.record !== null, 'a granted take-over without its record');
      this.#term = result.record.term;
      this.#send({ type: 'LEASE_TAKEN', term: this.#term }, nowUs, out);
    } else {
      const heldByOld = result.outcome === 'conflict' && result.record !== null && result.record.term === termBefore;
      if (heldByOld) this.#primaryRenewedUnheard = true;
      this.#send({ type: 'LEASE_LOST' }, nowUs, out);
      if (heldByOld && this.#immediateRetries < MAX_IMMEDIATE_LEASE_RETRIES) {
        // The silent primary renewed since we last looked: retry at once with the revision the answer carried.
        this.#immediateRetries++;
        this.#primarySilent(nowUs, out);
      } else {
        this.#setDeadline(silentTimer(this.#primary), nowUs + this.options.heartbeatIntervalUs, out);
      }
    }
  }
}

/**
 * What a primary that started over left: a backup with the VM's complete image, none, or (a join under way) what
 * that backup's next reports under its join tell: synced at what the primary had committed, or given up.
 */
type RestartImage = 'left' | 'none' | 'untold';

/** A backup's report of a just-created VM's image (synced at epoch 0) while the primary has committed epochs. */
function isCreationImage(backup: Heartbeat, committedEpoch: number): boolean {
  return backup.role === 'backup' && backup.synced && backup.epoch === 0 && committedEpoch > 0;
}

/**
 * Whether a lease record shows that the VM ran before: a take-over (term
 * above 1), a committed epoch, or a primary or backup other than the
 * configured ones. A first start finds no record, or the one its primary's
 * agent created: term 1, the configured hosts, nothing committed yet.
 */
export function leaseShowsHistory(record: LeaseRecord, hosts: { readonly primaryHost: string; readonly backupHost: string }): boolean {
  return record.term > 1 || (record.committedEpoch ?? 0) > 0 || record.primaryHost !== hosts.primaryHost || (record.backupHost !== undefined && record.backupHost !== hosts.backupHost);
}
