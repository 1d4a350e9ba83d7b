import { assert } from '../../lib/assert.js';
import { makeChunks } from '../../lib/checkpoint/chunks.js';
import { runLength } from '../../lib/checkpoint/byte-run.js';
import { RepeatGate } from '../../lib/checkpoint/repeat-gate.js';
import { encodeSpecDeltaChunks, type AckerConnectionState, type SpecDelta } from '../../lib/checkpoint/spec-delta.js';
import { specBuffersDigest } from '../../lib/checkpoint/spec-digest.js';
import { ChunkSource, isConnectionId, NO_SACK_BLOCKS, TcpFlag, type AssignedRole, type Assignment, type CheckpointChunk, type EpochEnd, type Segment, type WireMessage } from '../../lib/codec/messages.js';
import { HeldBytesTracer } from '../../lib/tracing/held-bytes.js';
import type { TracingOptions } from '../../lib/tracing/options.js';
import { NO_SAMPLER } from '../../lib/tracing/sampling.js';
import type { HostSubjects } from '../../lib/codec/subjects.js';
import type { Core, Effect, Input } from '../../lib/runtime/types.js';
import { AssignmentTracker, ignoresAssignment, PermitHolder, STATUS_TIMER } from '../../lib/supervision/index.js';
import { LocalNic, type LocalNicOptions } from '../../lib/link/local-nic.js';
import { MAX_WINDOW_FIELD } from '../../lib/tcp/receiver.js';
import { SendBuffer } from '../../lib/tcp/send-buffer.js';
import { TcpSender, type SenderStats } from '../../lib/tcp/sender.js';
import type { TcpOptions } from '../../lib/tcp/options.js';
import type { SpecWindow } from '../../lib/config/run-config.js';
import { HandoverReceiver, type Handover, type HandoverConnection, type HandoverStats } from './handover.js';
import { AckerConnection, type GuestHeader } from './connection.js';
import { OutputWatch, TIMER_OUTPUT_IDLE, type OutputWatchOptions, type OutputWatchStats } from '../../lib/epoch-policy/index.js';
import { foldCounters, RoleHistory } from '../../lib/results/role-history.js';

const EMPTY = new Uint8Array(0);
const TIMER_PREFIX = 'wire';
const TIMER_HANDOVER = 'acker.handover';
/** The local NIC has drained enough for a wire sender it turned away. */
const TIMER_NIC_ROOM = 'acker.nic-room';

export interface AckerOptions {
  readonly vmId: string;
  /** The host this acker runs on. */
  readonly host: string;
  /** remus: nothing on the data path (the client's segments go straight to the guest). spec: speculative ACKs and a replicated speculative buffer. */
  readonly mode: 'remus' | 'spec';
  /** Its host's subjects (guest, checkpointer, agent). */
  readonly subjects: HostSubjects;
  /** The client's side: segments from the link and to it. */
  readonly wireInSubject: string;
  readonly wireOutSubject: string;
  /** A promotion asks the guest for the backup's speculative buffer again after this long without progress (then twice as long, up to `handoverRetryMaxUs`). */
  readonly handoverRetryUs: number;
  readonly handoverRetryMaxUs: number;
  /** A repeated EpochEnd sends this epoch's part again at most once per this gap (RepeatGate: half the checkpointer's repeat interval). */
  readonly partRepeatGapUs: number;
  /** The replication link's rate, bytes/s: a repeat is answered no sooner than twice the time it takes to carry the part (RepeatGate; 0: no link time). */
  readonly replicationBytesPerSec: number;
  /** Per connection, the epochs whose end and guest header are kept while they wait for a commit (UNCOMMITTED_EPOCHS_SLACK beyond those in flight). */
  readonly uncommittedEpochsMax: number;
  /** How often it reports to its host agent. */
  readonly statusIntervalUs: number;
  /** The wire-side sender uses the same TCP defaults as the guest. */
  readonly tcp: TcpOptions;
  readonly specBufferBytes: number;
  /** buffer: speculative ACKs advertise the free buffer. client: the client's window, and what does not fit is dropped unacknowledged (the paper's design). */
  readonly specWindow: SpecWindow;
  readonly chunkBytes: number;
  /** A simulator hook for tests that prove the backup's speculative buffer equal: one digest kept per epoch, for the whole run (a bounded simulated run; never set over NATS). */
  readonly recordDigests: boolean;
  /** Tests only: a planted bug the simulator must catch. */
  readonly plantedBug?: 'release-before-commit' | 'spec-buffer-not-replicated' | 'ignore-permit-expiry';
  /** Which bytes' paths to report as spans (docs/tracing.md); none by default. */
  readonly tracing?: TracingOptions;
  /** Adaptive epochs (spec mode): report speculatively acknowledged data whose connection went quiet to the checkpointer; absent: never. */
  readonly outputWatch?: OutputWatchOptions;
  /** spec: the wire side's own NIC at the head of the client link, which pushes back rather than drops (LocalNic); absent: segments meet the link's queue as they are. */
  readonly localNic?: LocalNicOptions;
}

