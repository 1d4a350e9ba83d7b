import { assert } from '../../lib/assert.js';
import type { AssignedRole, Assignment } from '../../lib/codec/messages.js';
import type { HostSubjects } from '../../lib/codec/subjects.js';
import type { Core, Effect, Input } from '../../lib/runtime/types.js';
import { foldCounters, RoleHistory, type FoldRules } from '../../lib/results/role-history.js';
import { AssignmentTracker, ignoresAssignment, STATUS_TIMER } from '../../lib/supervision/index.js';
import { PrimaryCheckpointer, PRIMARY_TIMERS, type PrimaryOptions, type PrimaryStats } from './primary.js';

/** What the checkpointer needs besides what an assignment says (term, first epoch, backup). */
export type CheckpointerOptions = Omit<PrimaryOptions, 'term' | 'firstEpoch' | 'backupHost' | 'backupJoining' | 'incarnation' | 'agentIncarnation'> & {
  readonly host: string;
  readonly subjects: HostSubjects;
  /** The replication link's acknowledgements (per VM: every backup answers there). */
  readonly ckptAckSubject: string;
  /** How often it reports to its host agent. */
  readonly statusIntervalUs: number;
};

/**
 * The checkpointer of one host: idle until its host agent makes the host
 * primary, then the epoch driver of the protected VM (PrimaryCheckpointer)
 * for that term. A new assignment under the same term changes its backup.
 * It reports each commit to the agent, whose heartbeats carry it.
 */
export class CheckpointerCore implements Core {
  readonly name: string;
  subscriptions: readonly string[];
  readonly #assignments: AssignmentTracker;
  readonly #idleSubscriptions: readonly string[];
  #role: AssignedRole = 'spare';
  #primary: PrimaryCheckpointer | null = null;
  /** Every primary term it ran, for totals: the live one as it is, the ended ones as their numbers (no staged checkpoint data), the oldest folded. */
  readonly #history: RoleHistory<{ readonly stats: PrimaryStats }>;
  #reportedEpoch = -1;

  constructor(readonly options: CheckpointerOptions) {
    this.name = `checkpointer.${options.host}`;
    this.#assignments = new AssignmentTracker(options.vmId, options.host, 'checkpointer', options.statusIntervalUs);
    this.#idleSubscriptions = [options.subjects.assign('checkpointer')];
    this.subscriptions = this.#idleSubscriptions;
    const rules: FoldRules<PrimaryStats> = { highest: ['lastCommittedEpoch', 'lastLocalCommitEpoch'], samplesMax: options.maxLatencySamples };
    this.#history = new RoleHistory((older, newer) => ({ stats: foldCounters(older.stats, newer.stats, rules) }));
  }

  /** The numbers of every primary term it ran (at most ROLE_HISTORY_ENTRIES entries; older terms summed into the first). */
  get history(): readonly { readonly stats: PrimaryStats }[] {
    return this.#history.entries;
  }

  get role(): AssignedRole {
    return this.#role;
  }
  /** The primary side while this host is primary. */
  get primary(): PrimaryCheckpointer | null {
    return this.#primary;
  }
  get stats(): PrimaryStats | null {
    return this.#primary?.stats ?? null;
  }
  get staleAssignments(): number {
    return this.#assignments.staleAssignments;
  }
  /** Messages naming another VM, dropped: an ack of another VM's epoch must never commit one of ours. */
  otherVmMessages = 0;
  /** Staged parts, acknowledgements and idle reports that reached a checkpointer not (or no longer) the primary's, dropped. */
  notPrimaryDrops = 0;
  /** Assignments from another agent than the one that started the primary side (it restarted alone): that side ended. */
  agentsReplaced = 0;
  /** Primary assignments under a term this process ran already (a restarted agent's configuration), not taken. */
  staleTermAssignments = 0;
  /** The highest term a primary side of this process ran under (0: none). */
  #highestTermRun = 0;
  /** Messages of a type its subjects never carry to it (the codec decodes each subject as its own type: only a bug gets here), dropped. */
  unexpectedMessages = 0;

  /** Assignments no agent sends (AssignmentTracker.foreignAssignments), ignored. */
  get foreignAssignments(): number {
    return this.#assignments.foreignAssignments;
  }

