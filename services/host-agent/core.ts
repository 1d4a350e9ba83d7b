import { initialTransition, type SnapshotFrom } from 'xstate';
import { MachineStepper } from '../../lib/machines/stepper.js';
import { assert } from '../../lib/assert.js';
import { HOST_SERVICES, type Assignment, type HostRole, type HostService, type RoleChange, type ServiceStatus } from '../../lib/codec/messages.js';
import type { Subjects } from '../../lib/codec/subjects.js';
import { LeaseHolder } from '../../lib/lease/holder.js';
import type { Core, Effect, Input, LeaseResult } from '../../lib/runtime/types.js';
import { hostAgentMachine, type HostAgentEvent, type HostAgentState } from './host-agent.machine.js';

const TIMER_BEAT = 'agent.heartbeat';

export interface HostAgentOptions {
  readonly vmId: string;
  readonly host: string;
  readonly subjects: Subjects;
  readonly heartbeatIntervalUs: number;
  readonly leaseDurationUs: number;
  /**
   * The release permit ends this long before the lease may expire: the
   * safety margin plus the clock-skew bound (docs/fencing.md).
   */
  readonly permitMarginUs: number;
  /** A service silent this long is dead (its reports come every heartbeat interval). */
  readonly serviceSilenceUs: number;
  /** A service never heard from is dead after this long from the agent's start (processes start at their own pace). */
  readonly serviceStartupUs: number;
  /** The role this host has when the VM is created, and its peer then (the backup of a primary, the primary of a backup). */
  readonly initialRole: HostRole;
  readonly initialPeerHost: string;
  /** Tests only: a planted bug the simulator must catch. */
  readonly plantedBug?: 'no-fencing' | 'stale-term-accepted';
}

export interface HostAgentStats {
  heartbeats: number;
  renewals: number;
  permitsGranted: number;
  assignmentsSent: number;
  /** Assignments sent again because a service's report showed it had not taken the current one. */
  assignmentsResent: number;
  /** Role changes not newer than one already taken (repeats, or copies delayed on the bus), ignored. */
  staleRoleChanges: number;
  /** Role changes that came while a promotion was under way: the failover service repeats them. */
  roleChangesDeferred: number;
  /**
   * Take-overs for this host under a newer term that came while its
   * promotion was under way (the failover service restarted mid-promotion
   * and took over again): the promotion goes on under the newer term.
   */
  promotionsRetermed: number;
  /** Claims whose renewal found the lease taken over again for this host under a newer term: kept, awaiting that role change. */
  claimsOvertaken: number;
  /**
   * Renewals that found this host's lease of its term written by an earlier
   * process of this agent: the host restarted, and a VM it runs now (as at
   * creation) is not the one the lease protects. Deposed: no permit.
   */
  leasesOfEarlierProcess: number;
  /** Reports older than the newest taken from their service (of an earlier incarnation, or earlier in it), or repeats of it: delayed or repeated on the bus, ignored. */
  staleStatuses: number;
  /** Services that came back with a new incarnation (a restart). */
  serviceRestarts: number;
  /** Services found dead (silent too long). */
  serviceDeaths: number;
  /**
   * Checks that found a service silent too long while this host held the
   * VM's only image (taking over, or a primary whose backup is not complete
   * yet): the host waits for the service instead of halting, which would
   * lose the VM. Counted per check.
   */
  silencesWaitedOut: number;
  /**
   * Beats after the agent itself did not run for over an interval (no input
   * at all, though its own timer comes every interval: a stalled process):
   * the services' reports of that time may be waiting to be read, so no
   * service is judged on that beat.
   */
  lateBeats: number;
  /** Promotions refused: this host holds no image (its guest restarted after it was chosen), or the change's term is not above ours (stale or forged). */
  promotionsRefused: number;
  /** Role changes this host's state cannot take (a join sent to a primary of the same term), taken and ignored. */
  roleChangesRefused: number;
  /**
   * Joins under a newer term taken while this host was still primary: the newer term means it was taken over (a
   * fenced primary that had not heard so from the lease store yet), so it stepped down, as on a lost lease, and joined.
   */
  steppedDown: number;
  /** Messages of another host or another VM on this agent's subjects (misrouted or forged), ignored. */
  foreignMessages: number;
  /** Messages of a type its subjects never carry to it (the codec decodes each subject as its own type: only a bug gets here), dropped. */
  unexpectedMessages: number;
  /** Lease renewals the store did not answer, or answered for an older request: the permit runs out on its own, the next beat tries again. */
  renewalsUnanswered: number;
}

