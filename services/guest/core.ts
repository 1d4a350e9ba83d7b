import { assert } from '../../lib/assert.js';
import { SnapshotError } from '../../lib/errors.js';
import type { AssignedRole, Assignment, CheckpointChunk, WireMessage } from '../../lib/codec/messages.js';
import type { HostSubjects } from '../../lib/codec/subjects.js';
import { foldCounters, RoleHistory } from '../../lib/results/role-history.js';
import { Rng } from '../../lib/rng.js';
import type { Core, Effect, Input } from '../../lib/runtime/types.js';
import { AssignmentTracker, ignoresAssignment, STATUS_TIMER } from '../../lib/supervision/index.js';
import type { TcpStats } from '../../lib/tcp/index.js';
import type { CaptureStats } from './checkpoint-capture.js';
import { StandbyImage, type BackupStats } from './standby.js';
import { GuestVm, type GuestStats, type GuestVmOptions } from './vm.js';

/** What the history keeps of a VM: its numbers (a live VM is one too; a dropped one no longer holds its memory). */
export interface VmTotals {
  readonly stats: GuestStats;
  readonly tcp: { readonly stats: TcpStats };
  readonly capture: { readonly stats: CaptureStats } | null;
}

/** What the history keeps of a standby image: its numbers. */
export interface StandbyTotals {
  readonly stats: BackupStats;
}

const TIMER_RESTORE = 'guest.restore';

/** How the guest takes part in replication on its host. */
export interface GuestSupervision {
  readonly host: string;
  readonly subjects: HostSubjects;
  /** Where this host receives checkpoints as a backup (over the replication link). */
  readonly ckptDataSubject: string;
  readonly ckptAckSubject: string;
  readonly specBufferBytes: number;
  /** Epochs a backup buffers ahead of the next one to apply. */
  readonly maxPendingEpochs: number;
  /** Bytes of chunk data a backup buffers in all those epochs (StandbyOptions.stagedBytesMax). */
  readonly stagedBytesMax: number;
  /** Time to start the guest from the backup image at a promotion (loading memory into a VM). */
  readonly restoreUs: number;
  /** Speculative modes: a promotion hands the backup's speculative buffer to the acker. */
  readonly handoverSpec: boolean;
  /**
   * How long after an answer to a handover request (the whole speculative
   * buffer) the next may go: `firstUs` after the first, twice as long after
   * each further one, up to `maxUs`. Requests sooner are counted and dropped.
   */
  readonly handoverAnswerIntervalUs: { readonly firstUs: number; readonly maxUs: number };
  /** How often it reports to its host agent. */
  readonly statusIntervalUs: number;
}

export interface GuestCoreOptions {
  readonly vm: GuestVmOptions;
  /** Absent in native mode: the guest runs from the start, alone. */
  readonly supervision?: GuestSupervision;
}

export interface GuestRoleStats {
  /** Assignments the protocol never sends (promoting a guest that is not a backup with a complete image, primary before the restore finished): forgeries, refused. */
  assignmentsRefused: number;
  /** Handovers sent to the acker at a promotion (a repeat answers a request the acker sent again). */
  handoversSent: number;
  /** Handover requests that came sooner than the answer interval allows, dropped (the acker asks again later). */
  handoverRequestsTooSoon: number;
  /** Chunks that reached a guest not (or no longer) a backup, dropped. */
  chunksWhileNotBackup: number;
  /** Handover requests of another term (a late one of an earlier promotion, or a forgery), dropped. */
  staleHandoverRequests: number;
  /** Messages naming another VM on this VM's subjects, dropped: another VM's pages must never enter this image. */
  otherVmMessages: number;
  /** Promotions whose image's state did not restore (SnapshotError: not JSON, or a snapshot its schema refuses): never ready, the VM lost. */
  restoresRefused: number;
  /**
   * Promotions that reached this guest after it restarted without the image
   * (its agent had not yet seen the restart): refused; its status shows the
   * new incarnation, and the agent refuses the promotion in turn.
   */
  promotionsWithoutImage: number;
  /** Data-path messages (segments, barriers, commits) that reached a guest not running the VM as primary: in flight across a role change, dropped. */
  notPrimaryDrops: number;
  /** Checkpoint chunks on a subject other than this backup's replication link (misrouted or forged), dropped. */
  unexpectedMessages: number;
  /** Handover requests of this term that came when it had none to give (the acker asked again as the promotion ended), dropped. */
  lateHandoverRequests: number;
}