export interface AckerStats extends HandoverStats {
  /** Messages naming another VM on this VM's subjects (misrouted or forged), dropped. */
  otherVmMessages: number;
  /** Guest segments, epoch ends and commits that reached it while not the primary's acker (or in remus mode), dropped. */
  notPrimaryDrops: number;
  /** Messages of a type, or on a subject, that never carries them to it, dropped. */
  unexpectedMessages: number;
  /** Client SYNs that came after the connection had its buffer (late copies): passed to the guest, the connection's state kept. */
  duplicateClientSyns: number;
  specAcksSent: number;
  specBufferBytesMax: number;
  /** Guest segments not taken into the speculative buffer (gap or no room): the guest retransmits them. */
  segmentsRefused: number;
  /**
   * Epoch ends that gave no end for a connection this acker buffers (a guest
   * names every one of its connections: only a malformed or forged one does
   * not): that connection's bytes stay out of the epoch, held for a later one.
   */
  epochEndsMissingConnections: number;
  segmentsForwarded: number;
  /** Where committed data ends, and what the client acknowledged: summed over the connections (one connection: its sequence numbers). */
  committedSeq: number;
  clientAckSeq: number;
  /** Commits and guest output of another term (a deposed primary, or our successor), dropped. */
  staleTermDrops: number;
  /** A repeated EpochEnd of the last epoch (the checkpointer asked again): its parts sent again, unchanged. */
  epochEndsRepeated: number;
  /** Of those, repeats that came within partRepeatGapUs of the part's last sending (queued while something stalled): not answered. */
  epochEndRepeatsTooSoon: number;
  /** EpochEnds of epochs before the last one (late copies on the bus), dropped. */
  staleEpochEnds: number;
  /** EpochEnds of epochs no backup receives (unprotected): output ended, the part made and kept but not staged. */
  localEpochEnds: number;
  /** Sends to the client held back because the release permit had expired (the wire sender retransmits them). */
  sendsWithoutPermit: number;
  /** Handovers taken at promotion (the backup's speculative buffer). */
  handoversTaken: number;
  /** Handover requests sent again (the guest's answer was lost or late). */
  handoverRetries: number;
  /** Segments of a connection id beyond the guest's (MAX_CONNECTIONS), dropped. */
  unknownConnections: number;
  /** Per-epoch records (where an epoch's bytes end, its guest header) that took the newest one's place at `uncommittedEpochsMax`. */
  uncommittedEpochsCoalesced: number;
  /** Guest data of a connection whose buffer is not set up (its SYN-ACK never came here), dropped unacknowledged: the guest retransmits. */
  segmentsWithoutBuffer: number;
  /** Commits of an epoch committed already (the checkpointer repeats each commit), taken as no-ops. */
  staleCommits: number;
  /** Client segments of a connection whose SYN-ACK the guest sent and we never saw, held back until it comes again. */
  clientSegmentsBeforeSynAck: number;
  /** Handover chunks that came when no handover was awaited (repeated answers after it was taken, or none asked for), dropped. */
  lateHandoverChunks: number;
  /** Wire timers that fired with nothing armed under their name (cancelled, or a role change's new connection has not armed it yet): ignored. */
  staleWireTimers: number;
}

/**
 * The acker. In spec mode it acknowledges the guest's data at once from a
 * bounded speculative buffer per connection (window = free space),
 * replicates those buffers with each checkpoint, and after commit owns
 * delivery to the client: its own congestion control, fast retransmit and
 * RTO per connection, because the guest no longer sees the real network. In
 * remus mode it has no part in the data path: the guest takes the client's
 * segments itself, as a Remus VM does (docs/design-notes.md).
 */
export class AckerCore implements Core {
  readonly name: string;
  subscriptions: readonly string[];
  readonly stats: AckerStats = { otherVmMessages: 0, notPrimaryDrops: 0, unexpectedMessages: 0, duplicateClientSyns: 0, specAcksSent: 0, specBufferBytesMax: 0, segmentsRefused: 0, epochEndsMissingConnections: 0, segmentsForwarded: 0, committedSeq: 0, clientAckSeq: 0, staleTermDrops: 0, epochEndsRepeated: 0, epochEndRepeatsTooSoon: 0, staleEpochEnds: 0, localEpochEnds: 0, sendsWithoutPermit: 0, handoversTaken: 0, handoverRetries: 0, unknownConnections: 0, uncommittedEpochsCoalesced: 0, segmentsWithoutBuffer: 0, staleCommits: 0, clientSegmentsBeforeSynAck: 0, handoverStaleTermChunks: 0, handoversCorrupt: 0, lateHandoverChunks: 0, staleWireTimers: 0 };
  readonly #assignments: AssignmentTracker;
  readonly #permit: PermitHolder;
  /** spec: the NIC that pushes back; null: segments go at once. */
  readonly #nic: LocalNic | null;
  readonly #wakeOnNicRoom = (atUs: number) => this.#emit({ kind: 'setTimer', name: TIMER_NIC_ROOM, atUs });
  readonly #idleSubscriptions: readonly string[];
  #role: AssignedRole = 'spare';
  /** The fencing term this host serves under. */
  #term = 0;
  /** While promoting: the backup's speculative buffers arriving from the guest. */
  #handover: HandoverReceiver | null = null;
  /** Restored from a handover, ready to run once the primary assignment comes. */
  #restored = false;
  #handoverRetryUs = 0;
  /** Counters of wire senders this acker ran before a reset (one per connection and role it took, the oldest folded). */
  readonly #retiredWires = new RoleHistory<SenderStats>((older, newer) => foldCounters(older, newer));
  /** Spans of sampled bytes: what this acker received, held and sent (speculative modes). */
  #tracer: HeldBytesTracer;
  readonly #effectSink = { push: (e: Effect) => this.#emit(e) };
  /** Digest of the speculative buffers as each epoch ended (recordDigests only). */
  readonly digests = new Map<number, string>();
  readonly #out: Effect[][] = [];
  /** By connection id (at most MAX_CONNECTIONS). */
  readonly #connections = new Map<number, AckerConnection>();
  /** The speculative part of the last epoch that ended: a repeated EpochEnd gets exactly these chunks, never a new delta. */
  #lastSpecPart: { epoch: number; chunks: CheckpointChunk[] } | null = null;
  readonly #specPartRepeats: RepeatGate;
  #committedEpoch = 0;
  /** The time of the input being handled (the permit is checked against it). */
  #nowUs = 0;
  readonly #watch: OutputWatch | null;