/**
 * How many reports older than the newest taken a late copy may be: the bus delays a report by a few of a service's
 * report intervals at most. One further behind comes after a forged newest, and is taken.
 */
export const MAX_REPORTS_REORDERED = 64;

/** The newest report of one service. */
interface Reported {
  readonly incarnation: number;
  readonly status: ServiceStatus;
}

/**
 * The supervisor of one host: heartbeats to the failover service, renewals
 * of the primary's lease by compare-and-set on its term, release permits for
 * the output-releasing services derived from each confirmed renewal, and
 * assignments that tell the host's services what to run as. It acts only on
 * messages and timers: role changes from the failover service, reports from
 * its services, lease answers. Its lifecycle is hostAgentMachine.
 */
export class HostAgentCore implements Core {
  readonly name: string;
  readonly subscriptions: readonly string[];
  readonly stats: HostAgentStats = { heartbeats: 0, renewals: 0, permitsGranted: 0, assignmentsSent: 0, assignmentsResent: 0, staleRoleChanges: 0, roleChangesDeferred: 0, promotionsRetermed: 0, claimsOvertaken: 0, leasesOfEarlierProcess: 0, staleStatuses: 0, serviceRestarts: 0, serviceDeaths: 0, silencesWaitedOut: 0, lateBeats: 0, promotionsRefused: 0, roleChangesRefused: 0, steppedDown: 0, foreignMessages: 0, renewalsUnanswered: 0, unexpectedMessages: 0 };
  #snapshot: SnapshotFrom<typeof hostAgentMachine>;
  readonly #stepper = new MachineStepper(hostAgentMachine, { initialRole: 'spare' });
  #incarnation = 0;
  #assignSeq = 0;
  /** When it last handled an input. */
  #lastInputUs = 0;
  /** What every service of the host should run as now (one content for all, per-service subjects). */
  #assignment: Omit<Assignment, 'type'> | null = null;
  readonly #reports = new Map<HostService, Reported>();
  /** When each service last reported (own clock); the agent's start for one not heard yet. */
  readonly #heardUs = new Map<HostService, number>();
  /** The silent service this host waits for, holding the only image (logged once per silence). */
  #waitingFor: HostService | null = null;
  #startedUs = 0;
  /** The term the host serves under (the one heartbeats carry). */
  #term: number;
  /** The peer of the current role: the backup of a primary, the primary of a backup. */
  #peerHost: string;
  /** `seq` of the newest role change taken; heartbeats report it, older or repeated ones are ignored. */
  #controlSeq = 0;
  /** The join the current membership began with (RoleChange.joinSeq): assignments pass it on; 0 for none. */
  #joinSeq = 0;
  /** The first epoch the checkpointer runs under the current primary term. */
  #firstEpoch = 1;
  /**
   * The epoch the promoted guest restored, from the report that finished the
   * restore (null before): a late copy of an older report must not move it.
   */
  #restoredEpoch: number | null = null;
  /** The promotion under way (its term and role change), from PROMOTE until the primary assignment. */
  #promotion: RoleChange | null = null;
  readonly #lease: LeaseHolder;
  #retriedThisBeat = false;
  /** The newest permit deadline granted (own clock). */
  #permitUntilUs = 0;
  /** The term of the permits sent, and how many went under it (a permit's seq). */
  #permitTerm = 0;
  #permitsOfTerm = 0;