  handle(input: Input, nowUs: number): Effect[] {
    const out: Effect[] = [];
    switch (input.kind) {
      case 'start':
        this.#assignments.started(nowUs);
        this.#status(out);
        out.push(this.#assignments.nextReport(nowUs));
        break;
      case 'timer':
        if (input.name === STATUS_TIMER) {
          this.#status(out);
          out.push(this.#assignments.nextReport(nowUs));
        } else if (this.#primary !== null && PRIMARY_TIMERS.has(input.name)) this.#primary.onTimer(input.name, nowUs, out);
        break;
      case 'message': {
        const msg = input.msg;
        // Another VM's message on this VM's subject (a misrouted or forged one): its epochs are not ours.
        if ('vmId' in msg && msg.vmId !== this.options.vmId) this.otherVmMessages++;
        else if (msg.type === 'assignment') this.#onAssignment(msg, nowUs, out);
        else if (this.#primary === null) this.notPrimaryDrops++;
        else if (msg.type === 'checkpointChunk') this.#primary.onStaged(msg, nowUs, out);
        else if (msg.type === 'checkpointAck') this.#primary.onAck(msg, nowUs, out);
        else if (msg.type === 'outputIdle') this.#primary.onOutputIdle(msg, nowUs, out);
        else this.unexpectedMessages++;
        break;
      }
      case 'leaseResult':
        break;
    }
    // The agent's heartbeats report the newest committed epoch.
    const committed = this.#primary?.stats.lastCommittedEpoch ?? 0;
    if (this.#primary !== null && committed !== this.#reportedEpoch) this.#status(out);
    return out;
  }

  #status(out: Effect[]): void {
    const epoch = this.#primary?.stats.lastCommittedEpoch ?? 0;
    this.#reportedEpoch = epoch;
    // synced: this primary's backup holds a complete image (its agent judges a silent service by it).
    out.push({ kind: 'send', subject: this.options.subjects.status, msg: this.#assignments.status({ role: this.#role, term: this.#primary?.term ?? 0, epoch, synced: this.#primary?.backupSynced ?? false }) });
  }

  #onAssignment(a: Assignment, nowUs: number, out: Effect[]): void {
    const order = this.#assignments.take(a);
    if (ignoresAssignment(order)) return;
    if (order === 'newer' && this.#role !== 'stopped') {
      if (this.#primary !== null && a.incarnation !== this.#primary.options.agentIncarnation) {
        // An agent that restarted alone knows nothing of the primary side an earlier one started: it assigns from its
        // configuration (a membership since changed, a term since passed), and a change of peer committed the epochs
        // in flight locally, releasing output the backup did not hold (vopr seeds 2023, 2069, 2144). The side ends
        // with its agent, committing nothing; the failover service takes the new agent for a restarted host.
        const ended = this.#primary;
        this.agentsReplaced++;
        out.push({ kind: 'log', level: 'error', event: 'checkpointer.agent_replaced', fields: { term: ended.term, startedBy: ended.options.agentIncarnation, assignedBy: a.incarnation } });
        this.#stop(out);
        this.#role = 'spare';
      }
      const primary = this.#primary;
      if (a.role === 'primary' && primary !== null && primary.term === a.term) primary.changePeer(a.peerHost, nowUs, out, a.joinSeq);
      else if (a.role === 'primary' && a.term <= this.#highestTermRun) {
        // A term this process ran already (the new agent's configuration names the VM's first): only a newer one is
        // the failover service's. Idle until then (vopr seed 1438: promoted again under a later term, it runs).
        this.staleTermAssignments++;
        this.#stop(out);
        this.#role = 'spare';
      } else {
        if (a.role === 'primary') this.#startPrimary(a, nowUs, out);
        else this.#stop(out);
        this.#role = a.role;
      }
    }
    this.#status(out);
  }

  #startPrimary(a: Assignment, nowUs: number, out: Effect[]): void {
    this.#stop(out);
    const { host: _host, subjects: _subjects, ckptAckSubject: _ack, statusIntervalUs: _status, ...shared } = this.options;
    const primary = new PrimaryCheckpointer({ ...shared, subjects: this.options.subjects, term: a.term, firstEpoch: a.firstEpoch, backupHost: a.peerHost, backupJoining: a.joining, joinSeq: a.joinSeq, incarnation: this.#assignments.incarnation, agentIncarnation: a.incarnation });
    assert(a.term > this.#highestTermRun, () => `a primary side under term ${a.term} after one under ${this.#highestTermRun}`);
    this.#highestTermRun = a.term;
    this.#primary = primary;
    this.#history.add(primary);
    const s = this.options.subjects;
    const adaptive = this.options.epochPolicy?.kind === 'adaptive';
    this.subscriptions = [...this.#idleSubscriptions, s.ckptStage, this.options.ckptAckSubject, ...(adaptive ? [s.outputIdle] : [])];
    primary.start(nowUs, out);
  }

  #stop(out: Effect[]): void {
    if (this.#primary === null) return;
    this.#history.retire(this.#primary, { stats: this.#primary.stats });
    this.#primary = null;
    for (const name of PRIMARY_TIMERS) out.push({ kind: 'cancelTimer', name });
    this.subscriptions = this.#idleSubscriptions;
  }
}