  constructor(readonly options: AckerOptions) {
    this.name = `acker.${options.host}`;
    this.#watch = options.outputWatch === undefined || options.mode !== 'spec' ? null : new OutputWatch(options.vmId, options.outputWatch);
    this.#tracer = this.#newTracer();
    this.#assignments = new AssignmentTracker(options.vmId, options.host, 'acker', options.statusIntervalUs);
    this.#permit = new PermitHolder(options.host, options.plantedBug === 'ignore-permit-expiry');
    this.#specPartRepeats = new RepeatGate(options.partRepeatGapUs, options.replicationBytesPerSec);
    this.#nic = options.localNic ? new LocalNic(options.localNic) : null;
    assert(this.#nic === null || options.mode === 'spec', 'a local NIC is the speculative acker\'s alone (in remus the netbuffer sends)');
    this.#idleSubscriptions = [options.subjects.assign('acker'), options.subjects.permit];
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

  /** Release permits ignored: of an older term than the one held, or granted to another host (PermitHolder). */
  get permitsIgnored(): { stale: number; foreign: number } {
    return this.#permit.ignored;
  }

  /** Assignments no agent sends (AssignmentTracker.foreignAssignments), ignored. */
  get foreignAssignments(): number {
    return this.#assignments.foreignAssignments;
  }

  /** Its record of connection `connId`, made on first sight; null for an id no guest has (counted). */
  #connection(connId: number): AckerConnection | null {
    let c = this.#connections.get(connId);
    if (c !== undefined) return c;
    if (!isConnectionId(connId)) {
      this.stats.unknownConnections++;
      return null;
    }
    c = new AckerConnection(connId, connId === 1 ? TIMER_PREFIX : `${TIMER_PREFIX}${connId}`, this.options.uncommittedEpochsMax, this.stats);
    this.#connections.set(connId, c);
    return c;
  }

  /** The connections in id order. */
  #ordered(): AckerConnection[] {
    return [...this.#connections.values()].sort((a, b) => a.connId - b.connId);
  }

  /**
   * Takes over one connection on a promoted host from the backup's copy:
   * the speculative buffer (all of it committed) and the connection state.
   * Delivery restarts from the client's last known ACK; bytes the client
   * already has come back as duplicates and TCP drops them.
   */
  #restore(h: HandoverConnection): void {
    const state = h.connection;
    const c = this.#connection(state.connId);
    if (c === null) return;
    c.clientWscale = state.clientWscale ?? undefined;
    c.clientSynWindow = state.clientSynWindow;
    c.guestOfferedWscale = state.guestOfferedWscale;
    c.clientNxt = state.clientNxt;
    // Only the client's SYN: the restored guest repeats its SYN-ACK, which opens the buffer here (#initConnection).
    if (state.awaitingSynAck === true) {
      assert(runLength(h.bytes) === 0, () => `a handover of ${runLength(h.bytes)} B for connection ${state.connId}, which awaits its SYN-ACK`);
      return;
    }
    c.committedHeader = state.guestHeader;
    const spec = new SendBuffer(this.options.specBufferBytes, h.startSeq);
    const handedBytes = runLength(h.bytes);
    const taken = spec.appendBytes(h.bytes);
    assert(taken === handedBytes, () => `handover of ${handedBytes} B overflows a ${this.options.specBufferBytes} B speculative buffer`);
    c.spec = spec;
    c.epochStartSeq = spec.endSeq;
    c.committedSeq = spec.endSeq;
    const wire = new TcpSender({ ...this.options.tcp, nagle: false, slowStartAfterIdle: false }, this.#wireHost(c), c.timerPrefix, spec.startSeq);
    c.wire = wire;
    wire.sackEnabled = this.options.tcp.sack && state.sackPermitted === true;
    wire.resetTo(spec.startSeq); // recover below the first byte: duplicate ACKs for it start a fast retransmit
    // The client's first ACK sets its window anyway; until then the last one known, not the SYN's scaled, which may be
    // wider. A closed one is taken as one segment's: a fresh sender's persist timer would wait its first RTO (1 s) to
    // probe, for a window whose opening may have gone to the dead primary; the segment probes at once.
    const known = state.clientWindowBytes;
    wire.initWindow(known === undefined ? c.clientSynWindow * (1 << c.clientShift) : Math.max(known, this.options.tcp.mssBytes), c.clientNxt - 1);
  }

  /** Connection `connId` as this acker sees it (null before the guest's SYN-ACK): a promoted acker starts from it. */
  connectionState(upToEpoch = Infinity, connId = 1): AckerConnectionState | null {
    const c = this.#connections.get(connId);
    return c === undefined || c.spec === null ? null : c.state(upToEpoch);
  }

  /** The wire side's TCP counters (retransmits, timeouts) of every connection this acker served. */
  get wireStats(): readonly SenderStats[] {
    return [...this.#retiredWires.entries, ...this.#ordered().flatMap((c) => (c.wire === null ? [] : [c.wire.stats]))];
  }

  /** Bytes in the speculative buffers now. */
  get specBufferBytes(): number {
    let bytes = 0;
    for (const c of this.#connections.values()) bytes += c.spec?.usedBytes ?? 0;
    return bytes;
  }

  /** Times the local NIC kept a wire segment in TCP (0 without one). */
  get localNicThrottles(): number {
    return this.#nic?.stats.throttles ?? 0;
  }

  /** Adaptive epochs: quiet output reported (null: not watching). */
  get outputWatchStats(): OutputWatchStats | null {
    return this.#watch?.stats ?? null;
  }

  handle(input: Input, nowUs: number): Effect[] {
    const effects: Effect[] = [];
    this.#out.push(effects);
    this.#nowUs = nowUs;
    try {
      if (input.kind === 'start') {
        this.#assignments.started(nowUs);
        this.#sendStatus();
        this.#emit(this.#assignments.nextReport(nowUs));
      } else if (input.kind === 'message') this.#onMessage(input.subject, input.msg, nowUs);
      else if (input.kind === 'timer') this.#onTimer(input.name, nowUs);
    } finally {
      this.#out.pop();
      this.#sumSeqs();
    }
    return effects;
  }

  #onTimer(name: string, nowUs: number): void {
    if (name === STATUS_TIMER) {
      this.#sendStatus();
      this.#emit(this.#assignments.nextReport(nowUs));
    } else if (name === TIMER_HANDOVER) this.#requestHandover(nowUs, true);
    else if (name === TIMER_NIC_ROOM) {
      this.#nic?.woken();
      for (const c of this.#ordered()) c.wire?.trySend(nowUs);
    }
    else if (name === TIMER_OUTPUT_IDLE) {
      // What waits for a commit: taken into a buffer, not yet committed.
      if (this.#role !== 'primary' || this.#watch === null) return;
      let heldBytes = 0;
      for (const c of this.#connections.values()) heldBytes += c.uncommittedBytes;
      this.#watch.onTimer(this.#term, heldBytes, nowUs, this.#effectSink, (connId) => this.#connections.get(connId)?.backlogged ?? false);
    } else {
      for (const c of this.#connections.values()) {
        if (c.wire === null) continue;
        if (name === c.wire.rtoTimer) {
          if (this.#wireTimerArmed(c.wire.rtoDeadlineUs)) c.wire.onRto(nowUs);
          return;
        }
        if (name === c.wire.persistTimer) {
          if (this.#wireTimerArmed(c.wire.persistDeadlineUs)) c.wire.onPersist(nowUs);
          return;
        }
      }
    }
  }

  /** The counters that sum over connections (plain numbers for reports). */
  #sumSeqs(): void {
    let committed = 0;
    let clientAck = 0;
    for (const c of this.#connections.values()) {
      committed += c.committedSeq;
      clientAck += c.wire?.sndUna ?? 0;
    }
    this.stats.committedSeq = committed;
    this.stats.clientAckSeq = clientAck;
  }

  #emit(effect: Effect): void {
    this.#out[this.#out.length - 1]!.push(effect);
  }

  #sendStatus(): void {
    const ready = this.#role === 'promoting' && (this.options.mode === 'remus' || this.#restored);
    this.#emit({ kind: 'send', subject: this.options.subjects.status, msg: this.#assignments.status({ role: this.#role, term: this.#term, ready }) });
  }

  // ── supervision ────────────────────────────────────────────────────────

  #onAssignment(a: Assignment, nowUs: number): void {
    const order = this.#assignments.take(a);
    if (ignoresAssignment(order)) return;
    // A repeated promoting assignment asks nothing: the retry timer asks again, with backoff. Its agent repeats it every
    // heartbeat until the acker is ready, and a request per repeat had the guest send its whole buffer 20 times a second.
    if (order === 'newer' && this.#role !== 'stopped') this.#become(a, nowUs);
    this.#sendStatus();
  }

  #become(a: Assignment, nowUs: number): void {
    const s = this.options.subjects;
    // A restored promotion keeps its handover under a newer term too: the agent went on with the same image when the
    // failover service took over again for this host mid-promotion.
    const keeps = a.role === 'primary' && ((this.#role === 'primary' && a.term === this.#term) || (this.#role === 'promoting' && this.#restored && a.term >= this.#term));
    if (!keeps) this.#reset();
    this.#role = a.role;
    this.#term = a.term;
    if (!keeps) this.#tracer = this.#newTracer();
    this.#emit({ kind: 'cancelTimer', name: TIMER_HANDOVER });
    if (a.role === 'primary') {
      this.#handover = null;
      this.subscriptions = this.options.mode === 'remus' ? this.#idleSubscriptions : [...this.#idleSubscriptions, s.tx, s.txData, s.txEpoch, this.options.wireInSubject, s.commit];
      for (const c of this.#ordered()) c.wire?.trySend(nowUs); // a restored acker resends what the client may lack
    } else if (a.role === 'promoting' && this.options.mode === 'spec') {
      this.#handover = new HandoverReceiver(a.term, this.options.specBufferBytes, this.stats);
      this.subscriptions = [...this.#idleSubscriptions, s.handover];
      this.#handoverRetryUs = this.options.handoverRetryUs;
      this.#requestHandover(nowUs, false);
    } else this.subscriptions = this.#idleSubscriptions;
  }

  /**
   * Spans of this term. A byte a promoted acker replays came in the handover
   * of its host's backup, which replicated it in the term before (a term
   * changes only when the backup takes over).
   */
  #newTracer(): HeldBytesTracer {
    const replayParent = this.#term > 1 ? { name: 'replicate' as const, term: this.#term - 1, site: this.options.host } : null;
    return new HeldBytesTracer(this.options.vmId, this.options.tracing?.sampler ?? NO_SAMPLER, this.#term, replayParent);
  }

  /**
   * Whether the wire has the timer armed. Timer names are per connection,
   * not per role, so a timer of a connection a role change forgot (#reset
   * cancels them now) reached the next role's connection of the same id:
   * taken there, it backed off an RTT that had timed nothing out.
   */
  #wireTimerArmed(deadlineUs: number | null): boolean {
    if (deadlineUs !== null) return true;
    this.stats.staleWireTimers++;
    return false;
  }

  /** Forgets the connections (and their wires' timers): a new role starts from nothing (or from a handover). */
  #reset(): void {
    this.#watch?.reset(this.#effectSink);
    for (const c of this.#ordered()) {
      if (c.wire === null) continue;
      this.#retiredWires.addEnded(c.wire.stats);
      this.#emit({ kind: 'cancelTimer', name: c.wire.rtoTimer });
      this.#emit({ kind: 'cancelTimer', name: c.wire.persistTimer });
    }
    this.#connections.clear();
    this.#lastSpecPart = null;
    this.#committedEpoch = 0;
    this.#restored = false;
    this.#handover = null;
  }

  /** Asks the guest for the backup's speculative buffers; retries back off while nothing arrives. */
  #requestHandover(nowUs: number, retry: boolean): void {
    if (this.#role !== 'promoting' || this.#restored || this.#handover === null) return; // a late firing of its timer
    if (retry) {
      this.stats.handoverRetries++;
      this.#handoverRetryUs = Math.min(this.options.handoverRetryMaxUs, this.#handoverRetryUs * 2);
    }
    const s = this.options.subjects;
    this.#emit({ kind: 'send', subject: s.handoverRequest, msg: { type: 'handoverRequest', vmId: this.options.vmId, term: this.#term, host: this.options.host } });
    this.#emit({ kind: 'setTimer', name: TIMER_HANDOVER, atUs: nowUs + this.#handoverRetryUs });
  }

  #onHandoverChunk(chunk: CheckpointChunk, nowUs: number): void {
    const receiver = this.#handover;
    // The guest answers every request, so repeats of an answer taken already are expected: nothing is waiting for them.
    if (receiver === null || this.#restored) {
      this.stats.lateHandoverChunks++;
      return;
    }
    const taken = receiver.add(chunk);
    if (taken === null) {
      // Still arriving: give it the full retry interval from now.
      this.#emit({ kind: 'setTimer', name: TIMER_HANDOVER, atUs: nowUs + this.#handoverRetryUs });
      return;
    }
    this.#take(taken);
    this.#emit({ kind: 'cancelTimer', name: TIMER_HANDOVER });
    this.#sendStatus();
  }

  #take(h: Handover): void {
    this.stats.handoversTaken++;
    this.#handover = null;
    this.#restored = true;
    // No connection on the backup yet: the guest starts it afresh.
    this.#committedEpoch = h.epoch;
    for (const connection of h.connections) this.#restore(connection);
  }

  #onMessage(subject: string, msg: WireMessage, nowUs: number): void {
    const s = this.options.subjects;
    if (msg.type === 'assignment') {
      this.#onAssignment(msg, nowUs);
      return;
    }
    if ('vmId' in msg && msg.vmId !== this.options.vmId) {
      // Misrouted or forged: another VM's commit must not release this one's output, nor its bytes enter this buffer.
      this.stats.otherVmMessages++;
      return;
    }
    if (msg.type === 'releasePermit') {
      // A permit after an expired one: deliver what waited for it.
      if (this.#permit.grant(msg) && this.#role === 'primary') for (const c of this.#ordered()) c.wire?.trySend(nowUs);
      return;
    }
    if (msg.type === 'checkpointChunk' && subject === s.handover) {
      this.#onHandoverChunk(msg, nowUs);
      return;
    }
    // A remus acker is on no data subject (the guest takes the client's segments), so a data message is not for it.
    if (this.#role !== 'primary' || this.options.mode === 'remus') {
      this.stats.notPrimaryDrops++;
      return;
    }
    if (msg.type === 'segment' && subject === this.options.wireInSubject) this.#onClientSegment(msg, nowUs);
    else if ((msg.type === 'segment' || msg.type === 'epochEnd' || msg.type === 'epochCommit') && msg.term !== this.#term) {
      // Another term's guest or checkpointer: a deposed primary, or the one that deposed us.
      this.stats.staleTermDrops++;
    } else if (msg.type === 'segment' && (subject === s.txData || subject === s.tx)) this.#onGuestSegment(msg, nowUs);
    else if (msg.type === 'epochEnd') this.#onEpochEnd(msg, nowUs);
    else if (msg.type === 'epochCommit') this.#onCommit(msg.epoch, nowUs);
    else this.stats.unexpectedMessages++;
  }

  // ── guest side ─────────────────────────────────────────────────────────

  #onGuestSegment(seg: Segment, nowUs: number): void {
    const c = this.#connection(seg.connId);
    if (c === null) return;
    if (seg.flags & TcpFlag.SYN) {
      // A repeated SYN-ACK (retransmitted, or a copy on the bus) must not reset a connection already carrying data.
      if (c.spec === null) this.#initConnection(c, seg);
      return; // the netbuffer plugs and releases the SYN-ACK
    }
    const last = c.headers[c.headers.length - 1];
    const header = { epoch: seg.epoch, ack: seg.ack, window: seg.window, tsValUs: seg.tsValUs, tsEcrUs: seg.tsEcrUs };
    // A segment overtaken on the bus carries an older header: the client must never see its ACK or timestamp go back.
    const newest = last ?? c.committedHeader;
    if (last !== undefined && last.epoch === seg.epoch) {
      if (seg.tsValUs >= last.tsValUs) c.headers[c.headers.length - 1] = header;
    } else if (newest === null || seg.epoch > newest.epoch) c.noteHeader(header);
    else if (last !== undefined) c.noteOvertakenHeader(header);
    const spec = c.spec;
    if (spec === null) {
      if (seg.payload.length > 0) this.stats.segmentsWithoutBuffer++;
      return;
    }
    if (seg.payload.length === 0) {
      // Control segments are the netbuffer's; but a zero-window probe (below what we acknowledged) is
      // answered with the current window, as a receiver must, or a lost window update stalls the guest.
      if ((seg.flags & (TcpFlag.SYN | TcpFlag.FIN)) === 0 && seg.seq < spec.endSeq) this.#sendSpecAck(c, seg.tsValUs, nowUs);
      return;
    }
    const end = seg.seq + seg.payload.length;
    let refused = false;
    if (seg.seq > spec.endSeq) {
      refused = true; // a gap: an earlier segment was lost on the bus, or refused
    } else if (end > spec.endSeq) {
      const fresh = seg.payload.subarray(spec.endSeq - seg.seq);
      if (fresh.length > spec.freeBytes) refused = true;
      else {
        // Offsets in the stream are seq − 1 (the SYN takes seq 0); the speculative ACK below covers these bytes.
        this.#tracer.received(seg.connId, spec.endSeq - 1, end - 1, true, nowUs, this.#effectSink);
        const taken = spec.appendBytes(fresh);
        assert(taken === fresh.length, () => `${fresh.length} B that fit taken as ${taken} B: the speculative ACK would cover bytes not held`);
        this.#watch?.held(seg.connId, seg.epoch, nowUs, this.#effectSink);
      }
      const used = this.specBufferBytes;
      if (used > this.stats.specBufferBytesMax) this.stats.specBufferBytesMax = used;
    }
    if (refused) this.stats.segmentsRefused++;
    // The paper's host drops what does not fit: the guest learns of it only by the ACK that does not come.
    if (refused && this.options.specWindow === 'client') return;
    this.#sendSpecAck(c, seg.tsValUs, nowUs);
    if (this.options.plantedBug === 'release-before-commit') c.wire?.trySend(nowUs);
  }

  #initConnection(c: AckerConnection, synAck: Segment): void {
    c.guestOfferedWscale = synAck.wscale !== undefined;
    c.spec = new SendBuffer(this.options.specBufferBytes, synAck.seq + 1);
    c.epochStartSeq = synAck.seq + 1;
    const wire = new TcpSender({ ...this.options.tcp, nagle: false, slowStartAfterIdle: false }, this.#wireHost(c), c.timerPrefix, synAck.seq + 1);
    c.wire = wire;
    // The guest offers SACK in its SYN-ACK only if the client's SYN did: then the client SACKs what the wire side sends.
    wire.sackEnabled = this.options.tcp.sack && synAck.sackPermitted;
    wire.resetTo(synAck.seq + 1); // recover = ISS: three duplicate ACKs for the first segment start a fast retransmit
    wire.initWindow(c.clientSynWindow, c.clientNxt - 1);
  }

  /** Speculative ACK: everything held is acknowledged; the window is the free speculative buffer, or the client's. */
  #sendSpecAck(c: AckerConnection, tsEcrUs: number, nowUs: number): void {
    this.stats.specAcksSent++;
    this.#emit({ kind: 'send', subject: this.options.subjects.rx, msg: this.#toGuest(c, this.#specAckSeq(c), tsEcrUs, nowUs) });
  }

  #specAckSeq(c: AckerConnection): number {
    return Math.max(c.spec?.endSeq ?? 0, c.wire?.sndUna ?? 0);
  }