  constructor(readonly options: HostAgentOptions) {
    this.name = `host.${options.host}`;
    this.subscriptions = [options.subjects.control(options.host), options.subjects.host(options.host).status];
    this.#term = 1; // the VM's first lease
    this.#peerHost = options.initialPeerHost;
    // The first primary's first renewal creates the record, naming its backup; later renewals carry over what the store says.
    this.#lease = new LeaseHolder({ vmId: options.vmId, host: options.host, leaseDurationUs: options.leaseDurationUs, releaseMarginUs: options.permitMarginUs }, options.initialRole === 'primary' ? options.initialPeerHost : '');
    // The machine is entered at start, when the first assignments can go out.
    [this.#snapshot] = initialTransition(hostAgentMachine, { initialRole: 'spare' });
  }

  get state(): HostAgentState {
    return this.#snapshot.value as HostAgentState;
  }
  get term(): number {
    return this.#term;
  }
  /** The role heartbeats report. */
  get role(): HostRole {
    switch (this.state) {
      case 'primary':
      case 'deposed':
        return 'primary';
      case 'backup':
      case 'promoting':
      case 'claiming':
        return 'backup';
      default:
        return 'spare';
    }
  }
  /** The newest release permit granted (own clock, µs); 0 before the first. */
  get permitUntilUs(): number {
    return this.#permitUntilUs;
  }

  handle(input: Input, nowUs: number): Effect[] {
    const out: Effect[] = [];
    const idleUs = nowUs - this.#lastInputUs;
    this.#lastInputUs = nowUs;
    switch (input.kind) {
      case 'start':
        this.#incarnation = nowUs + 1;
        this.#startedUs = nowUs;
        [this.#snapshot] = initialTransition(hostAgentMachine, { initialRole: this.options.initialRole });
        this.#perform(this.options.initialRole === 'primary' ? 'assignPrimary' : this.options.initialRole === 'backup' ? 'assignBackup' : 'assignSpare', nowUs, out);
        this.#beat(nowUs, out);
        break;
      case 'timer':
        if (input.name !== TIMER_BEAT || this.state === 'halted') break;
        if (idleUs > this.options.heartbeatIntervalUs) this.stats.lateBeats++;
        else if (this.#checkServices(nowUs, out)) break;
        this.#beat(nowUs, out);
        this.#resendBehind(out);
        break;
      case 'message':
        if (this.state === 'halted') break;
        if ((input.msg.type === 'roleChange' || input.msg.type === 'serviceStatus') && (input.msg.host !== this.options.host || input.msg.vmId !== this.options.vmId)) this.stats.foreignMessages++;
        else if (input.msg.type === 'roleChange') this.#onRoleChange(input.msg, nowUs, out);
        else if (input.msg.type === 'serviceStatus') this.#onStatus(input.msg, nowUs, out);
        else this.stats.unexpectedMessages++;
        break;
      case 'leaseResult':
        if (this.state !== 'halted') this.#onLease(input.result, nowUs, out);
        break;
    }
    return out;
  }

  #send(event: HostAgentEvent, nowUs: number, out: Effect[]): void {
    const [next, actions] = this.#stepper.step(this.#snapshot, event);
    this.#snapshot = next;
    for (const action of actions) this.#perform(action.type, nowUs, out);
  }

  #perform(action: string, nowUs: number, out: Effect[]): void {
    switch (action) {
      case 'assignPrimary': {
        const promotion = this.#promotion;
        this.#promotion = null;
        if (promotion !== null) this.#term = this.options.plantedBug === 'stale-term-accepted' ? this.#term : promotion.term;
        // A promoted primary continues after the epoch its image holds; every later assignment of this term repeats it.
        if (promotion !== null) {
          const restored = this.#restoredEpoch;
          assert(restored !== null, () => `${this.name} takes primary for a promotion whose restore it never saw finish`);
          this.#firstEpoch = restored + 1;
          this.#restoredEpoch = null; // each promotion's own restore: the assert above holds for the next one too
        }
        // The first backup starts with its guest; any later one (a membership change) joins from a base epoch.
        const joining = this.#peerHost !== '' && (promotion !== null || this.#controlSeq > 0);
        this.#assign({ role: 'primary', term: this.#term, peerHost: this.#peerHost, joining, firstEpoch: this.#firstEpoch, joinSeq: joining ? this.#joinSeq : 0 }, out);
        if (promotion !== null) this.#grantPermit(out); // the renewal that ended the claim
        return;
      }
      case 'assignBackup':
        // The first backup starts with its guest (both empty); a later one joins from a base epoch.
        this.#assign({ role: 'backup', term: this.#term, peerHost: this.#peerHost, joining: this.#controlSeq > 0, firstEpoch: 0, joinSeq: this.#controlSeq > 0 ? this.#joinSeq : 0 }, out);
        return;
      case 'assignPromoting':
        this.#assign({ role: 'promoting', term: this.#currentPromotion().term, peerHost: '', joining: false, firstEpoch: 0, joinSeq: 0 }, out);
        return;
      case 'assignSpare':
        this.#assign({ role: 'spare', term: this.#term, peerHost: '', joining: false, firstEpoch: 0, joinSeq: 0 }, out);
        return;
      case 'claimLease':
        // The lease the failover service took for us has been running since before the promotion: our own renewal starts ours.
        this.#retriedThisBeat = false;
        this.#renew(nowUs, out, this.#currentPromotion().term);
        return;
      case 'halt':
        this.#assign({ role: 'stopped', term: this.#term, peerHost: '', joining: false, firstEpoch: 0, joinSeq: 0 }, out);
        out.push({ kind: 'cancelTimer', name: TIMER_BEAT });
        return;
      case 'refusePromotion':
        this.stats.promotionsRefused++;
        out.push({ kind: 'log', level: 'warn', event: 'agent.promotion_refused', fields: { host: this.options.host, reason: 'no backup image (its guest restarted)' } });
        return;
      default:
        assert(false, () => `no such action: ${action}`);
    }
  }

  #assign(fields: Pick<Assignment, 'role' | 'term' | 'peerHost' | 'joining' | 'firstEpoch' | 'joinSeq'>, out: Effect[]): void {
    this.#assignment = { vmId: this.options.vmId, host: this.options.host, seq: ++this.#assignSeq, incarnation: this.#incarnation, ...fields };
    for (const service of HOST_SERVICES) this.#sendAssignment(service, out);
  }