/**
 * The guest service of one host. In native mode it is the VM from the
 * start. Replicated, it follows its host agent: a backup keeps the standby
 * image (applying each checkpoint, as a hypervisor keeps the backup VM's
 * memory); a promotion freezes that image, hands its speculative buffer to
 * the acker and, after the restore time, holds the VM ready; the primary
 * role runs it. The VM that runs is the image the backup held: nothing is
 * copied between services.
 */
export class GuestCore implements Core {
  readonly name: string;
  subscriptions: readonly string[];
  readonly stats: GuestRoleStats = { handoversSent: 0, handoverRequestsTooSoon: 0, chunksWhileNotBackup: 0, staleHandoverRequests: 0, otherVmMessages: 0, promotionsWithoutImage: 0, assignmentsRefused: 0, restoresRefused: 0, notPrimaryDrops: 0, unexpectedMessages: 0, lateHandoverRequests: 0 };
  readonly #assignments: AssignmentTracker | null;
  readonly #idleSubscriptions: readonly string[];
  #role: AssignedRole;
  #term = 0;
  #vm: GuestVm | null = null;
  #standby: StandbyImage | null = null;
  /** The standby image a promotion froze, until the VM runs from it. */
  #frozen: StandbyImage | null = null;
  #handover: CheckpointChunk[] | null = null;
  /** When this promotion may answer a handover request next (0: at once), and the wait after the next answer. */
  #handoverNextUs = 0;
  #handoverWaitUs = 0;
  /** A promotion's restore is done: the VM is ready to run. */
  #ready = false;
  #reportedEpoch = -1;
  #reportedSynced = false;
  /**
   * Every VM and standby image this service ran, for totals and checks: the
   * live ones as they are, the dropped ones as their numbers only, so that a
   * long-running guest does not keep an image (memoryBytes) per role change.
   */
  readonly #history = { vms: new RoleHistory<VmTotals>(foldVmTotals), standbys: new RoleHistory<StandbyTotals>(foldStandbyTotals) };

  /** Chunks its backup images took in for an epoch, over every image it held (reported: a join's progress). */
  get chunksStaged(): number {
    return this.#history.standbys.entries.reduce((n, image) => n + image.stats.chunksStaged, 0);
  }

  /** Staged parts its backup images dropped at their byte bound, over every image it held (reported). */
  get stagingDrops(): number {
    return this.#history.standbys.entries.reduce((n, image) => n + image.stats.stagingEvictedChunks + image.stats.stagingFullDrops, 0);
  }