  /** The window field the guest is offered: the free buffer (ours) or the client's window (the paper's), scaled and capped as the wire carries it. */
  #windowField(c: AckerConnection): number {
    const shift = c.clientShift;
    const offeredBytes = this.options.specWindow === 'client' ? (c.wire?.sndWnd ?? c.clientSynWindow * (1 << shift)) : (c.spec?.freeBytes ?? this.options.specBufferBytes);
    return Math.min(MAX_WINDOW_FIELD, Math.floor(offeredBytes / (1 << shift)));
  }

  #toGuest(c: AckerConnection, ack: number, tsEcrUs: number, nowUs: number, from?: Segment): Segment {
    const window = this.#windowField(c);
    c.guestRightEdge = Math.max(c.guestRightEdge, ack + window * (1 << c.clientShift));
    return {
      type: 'segment',
      vmId: this.options.vmId,
      term: this.#term,
      epoch: 0,
      connId: c.connId,
      seq: from?.seq ?? c.clientNxt,
      ack,
      window,
      flags: (from?.flags ?? 0) | TcpFlag.ACK,
      payload: from?.payload ?? EMPTY,
      mss: 0,
      wscale: undefined,
      sackPermitted: false,
      sackBlocks: NO_SACK_BLOCKS, // the client's blocks are about bytes the guest has had acknowledged already
      tsValUs: from?.tsValUs ?? nowUs,
      tsEcrUs,
      speculative: from === undefined,
    };
  }

  #onEpochEnd(end: EpochEnd, nowUs: number): void {
    const last = this.#lastSpecPart;
    if (last !== null && end.epoch <= last.epoch) {
      if (end.epoch < last.epoch) {
        this.stats.staleEpochEnds++;
        return;
      }
      this.stats.epochEndsRepeated++;
      if (end.specStaged) return; // the checkpointer has this part: the repeat is for another
      if (end.local && !end.base) return; // the checkpointer wants no part of an epoch no backup receives
      if (!this.#specPartRepeats.tryRepeat(nowUs)) {
        this.stats.epochEndRepeatsTooSoon++;
        return;
      }
      for (const chunk of last.chunks) this.#emit({ kind: 'send', subject: this.options.subjects.ckptStage, msg: chunk });
      return;
    }
    const deltas: SpecDelta[] = [];
    const endOffsets: number[] = [];
    const ranges = [];
    const replicate = this.options.plantedBug !== 'spec-buffer-not-replicated';
    for (const c of this.#ordered()) {
      const spec = c.spec;
      if (spec === null) {
        // The client's SYN came, the guest's SYN-ACK not yet (or after this marker): its options go along, for a
        // promoted acker that opens the connection from the SYN-ACK the restored guest repeats.
        if (c.clientNxt > 0) deltas.push({ startSeq: 0, clientAckSeq: 0, connection: c.state(end.epoch), bytes: EMPTY });
        continue;
      }
      // The guest runs the next epoch while this marker travels: bytes it sent after it may be here already (a delayed
      // marker), and they belong to the next checkpoint. txEndSeqs says where this epoch's bytes end.
      const guestEndSeq = end.txEndSeqs[c.connId - 1];
      if (guestEndSeq === undefined) this.stats.epochEndsMissingConnections++;
      const endSeq = Math.max(Math.min(spec.endSeq, guestEndSeq ?? 0), c.epochStartSeq);
      c.noteEpochEnd(end.epoch, endSeq);
      endOffsets[c.connId - 1] = endSeq - 1;
      // A new backup's first epoch carries the whole buffer: it has nothing to add a delta to.
      const startSeq = end.base ? spec.startSeq : c.epochStartSeq;
      // Views of the buffer: encoded below, before anything moves it.
      const bytes = endSeq > startSeq && replicate ? spec.views(startSeq, endSeq - startSeq) : EMPTY;
      const clientAckSeq = c.wire?.sndUna ?? 0;
      c.epochStartSeq = endSeq;
      deltas.push({ startSeq, clientAckSeq, connection: c.state(end.epoch), bytes });
      ranges.push({ buffer: spec, startSeq: clientAckSeq, endSeq });
    }
    this.#tracer.epochEnded(end.epoch, Array.from(endOffsets, (o) => o ?? 0), nowUs, this.#effectSink);
    const part = encodeSpecDeltaChunks(deltas.length > 0 ? deltas : [{ startSeq: 0, clientAckSeq: 0, connection: null, bytes: EMPTY }], this.options.chunkBytes);
    const chunks = makeChunks({ vmId: this.options.vmId, term: end.term, epoch: end.epoch }, ChunkSource.SPEC, part);
    this.#lastSpecPart = { epoch: end.epoch, chunks };
    this.#specPartRepeats.sent(nowUs, chunks.reduce((n, c) => n + c.data.length, 0));
    if (this.options.recordDigests) this.digests.set(end.epoch, specBuffersDigest(ranges));
    if (end.local && !end.base) {
      // No backup receives this epoch: the part is kept, as any, and goes only if a repeat asks for it in full (a
      // barrier wrongly marked local), so that the next delta still starts where this one ends.
      this.stats.localEpochEnds++;
      return;
    }
    for (const chunk of chunks) this.#emit({ kind: 'send', subject: this.options.subjects.ckptStage, msg: chunk });
  }

  #onCommit(epoch: number, nowUs: number): void {
    if (epoch <= this.#committedEpoch) {
      this.stats.staleCommits++;
      return;
    }
    this.#committedEpoch = epoch;
    this.#watch?.committed(epoch);
    for (const c of this.#connections.values()) {
      while (c.epochEnds.length > 0 && c.epochEnds[0]!.epoch <= epoch) c.committedSeq = Math.max(c.committedSeq, c.epochEnds.shift()!.endSeq);
      while (c.headers.length > 0 && c.headers[0]!.epoch <= epoch) c.committedHeader = c.headers.shift()!;
    }
    this.#tracer.committed(epoch, nowUs, this.#effectSink);
    for (const c of this.#ordered()) c.wire?.trySend(nowUs);
  }

  // ── wire side ──────────────────────────────────────────────────────────

  #onClientSegment(seg: Segment, nowUs: number): void {
    const s = this.options.subjects;
    const c = this.#connection(seg.connId);
    if (c === null) return;
    if (seg.flags & TcpFlag.SYN) {
      // A late copy of the client's SYN (retransmitted, or repeated on the bus) must not take the connection's state
      // back: the options are the first SYN's, and the next sequence number only grows.
      if (c.spec === null) {
        c.clientWscale = seg.wscale;
        c.clientSynWindow = seg.window;
      } else this.stats.duplicateClientSyns++;
      c.clientNxt = Math.max(c.clientNxt, seg.seq + 1);
      this.stats.segmentsForwarded++;
      this.#emit({ kind: 'send', subject: s.rx, msg: { ...seg, term: this.#term } }); // the guest's own handshake
      return;
    }
    if (c.spec === null && this.#handover === null) {
      // The guest's SYN-ACK has not reached us: lost on the bus, or overtaken by the marker of its epoch, while the
      // netbuffer released it to the client. Let through, the client's ACK would complete a handshake whose bytes have
      // no buffer here, and an image with the connection open would come with no part of it for a promoted acker (vopr
      // seed 101858: no byte left the promoted host again). Held back, it leaves the guest in SYN-RECEIVED: it sends its
      // SYN-ACK again, to us too, and the client answers that with its ACK.
      this.stats.clientSegmentsBeforeSynAck++;
      return;
    }
    const fin = seg.flags & TcpFlag.FIN ? 1 : 0;
    c.clientNxt = Math.max(c.clientNxt, seg.seq + seg.payload.length + fin);
    const wire = c.wire;
    if (wire !== null && seg.flags & TcpFlag.ACK) {
      const shift = c.clientShift;
      const rttSampleUs = c.rttSampler.acked(seg.ack, nowUs);
      // A FIN the netbuffer released is acknowledged beyond the wire sender's data.
      const ack = Math.min(seg.ack, wire.sndMax);
      wire.onAck({ seq: seg.seq, ack, windowBytes: seg.window * (1 << shift), carriesData: seg.payload.length > 0 || fin === 1, rttSampleUs, sackBlocks: seg.sackBlocks, echoedSentAtUs: null }, nowUs);
      this.#specOf(c).release(wire.sndUna);
      wire.trySend(nowUs);
    }
    const ackForGuest = Math.max(seg.ack, this.#specAckSeq(c));
    // A window update: enough buffer freed (ours), or the client's window moved the right edge the guest knows (the
    // paper's). Judged by the window the guest would be sent, capped and scaled: a free buffer beyond the largest
    // window the field carries (16 MiB against 8 MiB at the client's scale of 7) made every client ACK an "update"
    // with the same window and ACK, which the guest counts as duplicates, and three of them before the next
    // speculative ACK were a spurious fast retransmit (spec at 1 Gbit/s: 926 → 16 Mbit/s with 5 ms of bus jitter).
    const rightEdgeOffered = ackForGuest + this.#windowField(c) * (1 << c.clientShift);
    const windowUpdate =
      this.options.specWindow === 'buffer'
        ? c.spec !== null && rightEdgeOffered - c.guestRightEdge >= Math.min(this.options.specBufferBytes / 2, 64 * 1024)
        : wire !== null && rightEdgeOffered > c.guestRightEdge;
    // The guest has sent nothing past its SYN-ACK: it waits in SYN-RECEIVED for the client's ACK, which the bus may have
    // lost on its way (the guest then repeats its SYN-ACK and the client its ACK): every one goes to it, or the handshake never ends.
    const guestSynReceived = c.headers.length === 0 && c.committedHeader === null;
    if (seg.payload.length > 0 || fin === 1 || seg.ack > this.#specAckSeq(c) || windowUpdate || c.spec === null || guestSynReceived) {
      this.stats.segmentsForwarded++;
      this.#emit({ kind: 'send', subject: s.rx, msg: this.#toGuest(c, ackForGuest, 0, nowUs, seg) });
    }
  }

  #wireHost(c: AckerConnection) {
    return {
      dataEndSeq: () => {
        const end = this.options.plantedBug === 'release-before-commit' ? (c.spec?.endSeq ?? 0) : c.committedSeq;
        // Committed bytes go out under a committed guest header; none yet (only a forged epoch's header was kept), none go.
        if (c.committedHeader === null && this.options.plantedBug !== 'release-before-commit') return Math.min(end, c.wire?.sndNxt ?? 0);
        // Without a permit nothing new leaves: the sender must not count as sent what never left.
        return this.#permit.allows(this.#term, this.#nowUs) ? end : Math.min(end, c.wire?.sndNxt ?? 0);
      },
      emitData: (seq: number, len: number, retransmit: boolean, nowUs: number) => {
        const header = this.options.plantedBug === 'release-before-commit' ? (c.headers[c.headers.length - 1] ?? c.committedHeader) : c.committedHeader;
        assert(header !== null, () => `committed data at ${seq} of connection ${c.connId} without a committed guest header`);
        // Output commit, where output leaves: no byte past what the backup holds.
        assert(this.options.plantedBug === 'release-before-commit' || seq + len <= c.committedSeq, () => `connection ${c.connId} sends [${seq}, ${seq + len}) past its committed ${c.committedSeq}`);
        c.rttSampler.sent(seq, len, retransmit, nowUs);
        if (!this.#permitted(nowUs)) return;
        const seg = this.#wireSegment(c, header, seq, len);
        this.#nic?.sent(seg, nowUs);
        this.#emit({ kind: 'send', subject: this.options.wireOutSubject, msg: seg });
        this.#tracer.sent(c.connId, seq - 1, seq - 1 + len, retransmit ? (c.wire?.lastResendCause ?? 'resend') : null, nowUs, this.#effectSink);
      },
      emitFin: () => undefined, // the guest's FIN travels through the netbuffer
      emitProbe: (nowUs: number) => {
        const header = c.committedHeader;
        if (header !== null && this.#permitted(nowUs)) this.#emit({ kind: 'send', subject: this.options.wireOutSubject, msg: this.#wireSegment(c, header, c.wire!.sndUna - 1, 0) });
      },
      setTimer: (name: string, atUs: number) => this.#emit({ kind: 'setTimer', name, atUs }),
      cancelTimer: (name: string) => this.#emit({ kind: 'cancelTimer', name }),
      ...(this.#nic !== null ? { mayTransmit: (payloadBytes: number, nowUs: number) => this.#nic!.admits(c.connId, payloadBytes, nowUs, this.#wakeOnNicRoom) } : {}),
    };
  }

  /** Output sent at an earlier step leaves only while the permit it was sent under lasts: past it, it is lost as on the wire, and the wire sender retransmits it. */
  mayStillSend(subject: string, nowUs: number): boolean {
    return subject !== this.options.wireOutSubject || this.#permit.allows(this.#term, nowUs);
  }

  /** Output may leave now (the release permit lasts); a send held back is retransmitted by the wire sender. */
  #permitted(nowUs: number): boolean {
    if (this.#permit.allows(this.#term, nowUs)) return true;
    this.stats.sendsWithoutPermit++;
    return false;
  }

  /** The connection's speculative buffer: there is one wherever committed data is sent from. */
  #specOf(c: AckerConnection): SendBuffer {
    assert(c.spec !== null, () => `connection ${c.connId} sends to the client without a speculative buffer`);
    return c.spec;
  }

  /** A segment of committed data, carrying the latest committed guest header (never an uncommitted ACK). */
  #wireSegment(c: AckerConnection, header: GuestHeader, seq: number, len: number): Segment {
    return {
      type: 'segment',
      vmId: this.options.vmId,
      term: this.#term,
      epoch: header.epoch,
      connId: c.connId,
      seq,
      ack: header.ack,
      window: header.window,
      flags: TcpFlag.ACK | (seq + len === c.committedSeq ? TcpFlag.PSH : 0),
      payload: len > 0 ? this.#specOf(c).view(seq, len) : EMPTY,
      mss: 0,
      wscale: undefined,
      sackPermitted: false,
      sackBlocks: NO_SACK_BLOCKS,
      tsValUs: header.tsValUs,
      tsEcrUs: header.tsEcrUs,
      speculative: false,
    };
  }
}
