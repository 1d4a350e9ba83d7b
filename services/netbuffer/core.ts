import { assert } from '../../lib/assert.js';
import { isConnectionId, type AssignedRole, type Assignment, type Segment } from '../../lib/codec/messages.js';
import type { HostSubjects } from '../../lib/codec/subjects.js';
import type { Core, Effect, Input } from '../../lib/runtime/types.js';
import { AssignmentTracker, ignoresAssignment, PermitHolder, STATUS_TIMER } from '../../lib/supervision/index.js';
import { plugBytesOf } from '../../lib/tcp/header.js';
import { OutputWatch, TIMER_OUTPUT_IDLE, type OutputWatchOptions, type OutputWatchStats } from '../../lib/epoch-policy/index.js';
import { HeldBytesTracer } from '../../lib/tracing/held-bytes.js';
import type { TracingOptions } from '../../lib/tracing/options.js';
import { NO_SAMPLER } from '../../lib/tracing/sampling.js';

export interface NetbufferOptions {
  readonly vmId: string;
  /** The host this netbuffer runs on. */
  readonly host: string;
  /** Its host's subjects: the guest's segments and commits arrive there, assignments and permits too. */
  readonly subjects: HostSubjects;
  /** Released output goes here (the wire). */
  readonly outSubject: string;
  /** Bound on held bytes; a segment beyond it is refused and counted (TCP retransmits it). */
  readonly heldBytesMax: number;
  /**
   * Hold data segments too (remus). In speculative modes the acker owns the
   * data and its delivery; the netbuffer plugs the rest (ACKs, SYN, FIN).
   */
  readonly holdData: boolean;
  /** How often it reports to its host agent. */
  readonly statusIntervalUs: number;
  /** Which bytes' paths to report as spans (remus: the netbuffer holds the data); none by default. */
  readonly tracing?: TracingOptions;
  /** Adaptive epochs: report held output whose connection went quiet to the checkpointer; absent: never. */
  readonly outputWatch?: OutputWatchOptions;
  /** Tests only: a planted bug that releases output without waiting for its commit. */
  readonly plantedReleaseBeforeCommit?: boolean;
  /** Tests only: a planted bug that keeps releasing after its permit expired. */
  readonly plantedIgnorePermitExpiry?: boolean;
}

export interface NetbufferStats {
  heldBytes: number;
  heldBytesMax: number;
  segmentsReleased: number;
  segmentsRefused: number;
  lastCommittedEpoch: number;
  /** Commits and segments of another term (a deposed primary, or our successor), dropped. */
  staleTermDrops: number;
  /** Exact copies of a segment already held (the bus repeated it), dropped. */
  duplicatesDropped: number;
  /** Commits of an epoch already committed (the bus repeated one, or a later commit came first), ignored. */
  staleCommits: number;
  /** Releases that waited because the permit had expired (the host could not renew its lease). */
  releasesWithoutPermit: number;
  /** Payload bytes released to the wire (data of remus mode; 0 in speculative modes, where the acker sends data). */
  bytesReleased: number;
  /** Segments, commits and epoch ends that reached it while not the primary's (a backup's or spare's netbuffer hears its own host only), dropped. */
  notPrimaryDrops: number;
  /** Messages naming another VM on this VM's subjects (misrouted or forged), dropped: another VM's commit must not release this one's output. */
  otherVmMessages: number;
  /** Messages of a type its subjects never carry to it, dropped. */
  unexpectedMessages: number;
  /** Speculative modes: segments with data on `tx`, which the guest sends to the acker alone (`tx.data`): misrouted or forged, dropped; the acker owns data there. */
  dataSegmentsIgnored: number;
  /** Segments of a connection no guest has (an id outside 1..MAX_CONNECTIONS): forged, dropped. */
  unknownConnections: number;
}

interface EpochQueue {
  readonly epoch: number;
  readonly segments: Segment[];
  /** What identifies each held segment: a copy the bus delivered twice is held once. */
  readonly keys: Set<string>;
}

/** Every field the guest sets: two segments equal in all of them are one segment delivered twice. */
const segmentKey = (seg: Segment): string => `${seg.seq}/${seg.payload.length}/${seg.flags}/${seg.ack}/${seg.window}/${seg.tsValUs}/${seg.tsEcrUs}`;

/**
 * Output commit, like Linux sch_plug: each epoch's segments are held until
 * the backup has that epoch, then the whole epoch is released in order, and
 * only while the host agent's release permit lasts. Idle unless its host
 * agent assigns it the primary role.
 */