  /** At most ROLE_HISTORY_ENTRIES of each; older ones summed into the first. */
  get history(): { readonly vms: readonly VmTotals[]; readonly standbys: readonly StandbyTotals[] } {
    return { vms: this.#history.vms.entries, standbys: this.#history.standbys.entries };
  }

  constructor(readonly options: GuestCoreOptions) {
    const sup = options.supervision;
    this.name = sup === undefined ? 'guest' : `guest.${sup.host}`;
    this.#assignments = sup === undefined ? null : new AssignmentTracker(options.vm.vmId, sup.host, 'guest', sup.statusIntervalUs);
    this.#idleSubscriptions = sup === undefined ? [] : [sup.subjects.assign('guest')];
    if (sup === undefined) {
      this.#role = 'primary';
      this.#vm = this.#newVm(options.vm);
      this.subscriptions = [options.vm.rxSubject];
    } else {
      this.#role = 'spare';
      this.subscriptions = this.#idleSubscriptions;
    }
  }

  get role(): AssignedRole {
    return this.#role;
  }
  /** The running (or restored, ready) VM; null otherwise. */
  get vm(): GuestVm | null {
    return this.#vm;
  }
  /** The backup image while this host is a backup. */
  get standby(): StandbyImage | null {
    return this.#standby;
  }
  get staleAssignments(): number {
    return this.#assignments?.staleAssignments ?? 0;
  }

  /** Assignments no agent sends (AssignmentTracker.foreignAssignments), ignored. */
  get foreignAssignments(): number {
    return this.#assignments?.foreignAssignments ?? 0;
  }

  handle(input: Input, nowUs: number): Effect[] {
    const sup = this.options.supervision;
    if (sup === undefined) return this.#vm!.handle(input, nowUs);
    const out: Effect[] = [];
    switch (input.kind) {
      case 'start':
        this.#assignments!.started(nowUs);
        this.#status(out);
        out.push(this.#assignments!.nextReport(nowUs));
        return out;
      case 'timer':
        if (input.name === STATUS_TIMER) {
          this.#status(out);
          out.push(this.#assignments!.nextReport(nowUs));
        } else if (input.name === TIMER_RESTORE) this.#restored(nowUs, out);
        else if (this.#role === 'primary' && this.#vm !== null) return this.#vm.handle(input, nowUs);
        return out;
      case 'message':
        return this.#onMessage(input, nowUs, out);
      case 'leaseResult':
      case 'connection':
        return out;
    }
  }

  #onMessage(input: Extract<Input, { kind: 'message' }>, nowUs: number, out: Effect[]): Effect[] {
    const sup = this.options.supervision!;
    const msg: WireMessage = input.msg;
    if ('vmId' in msg && msg.vmId !== this.options.vm.vmId) {
      this.stats.otherVmMessages++;
      return out;
    }
    switch (msg.type) {
      case 'assignment':
        this.#onAssignment(msg, nowUs, out);
        return out;
      case 'checkpointChunk':
        if (input.subject !== sup.ckptDataSubject) {
          this.stats.unexpectedMessages++;
          return out;
        }
        if (this.#standby === null) {
          this.stats.chunksWhileNotBackup++;
          return out;
        }
        out.push(...this.#standby.onChunk(msg, nowUs));
        this.#reportProgress(out);
        return out;
      case 'handoverRequest':
        if (msg.term === this.#term) this.#sendHandover(nowUs, out);
        else this.stats.staleHandoverRequests++;
        return out;
      default:
        if (this.#role === 'primary' && this.#vm !== null) return this.#vm.handle(input, nowUs);
        this.stats.notPrimaryDrops++;
        return out;
    }
  }

  #status(out: Effect[]): void {
    const sup = this.options.supervision!;
    const image = this.#standby ?? this.#frozen;
    const epoch = image?.stats.appliedEpoch ?? 0;
    const synced = image?.synced ?? false;
    this.#reportedEpoch = epoch;
    this.#reportedSynced = synced;
    const ready = this.#role === 'promoting' && this.#ready;
    const txEndSeqs = ready ? (this.#vm?.txEndSeqs ?? []) : [];
    out.push({ kind: 'send', subject: sup.subjects.status, msg: this.#assignments!.status({ role: this.#role, term: this.#term, epoch, synced, ready, txEndSeqs, chunksStaged: this.chunksStaged, followedAgentIncarnation: image?.followedAgentIncarnation ?? 0 }) });
  }

  /** A backup reports each applied epoch, and when its image becomes complete. */
  #reportProgress(out: Effect[]): void {
    const s = this.#standby!;
    if (s.stats.appliedEpoch !== this.#reportedEpoch || s.synced !== this.#reportedSynced) this.#status(out);
  }

  #onAssignment(a: Assignment, nowUs: number, out: Effect[]): void {
    const order = this.#assignments!.take(a);
    if (ignoresAssignment(order)) return;
    if (order === 'newer' && this.#role !== 'stopped') this.#become(a, nowUs, out);
    this.#status(out);
  }

  #become(a: Assignment, nowUs: number, out: Effect[]): void {
    const sup = this.options.supervision!;
    const previous = this.#role;
    // A new backup for this primary (same term): the VM runs on untouched.
    if (a.role === 'primary' && previous === 'primary' && a.term === this.#term) return;
    if (a.role === 'promoting' && (previous !== 'backup' || this.#standby === null)) {
      // Restarted since it held the image, before its agent learned so: nothing to promote.
      if (previous === 'spare') this.stats.promotionsWithoutImage++;
      else this.stats.assignmentsRefused++; // the failover service promotes only a backup: a forgery
      return;
    }
    // The failover service promotes only a backup that reported a complete image, and makes primary only a
    // promoted guest that reported its restore done: anything else is a forgery, refused (the role stays).
    if ((a.role === 'promoting' && !this.#standby!.synced) || (a.role === 'primary' && previous === 'promoting' && !this.#ready)) {
      this.stats.assignmentsRefused++;
      return;
    }
    this.#role = a.role;
    this.#term = a.term;
    switch (a.role) {
      case 'backup':
        // A new assignment as backup is a new join (or the first one): a new image from the start or a base epoch.
        this.#drop(out);
        this.#standby = new StandbyImage({ vmId: this.options.vm.vmId, ckptAckSubject: sup.ckptAckSubject, term: a.term, memoryBytes: this.options.vm.memoryBytes, specBufferBytes: sup.specBufferBytes, maxPendingEpochs: sup.maxPendingEpochs, stagedBytesMax: sup.stagedBytesMax, recordDigests: this.options.vm.replication?.recordDigests ?? false, host: sup.host, joining: a.joining, joinSeq: a.joinSeq, traceEpochs: this.options.vm.tracing?.epochs ?? false, ...(this.options.vm.tracing ? { sampler: this.options.vm.tracing.sampler } : {}) });
        this.#history.standbys.add(this.#standby);
        this.subscriptions = [...this.#idleSubscriptions, sup.ckptDataSubject];
        return;
      case 'promoting': {
        const image = this.#standby;
        assert(image !== null && image.synced, () => `promoting ${sup.host} without a complete backup image`);
        // The image is final from here: the promotion restores exactly this epoch.
        this.#standby = null;
        this.#frozen = image;
        this.#ready = false;
        this.#handover = sup.handoverSpec ? image.handoverChunks(a.term, this.options.vm.replication!.chunkBytes) : null;
        this.#handoverNextUs = 0;
        this.#handoverWaitUs = sup.handoverAnswerIntervalUs.firstUs;
        this.subscriptions = sup.handoverSpec ? [...this.#idleSubscriptions, sup.subjects.handoverRequest] : this.#idleSubscriptions;
        out.push({ kind: 'setTimer', name: TIMER_RESTORE, atUs: nowUs + sup.restoreUs });
        return;
      }
      case 'primary': {
        const vm = previous === 'promoting' && this.#ready ? this.#vm : null;
        assert(previous !== 'promoting' || vm !== null, () => `${sup.host} made primary before its restore finished (refused above)`);
        if (vm === null) {
          // The first primary: a fresh VM, as at boot.
          this.#drop(out);
          this.#vm = this.#newVm(this.options.vm);
        } else vm.term = a.term; // a promotion that went on under a newer term (a take-over again, mid-promotion)
        if (this.#frozen !== null) this.#history.standbys.retire(this.#frozen, { stats: this.#frozen.stats });
        this.#frozen = null;
        this.#handover = null;
        this.subscriptions = [...this.#idleSubscriptions, this.options.vm.rxSubject, sup.subjects.epoch, ...(this.options.vm.plugBackpressure ? [sup.subjects.commit] : [])];
        out.push(...this.#vm!.handle({ kind: 'start' }, nowUs));
        return;
      }
      case 'spare':
      case 'stopped':
        this.#drop(out);
        this.subscriptions = this.#idleSubscriptions;
        return;
    }
  }

  /** The restore time is over: the VM runs from the frozen image once the agent says so. */
  #restored(nowUs: number, out: Effect[]): void {
    const image = this.#frozen;
    if (this.#role !== 'promoting' || image === null || this.#ready) return;
    const applied = image.stats.appliedEpoch;
    if (applied > 0) {
      const vm = this.#newVm({ ...this.options.vm, rng: new Rng(this.options.vm.seed).fork(`promoted.${this.#term}`).fork('guest.app') }, image.image);
      try {
        vm.restore(image.stateBlob, this.#term, nowUs);
      } catch (cause) {
        // A state that does not restore (checksummed, so written so, or forged): the image cannot run. Never ready, the
        // promotion does not finish and the VM is lost, counted; the process stays up.
        if (!(cause instanceof SnapshotError)) throw cause;
        this.stats.restoresRefused++;
        out.push({ kind: 'log', level: 'error', event: 'guest.restore_refused', fields: { epoch: applied, err: cause.message } });
        return;
      }
      this.#vm = vm;
    } else {
      // Promoted before the first checkpoint applied: the guest starts afresh, as at boot.
      this.#vm = this.#newVm(this.options.vm);
    }
    this.#ready = true;
    this.#status(out);
  }

  #sendHandover(nowUs: number, out: Effect[]): void {
    const chunks = this.#handover;
    // The acker repeats its request until its answer comes: one may cross the promotion's end, when the handover is gone.
    if (this.#role !== 'promoting' || chunks === null) {
      this.stats.lateHandoverRequests++;
      return;
    }
    if (nowUs < this.#handoverNextUs) {
      this.stats.handoverRequestsTooSoon++;
      return;
    }
    // Backs off as the acker does: a lost answer is sent again soon, a flood of requests gets ever fewer.
    this.#handoverNextUs = nowUs + this.#handoverWaitUs;
    this.#handoverWaitUs = Math.min(2 * this.#handoverWaitUs, this.options.supervision!.handoverAnswerIntervalUs.maxUs);
    this.stats.handoversSent++;
    for (const chunk of chunks) out.push({ kind: 'send', subject: this.options.supervision!.subjects.handover, msg: chunk });
  }

  #newVm(options: GuestVmOptions, memory?: StandbyImage['image']): GuestVm {
    const vm = new GuestVm(options, memory);
    if (this.options.supervision !== undefined) vm.term = this.#term;
    this.#history.vms.add(vm);
    return vm;
  }

  /** Forgets the VM and any image (a crash of the VM, or a new role from nothing). */
  #drop(out: Effect[]): void {
    if (this.#vm !== null) for (const name of this.#vm.timerNames()) out.push({ kind: 'cancelTimer', name });
    if (this.#vm !== null) this.#history.vms.retire(this.#vm, { stats: this.#vm.stats, tcp: { stats: this.#vm.tcp.stats }, capture: this.#vm.capture === null ? null : { stats: this.#vm.capture.stats } });
    for (const image of [this.#standby, this.#frozen]) if (image !== null) this.#history.standbys.retire(image, { stats: image.stats });
    this.#vm = null;
    this.#standby = null;
    this.#frozen = null;
    this.#handover = null;
    this.#ready = false;
    out.push({ kind: 'cancelTimer', name: TIMER_RESTORE });
  }
}

const foldVmTotals = (older: VmTotals, newer: VmTotals): VmTotals => ({
  stats: foldCounters(older.stats, newer.stats),
  tcp: { stats: foldCounters(older.tcp.stats, newer.tcp.stats) },
  capture: older.capture === null || newer.capture === null ? (newer.capture ?? older.capture) : { stats: foldCounters(older.capture.stats, newer.capture.stats) },
});

const foldStandbyTotals = (older: StandbyTotals, newer: StandbyTotals): StandbyTotals => ({
  stats: foldCounters(older.stats, newer.stats, { highest: ['appliedEpoch', 'baseEpoch', 'syncedEpoch'] }),
});