  #sendAssignment(service: HostService, out: Effect[]): void {
    const a = this.#assignment;
    assert(a !== null, () => `${this.name} sends an assignment before it has one`);
    this.stats.assignmentsSent++;
    out.push({ kind: 'send', subject: this.options.subjects.host(this.options.host).assign(service), msg: { type: 'assignment', ...a } });
  }

  // ── role changes ──────────────────────────────────────────────────────

  /** The promotion under way: set for as long as the agent is promoting or claiming its lease (an invariant of the machine). */
  #currentPromotion(): RoleChange {
    const promotion = this.#promotion;
    assert(promotion !== null, () => `${this.name} is ${this.state} without a promotion`);
    return promotion;
  }

  #onRoleChange(change: RoleChange, nowUs: number, out: Effect[]): void {
    if (change.seq <= this.#controlSeq) {
      this.stats.staleRoleChanges++; // a stale copy must not undo a newer role (a dropped peer, a lost primary role)
      return;
    }
    if (this.state === 'promoting' || this.state === 'claiming') {
      const promotion = this.#promotion;
      assert(promotion !== null, () => `${this.name} is ${this.state} without a promotion`);
      if (change.role === 'primary' && change.term > promotion.term) {
        // A newer take-over for this same host (the failover service restarted mid-promotion and, hearing a backup,
        // took over again): the same image, the same restore, under the newer term. Deferring it would leave this
        // host claiming a term the lease no longer has: deposed, with the only image (vopr seed 237, a slow handover).
        this.stats.promotionsRetermed++;
        this.#controlSeq = change.seq;
        this.#promotion = change;
        this.#retriedThisBeat = false;
        this.#beat(nowUs, out); // claiming, it renews under the newer term at once
        return;
      }
      // Any other change waits: the failover service repeats it until our heartbeat shows it.
      this.stats.roleChangesDeferred++;
      return;
    }
    this.#controlSeq = change.seq; // taken even when this host cannot act on it: repeating it would not help
    const event: HostAgentEvent = change.role === 'backup' ? { type: 'JOIN' } : this.state === 'primary' || this.state === 'deposed' ? { type: 'PEER_CHANGED' } : { type: 'PROMOTE' };
    if (event.type === 'PROMOTE' && change.term <= this.#term) {
      // Every promotion follows a take-over, which writes the lease under a newer term: one at our own term or below
      // is a stale copy or a forgery, and taking it would make two primaries of one term.
      this.stats.promotionsRefused++;
      out.push({ kind: 'log', level: 'error', event: 'agent.promotion_refused', fields: { host: this.options.host, reason: 'term not above our own', term: change.term, ownTerm: this.#term } });
    } else if (event.type === 'PROMOTE' && change.committedEpoch > 0 && this.#creationImage()) {
      // Chosen from heartbeats of before a reboot: our image is a just-created VM's, and output has left since (vopr seed 1173).
      this.stats.promotionsRefused++;
      out.push({ kind: 'log', level: 'error', event: 'agent.promotion_refused', fields: { host: this.options.host, reason: 'image of a just-created VM, behind committed output', committedEpoch: change.committedEpoch } });
    } else if (event.type === 'JOIN' && this.state === 'primary' && change.term > this.#term) {
      // A host that came back as the VM's first primary (as at creation), or one cut off, runs as primary until its
      // lease says otherwise, and while the store is out it cannot. Refused, the join was taken and never repeated:
      // the failover service waited for a backup that would not come, and dropped and chose it again every silence
      // (the soak, a NATS restart during a re-protection). Only a take-over makes a newer term: step down and join.
      this.stats.steppedDown++;
      out.push({ kind: 'log', level: 'warn', event: 'agent.stepped_down', fields: { host: this.options.host, term: this.#term, joinTerm: change.term, seq: change.seq } });
      this.#send({ type: 'DEPOSED' }, nowUs, out);
      this.#term = change.term;
      this.#peerHost = change.peerHost;
      this.#joinSeq = change.joinSeq;
      this.#send(event, nowUs, out);
    } else if (event.type === 'JOIN' && change.term < this.#term) {
      // Terms only grow (the failover service learns its own from the lease): a join under an older term than ours is
      // a forgery, and taken it assigned the services a term each of them refuses, leaving the VM without a backup.
      this.stats.roleChangesRefused++;
      out.push({ kind: 'log', level: 'warn', event: 'agent.role_change_refused', fields: { host: this.options.host, state: this.state, role: change.role, seq: change.seq, term: change.term, ownTerm: this.#term } });
    } else if (!this.#snapshot.can(event)) {
      this.stats.roleChangesRefused++;
      out.push({ kind: 'log', level: 'warn', event: 'agent.role_change_refused', fields: { host: this.options.host, state: this.state, role: change.role, seq: change.seq } });
    } else {
      if (event.type === 'JOIN') this.#term = change.term;
      if (event.type === 'PROMOTE' && this.state === 'backup') this.#promotion = change;
      this.#peerHost = event.type === 'PROMOTE' ? '' : change.peerHost;
      this.#joinSeq = event.type === 'PROMOTE' ? 0 : change.joinSeq;
      this.#send(event, nowUs, out);
    }
    this.#beat(nowUs, out);
  }

  // ── service reports ───────────────────────────────────────────────────

  /**
   * A service silent for too long is dead: the host halts, so that the
   * failover service promotes the backup. Not while this host holds the VM's
   * only image: halting would lose the VM, where waiting loses nothing (a
   * silent service releases no output) and a busy one comes back (an acker
   * encoding four VMs' 16 MiB buffers for a new backup was silent for 5 s
   * in the soak, and its halted host took every VM with it). Returns
   * whether the host halted.
   */
  #checkServices(nowUs: number, out: Effect[]): boolean {
    for (const service of HOST_SERVICES) {
      const heard = this.#heardUs.get(service);
      if (heard === undefined ? nowUs - this.#startedUs <= this.options.serviceStartupUs : nowUs - heard <= this.options.serviceSilenceUs) continue;
      const silentForUs = nowUs - (heard ?? this.#startedUs);
      if (this.#holdsOnlyImage()) {
        if (this.#waitingFor !== service) out.push({ kind: 'log', level: 'warn', event: 'agent.service_silent', fields: { host: this.options.host, service, state: this.state, silentForUs } });
        this.#waitingFor = service;
        this.stats.silencesWaitedOut++;
        return false;
      }
      this.stats.serviceDeaths++;
      out.push({ kind: 'log', level: 'warn', event: 'agent.service_dead', fields: { host: this.options.host, service, state: this.state, silentForUs } });
      this.#send({ type: 'SERVICE_DIED' }, nowUs, out);
      return true;
    }
    this.#waitingFor = null;
    return false;
  }

  /**
   * Taking over (the old primary is gone), or a primary whose checkpointer has
   * not said, on the current assignment, that its backup is complete. A
   * report on an earlier one speaks of an earlier backup, which the failover
   * service may have dropped since; halting then, while it re-protects with
   * another backup (and so acts on no silence of the primary), leaves the VM
   * running nowhere (docs/services.md).
   */
  #holdsOnlyImage(): boolean {
    const state = this.state;
    if (state === 'promoting' || state === 'claiming') return true;
    const checkpointer = this.#reports.get('checkpointer')?.status;
    return state === 'primary' && !(checkpointer !== undefined && this.#current(checkpointer) && checkpointer.synced);
  }

  #onStatus(status: ServiceStatus, nowUs: number, out: Effect[]): void {
    const known = this.#reports.get(status.service);
    // Reports are ordered by the service's incarnation, then by their number in it: a copy delayed or repeated on the
    // bus would stand in for the newest in heartbeats (epoch, synced) until the next report came, and a repeat of the
    // newest is nothing new. A report far behind the newest is no late copy: that newest was forged, and would
    // otherwise silence the service until it restarts.
    const behind = known !== undefined && status.incarnation === known.incarnation ? known.status.reportSeq - status.reportSeq : -1;
    if (known !== undefined && (status.incarnation < known.incarnation || (behind >= 0 && behind <= MAX_REPORTS_REORDERED))) {
      this.stats.staleStatuses++;
      return;
    }
    this.#heardUs.set(status.service, nowUs);
    this.#reports.set(status.service, { incarnation: status.incarnation, status });
    if (known !== undefined && status.incarnation > known.incarnation) {
      this.stats.serviceRestarts++;
      out.push({ kind: 'log', level: 'warn', event: 'agent.service_restarted', fields: { host: this.options.host, service: status.service, state: this.state } });
      this.#onRestart(status.service, nowUs, out);
      if (this.state === 'halted') return;
    }
    if (this.state === 'promoting' && this.#restored()) {
      // The checkpointer goes on after this epoch, the guest's. Read later, the guest's report may be a late copy of one
      // from before its restore (vopr seed 106989: a bus that repeats and delays reports made the checkpointer start at
      // the restored epoch, which the guest took for a stale barrier forever).
      this.#restoredEpoch = this.#reports.get('guest')!.status.epoch;
      this.#send({ type: 'RESTORED' }, nowUs, out);
    }
  }

  /** A service came back empty: what it held for the VM is gone. */
  #onRestart(service: HostService, nowUs: number, out: Effect[]): void {
    const state = this.state;
    if (state === 'backup' && service === 'guest') this.#send({ type: 'IMAGE_LOST' }, nowUs, out);
    else if (state === 'promoting' || state === 'claiming' || state === 'primary' || state === 'deposed') this.#send({ type: 'SERVICE_RESTARTED' }, nowUs, out);
    else this.#sendAssignment(service, out); // an idle service: it takes the current assignment again
  }

  /** The guest and the acker report the promotion's restore done. */
  #restored(): boolean {
    const a = this.#assignment;
    if (a === null || a.role !== 'promoting') return false;
    return (['guest', 'acker'] as const).every((service) => {
      const s = this.#reports.get(service)?.status;
      return s !== undefined && this.#current(s) && s.ready;
    });
  }

  /** The report is about the current assignment. */
  #current(s: ServiceStatus): boolean {
    return s.agentIncarnation === this.#incarnation && s.assignmentSeq === this.#assignment?.seq;
  }

  // ── heartbeats ────────────────────────────────────────────────────────

  /**
   * The guest's report of its backup image. Only its report on the current
   * assignment speaks for the image: one from before a join (or before this
   * agent started) describes an image the join replaced.
   */
  #backupImage(): ServiceStatus | undefined {
    const guest = this.#reports.get('guest')?.status;
    return this.role === 'backup' && guest !== undefined && guest.role !== 'spare' && this.#current(guest) ? guest : undefined;
  }

  /** The guest holds the image of a just-created VM (a backup at epoch 0), or reported none on the current assignment. */
  #creationImage(): boolean {
    return (this.#backupImage()?.epoch ?? 0) === 0;
  }

  #beat(nowUs: number, out: Effect[]): void {
    const host = this.options.host;
    const role = this.role;
    const checkpointer = this.#reports.get('checkpointer')?.status;
    const backupImage = this.#backupImage();
    const epoch = role === 'primary' ? (checkpointer?.epoch ?? 0) : (backupImage?.epoch ?? 0);
    const synced = role === 'primary' || (backupImage?.synced ?? false);
    // Counted over the guest's lifetime, so a report from before the join still tells the failover service where the join began.
    const chunksStaged = role === 'backup' ? (this.#reports.get('guest')?.status.chunksStaged ?? 0) : 0;
    // The stream of the image the epoch and synced describe: none from a report on an earlier assignment.
    const followedAgentIncarnation = backupImage?.followedAgentIncarnation ?? 0;
    this.stats.heartbeats++;
    out.push({ kind: 'send', subject: this.options.subjects.heartbeat(host), msg: { type: 'heartbeat', vmId: this.options.vmId, term: this.#term, host, role, epoch, synced, controlSeq: this.#controlSeq, incarnation: this.#incarnation, chunksStaged, followedAgentIncarnation } });
    out.push({ kind: 'setTimer', name: TIMER_BEAT, atUs: nowUs + this.options.heartbeatIntervalUs });
    switch (this.state) {
      case 'claiming':
        this.#retriedThisBeat = false;
        this.#renew(nowUs, out, this.#currentPromotion().term); // still waiting for our first renewal
        return;
      case 'primary':
        this.#retriedThisBeat = false; // each heartbeat may retry once at once on its own lease
        this.#renew(nowUs, out);
        break;
      default:
        break;
    }
    if (this.options.plantedBug === 'no-fencing' && (this.state === 'primary' || this.state === 'deposed')) {
      // The bug: output may leave as long as the host believes it is primary, lease or not.
      this.#permit(nowUs, nowUs + 2 * this.options.heartbeatIntervalUs, out);
    }
  }

  /** Services whose report shows an older assignment (it was lost on the bus) get the current one again. */
  #resendBehind(out: Effect[]): void {
    const a = this.#assignment;
    if (a === null) return;
    for (const service of HOST_SERVICES) {
      const s = this.#reports.get(service)?.status;
      // While promoting, a service that is not ready is asked again too: its answer (or the acker's request for the handover) was lost.
      const behind = s === undefined || !this.#current(s) || (a.role === 'promoting' && !s.ready && (service === 'guest' || service === 'acker'));
      if (!behind) continue;
      this.stats.assignmentsResent++;
      this.#sendAssignment(service, out);
    }
  }

  // ── the lease ─────────────────────────────────────────────────────────

  #renew(nowUs: number, out: Effect[], term = this.#term): void {
    // The committed epoch rides along: a failover service that restarts after this host died learns that output left.
    const committed = this.#reports.get('checkpointer')?.status;
    const { requestId, op } = this.#lease.renewal(term, nowUs, committed !== undefined && committed.role === 'primary' ? committed.epoch : 0, this.#incarnation);
    this.stats.renewals++;
    out.push({ kind: 'lease', requestId, op });
  }

  #onLease(r: LeaseResult, nowUs: number, out: Effect[]): void {
    const outcome = this.#lease.answer(r);
    const claiming = this.state === 'claiming';
    switch (outcome.kind) {
      case 'granted':
        if (claiming) {
          this.#send({ type: 'LEASE_GRANTED' }, nowUs, out);
          this.#beat(nowUs, out); // say so at once: the failover service counts the promotion done at this heartbeat
        } else if (this.state === 'primary') this.#grantPermit(out);
        return;
      case 'lost':
        if (claiming && outcome.holder === this.options.host && outcome.term > this.#currentPromotion().term) {
          // The failover service took over again for this very host under a newer term (it restarted mid-promotion):
          // its role change for that term is on the way (and repeated until our heartbeat shows it), and re-terms
          // this claim. Deposing here would strand the only image.
          this.stats.claimsOvertaken++;
          return;
        }
        if (outcome.by === 'earlierProcess' && this.state === 'primary') {
          this.stats.leasesOfEarlierProcess++;
          out.push({ kind: 'log', level: 'error', event: 'agent.lease_of_earlier_process', fields: { host: this.options.host, term: this.#term, reason: 'this host restarted: the VM it runs is not the one its lease protects (to create the VM anew: specula lease forget, docs/deployment.md)' } });
        }
        if (this.state === 'primary' || claiming) this.#send({ type: 'DEPOSED' }, nowUs, out);
        return;
      case 'rewritten':
        // Our own lease, written by someone else (the failover service at promotion, or a membership change): renew on its revision now.
        if ((this.state === 'primary' || claiming) && !this.#retriedThisBeat) {
          this.#retriedThisBeat = true;
          this.#renew(nowUs, out, this.#promotion?.term ?? this.#term);
        }
        return;
      case 'unavailable':
      case 'ignored':
        this.stats.renewalsUnanswered++;
        return; // the permit runs out on its own; the next beat tries again
    }
  }

  /** The permit of the renewal just confirmed: counted from when it was sent, never from the answer. */
  #grantPermit(out: Effect[]): void {
    if (this.options.plantedBug === 'no-fencing') return; // the bug grants on its own schedule
    this.#permit(this.#lease.permitFromUs, this.#lease.permitUntilUs, out);
  }

  /** Output may leave in [fromUs, untilUs) of this host's clock: from the renewal's send (nothing is released under a permit before it exists). */
  #permit(fromUs: number, untilUs: number, out: Effect[]): void {
    if (untilUs <= this.#permitUntilUs) return;
    this.#permitUntilUs = untilUs;
    this.stats.permitsGranted++;
    if (this.#permitTerm !== this.#term) {
      assert(this.#term > this.#permitTerm, () => `a permit under term ${this.#term} after permits under term ${this.#permitTerm}`);
      this.#permitTerm = this.#term;
      this.#permitsOfTerm = 0;
    }
    const seq = ++this.#permitsOfTerm;
    out.push({ kind: 'send', subject: this.options.subjects.host(this.options.host).permit, msg: { type: 'releasePermit', vmId: this.options.vmId, term: this.#term, host: this.options.host, fromUs, untilUs, seq } });
  }
}