export class NetbufferCore implements Core {
  readonly name: string;
  subscriptions: readonly string[];
  readonly stats: NetbufferStats = { heldBytes: 0, heldBytesMax: 0, segmentsReleased: 0, segmentsRefused: 0, lastCommittedEpoch: 0, staleTermDrops: 0, duplicatesDropped: 0, staleCommits: 0, releasesWithoutPermit: 0, bytesReleased: 0, notPrimaryDrops: 0, otherVmMessages: 0, unexpectedMessages: 0, dataSegmentsIgnored: 0, unknownConnections: 0 };
  readonly #assignments: AssignmentTracker;
  readonly #permit: PermitHolder;
  readonly #idleSubscriptions: readonly string[];
  #role: AssignedRole = 'spare';
  /** The fencing term this host serves under. */
  #term = 0;
  /** Ascending by epoch. */
  readonly #queues: EpochQueue[] = [];
  #tracer: HeldBytesTracer;
  /** Tracing data it holds: it hears the guest's epoch ends too, to tell a segment's wait for its epoch from its wait for the commit. */
  readonly #traced: boolean;
  readonly #watch: OutputWatch | null;

  constructor(readonly options: NetbufferOptions) {
    this.name = `netbuffer.${options.host}`;
    this.#watch = options.outputWatch === undefined ? null : new OutputWatch(options.vmId, options.outputWatch);
    this.#tracer = new HeldBytesTracer(options.vmId, options.tracing?.sampler ?? NO_SAMPLER, 0, null);
    this.#traced = options.holdData && options.tracing !== undefined && options.tracing.sampler !== NO_SAMPLER;
    this.#assignments = new AssignmentTracker(options.vmId, options.host, 'netbuffer', options.statusIntervalUs);
    this.#permit = new PermitHolder(options.host, options.plantedIgnorePermitExpiry ?? false);
    this.#idleSubscriptions = [options.subjects.assign('netbuffer'), options.subjects.permit];
    this.subscriptions = this.#idleSubscriptions;
  }

  get role(): AssignedRole {
    return this.#role;
  }
  get term(): number {
    return this.#term;
  }
  get staleAssignments(): number {
    return this.#assignments.staleAssignments;
  }
  /** Adaptive epochs: quiet output reported (null: not watching). */
  get outputWatchStats(): OutputWatchStats | null {
    return this.#watch?.stats ?? null;
  }

  /** Release permits ignored: of an older term than the one held, or granted to another host (PermitHolder). */
  get permitsIgnored(): { stale: number; foreign: number } {
    return this.#permit.ignored;
  }

  /** Assignments no agent sends (AssignmentTracker.foreignAssignments), ignored. */
  get foreignAssignments(): number {
    return this.#assignments.foreignAssignments;
  }

  #notPrimary(): Effect[] {
    this.stats.notPrimaryDrops++;
    return [];
  }

  handle(input: Input, nowUs: number): Effect[] {
    if (input.kind === 'start') {
      this.#assignments.started(nowUs);
      return [this.#status(), this.#assignments.nextReport(nowUs)];
    }
    if (input.kind === 'timer' && input.name === STATUS_TIMER) return [this.#status(), this.#assignments.nextReport(nowUs)];
    if (input.kind === 'timer' && input.name === TIMER_OUTPUT_IDLE) {
      const out: Effect[] = [];
      if (this.#role === 'primary') this.#watch?.onTimer(this.#term, this.stats.heldBytes, nowUs, out);
      return out;
    }
    if (input.kind !== 'message') return [];
    const msg = input.msg;
    if (msg.type !== 'assignment' && 'vmId' in msg && msg.vmId !== this.options.vmId) {
      this.stats.otherVmMessages++;
      return [];
    }
    switch (msg.type) {
      case 'assignment':
        return this.#onAssignment(msg);
      case 'releasePermit':
        // A new permit may let out what waited for one.
        return this.#permit.grant(msg) && this.#role === 'primary' ? this.#release(this.stats.lastCommittedEpoch, nowUs) : [];
      case 'segment':
        if (this.#role !== 'primary') return this.#notPrimary();
        if (msg.term !== this.#term) {
          this.stats.staleTermDrops++; // a fenced primary's guest
          return [];
        }
        return this.#onSegment(msg, nowUs);
      case 'epochCommit':
        if (this.#role !== 'primary') return this.#notPrimary();
        if (msg.term !== this.#term) {
          this.stats.staleTermDrops++;
          return [];
        }
        return this.#onCommit(msg.epoch, nowUs);
      case 'epochEnd': {
        if (this.#role !== 'primary') return this.#notPrimary();
        if (msg.term !== this.#term) {
          this.stats.staleTermDrops++;
          return [];
        }
        const out: Effect[] = [];
        this.#tracer.epochEnded(msg.epoch, msg.txEndSeqs.map((seq) => seq - 1), nowUs, out);
        return out;
      }
      default:
        this.stats.unexpectedMessages++;
        return [];
    }
  }

  #status(): Effect {
    return { kind: 'send', subject: this.options.subjects.status, msg: this.#assignments.status({ role: this.#role, term: this.#term }) };
  }

  #onAssignment(a: Assignment): Effect[] {
    const order = this.#assignments.take(a);
    if (ignoresAssignment(order)) return [];
    const out: Effect[] = [];
    if (order === 'newer' && this.#role !== 'stopped') {
      const continues = a.role === 'primary' && this.#role === 'primary' && a.term === this.#term;
      if (!continues) {
        // A new term or another role: what was held belongs to an epoch stream that is gone.
        this.#tracer = new HeldBytesTracer(this.options.vmId, this.options.tracing?.sampler ?? NO_SAMPLER, a.term, null);
        this.#queues.length = 0;
        this.stats.heldBytes = 0;
        this.#watch?.reset(out);
        this.stats.lastCommittedEpoch = a.role === 'primary' ? a.firstEpoch - 1 : 0;
      }
      this.#role = a.role;
      this.#term = a.term;
      const s = this.options.subjects;
      this.subscriptions = a.role === 'primary' ? [...this.#idleSubscriptions, s.tx, s.commit, ...(this.#traced ? [s.txEpoch] : [])] : this.#idleSubscriptions;
    }
    out.push(this.#status());
    return out;
  }

  /** Output released at an earlier step leaves only while the permit it was released under lasts: past it, it is lost as on the wire (the guest's TCP sends it again, held anew). */
  mayStillSend(subject: string, nowUs: number): boolean {
    return subject !== this.options.outSubject || this.#permit.allows(this.#term, nowUs);
  }

  #onSegment(seg: Segment, nowUs: number): Effect[] {
    // As the acker does: the tracer keys sampled bytes by connection, and no guest has another.
    if (!isConnectionId(seg.connId)) {
      this.stats.unknownConnections++;
      return [];
    }
    if (!this.options.holdData && seg.payload.length > 0) {
      this.stats.dataSegmentsIgnored++;
      return [];
    }
    const committed = seg.epoch <= this.stats.lastCommittedEpoch || this.options.plantedReleaseBeforeCommit === true;
    if (committed && this.#permit.allows(this.#term, nowUs)) {
      // Its epoch is already on the backup (it overtook nothing): release at once.
      this.stats.segmentsReleased++;
      this.stats.bytesReleased += seg.payload.length;
      return [{ kind: 'send', subject: this.options.outSubject, msg: seg }];
    }
    const bytes = plugBytesOf(seg);
    const key = segmentKey(seg);
    if (this.#queues.find((q) => q.epoch === seg.epoch)?.keys.has(key)) {
      this.stats.duplicatesDropped++;
      return [];
    }
    if (this.stats.heldBytes + bytes > this.options.heldBytesMax) {
      this.stats.segmentsRefused++;
      return [];
    }
    let queue = this.#queues[this.#queues.length - 1];
    if (queue === undefined || queue.epoch < seg.epoch) {
      queue = { epoch: seg.epoch, segments: [], keys: new Set() };
      this.#queues.push(queue);
    } else if (queue.epoch > seg.epoch) {
      // Late segment of an older, still uncommitted epoch (or a committed one held for a permit).
      queue = this.#queues.find((q) => q.epoch === seg.epoch) ?? this.#insertQueue(seg.epoch);
    }
    queue.segments.push(seg);
    queue.keys.add(key);
    this.stats.heldBytes += bytes;
    if (this.stats.heldBytes > this.stats.heldBytesMax) this.stats.heldBytesMax = this.stats.heldBytes;
    const out: Effect[] = [];
    this.#tracer.received(seg.connId, seg.seq - 1, seg.seq - 1 + seg.payload.length, false, nowUs, out);
    this.#watch?.held(seg.connId, seg.epoch, nowUs, out);
    return out;
  }

  #insertQueue(epoch: number): EpochQueue {
    const queue = { epoch, segments: [], keys: new Set<string>() };
    const at = this.#queues.findIndex((q) => q.epoch > epoch);
    this.#queues.splice(at, 0, queue);
    return queue;
  }

  #onCommit(epoch: number, nowUs: number): Effect[] {
    if (epoch <= this.stats.lastCommittedEpoch) {
      this.stats.staleCommits++;
      return [];
    }
    this.stats.lastCommittedEpoch = epoch;
    this.#watch?.committed(epoch);
    return this.#release(epoch, nowUs);
  }

  /** Releases every held epoch up to `epoch`, in order, if the permit allows. */
  #release(epoch: number, nowUs: number): Effect[] {
    if (this.#queues.length === 0 || this.#queues[0]!.epoch > epoch) return [];
    if (!this.#permit.allows(this.#term, nowUs)) {
      this.stats.releasesWithoutPermit++;
      return [];
    }
    const effects: Effect[] = [];
    this.#tracer.committed(epoch, nowUs, effects);
    while (this.#queues.length > 0 && this.#queues[0]!.epoch <= epoch) {
      const queue = this.#queues.shift()!;
      for (const seg of queue.segments) {
        this.stats.heldBytes -= plugBytesOf(seg);
        this.stats.bytesReleased += seg.payload.length;
        effects.push({ kind: 'send', subject: this.options.outSubject, msg: seg });
        if (seg.payload.length > 0) this.#tracer.sent(seg.connId, seg.seq - 1, seg.seq - 1 + seg.payload.length, null, nowUs, effects);
      }
      this.stats.segmentsReleased += queue.segments.length;
    }
    assert(this.stats.heldBytes >= 0, () => `held bytes went negative: ${this.stats.heldBytes}`);
    return effects;
  }
}
