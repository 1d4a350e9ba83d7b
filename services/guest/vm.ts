import { assert } from '../../lib/assert.js';
import { RepeatGate } from '../../lib/checkpoint/repeat-gate.js';
import { SnapshotError } from '../../lib/errors.js';
import { ChunkSource, hasSource, type CheckpointChunk, type EpochBarrier, type EpochEnd, type Segment } from '../../lib/codec/messages.js';
import { PagedMemory } from '../../lib/memory/paged-memory.js';
import type { Rng } from '../../lib/rng.js';
import type { Effect, Input } from '../../lib/runtime/types.js';
import type { TcpOptions, TcpStats } from '../../lib/tcp/index.js';
import { US_PER_S } from '../../lib/units.js';
import { CheckpointCapture } from './checkpoint-capture.js';
import { PlugNic } from './plug-nic.js';
import { LocalNic, type LocalNicOptions } from '../../lib/link/local-nic.js';
import { GuestConnection, type ConnectionAppState } from './connection.js';
import { parseGuestState, type SerializedGuestState } from './guest-state.js';
import { connectionWorkloads, REQUEST_BUFFER_BYTES, type Workload } from './workload/workload.js';
import { EmitTracer } from '../../lib/tracing/endpoints.js';
import type { TracingOptions } from '../../lib/tracing/options.js';
import { NO_SAMPLER } from '../../lib/tracing/sampling.js';

/** The application's memory-dirtying tick. */
const APP_TICK_US = 1000;
/** Bytes the application changes in a page it dirties (a counter, a record). */
const APP_WRITE_BYTES = 64;
/** Inputs queued while paused; beyond it a paused NIC drops (TCP recovers). */
export const PAUSED_INBOX_MAX = 65_536;

const TIMER_APP = 'app.dirty';
/** The local NIC has drained enough for a sender it turned away. */
const TIMER_NIC_ROOM = 'nic.room';
/** The end of a pause: the checkpoint's copy into the staging buffer is done. */
const TIMER_RESUME = 'guest.resume';
const TCP_TIMER_PREFIX = 'tcp';

export interface GuestReplication {
  readonly txEpochSubject: string;
  readonly ckptStageSubject: string;
  readonly chunkBytes: number;
  readonly pageDelta: boolean;
  /** Re-protection: base-image pages a new backup receives per epoch. */
  readonly seedPagesPerEpoch: number;
  /** The pause: a fixed cost (suspend, resume) plus copying the checkpoint's parts into the staging buffer at this speed. */
  readonly pauseFixedUs: number;
  readonly copyBytesPerSec: number;
  readonly recordDigests: boolean;
  /** A repeated barrier sends this epoch's parts again at most once per this gap (RepeatGate; the EpochEnd always goes). */
  readonly partRepeatGapUs: number;
  /** The replication link's rate, bytes/s: a repeat is answered no sooner than twice the time it takes to carry the parts (RepeatGate; 0: no link time). */
  readonly replicationBytesPerSec: number;
}

export interface GuestVmOptions {
  readonly vmId: string;
  /** Which packets' emits to report as spans, and whether to report each epoch's copy (docs/tracing.md). */
  readonly tracing?: TracingOptions;
  readonly seed: number;
  readonly tcp: TcpOptions;
  /**
   * Speculative modes: the guest's virtual NIC offloads segmentation (TSO/GSO,
   * as virtio-net and Xen's netfront offer): new data leaves in segments of up
   * to this many bytes, which the acker takes whole and sends on the wire as
   * MSS-sized ones. Absent: one MSS per segment (the guest's segments meet the
   * link as they are).
   */
  readonly tsoBytes?: number;
  readonly workload: Workload;
  /** Where the guest's segments go (the wire in native mode). */
  readonly txSubject: string;
  /** Where segments that carry data go, when not to `txSubject` (speculative modes: the acker alone owns data). */
  readonly txDataSubject?: string;
  /** Where segments for the guest arrive. */
  readonly rxSubject: string;
  /**
   * The segments on `rxSubject` are the client's own (native, remus): they
   * carry no fencing term. Otherwise an acker stamps its term on each, and
   * the guest drops another term's.
   */
  readonly rxFromClient?: boolean;
  readonly memoryBytes: number;
  readonly appDirtyPagesPerSec: number;
  /** Randomness of the application's memory writes. */
  readonly rng: Rng;
  /** Absent in native mode. */
  readonly replication?: GuestReplication;
  /** remus with a plug that pushes back: the NIC holds what does not fit until a commit (PlugNic); absent: it sends at once. */
  readonly plugBackpressure?: { readonly limitBytes: number; readonly maxQueuedSegments: number };
  /** native: the guest's own NIC at the head of its client link, which pushes back rather than drops (LocalNic); absent: segments meet the link's queue as they are. */
  readonly localNic?: LocalNicOptions;
}

/**
 * What a checkpoint carries besides memory pages. Connection 1 is in `tcp`
 * and `app` (the shape a guest of one connection has always had, byte for
 * byte); further connections, in id order, in `more`.
 */
export interface GuestStats {
  /** Summed over the connections. */
  bytesWritten: number;
  requestsServed: number;
  requestBytesReceived: number;
  requestStreamVerified: boolean;
  /** Segments for a connection this guest does not have, dropped. */
  unknownConnectionDrops: number;
  /** Messages of a type its subjects never carry to it (the codec decodes each subject as its own type: only a bug gets here), dropped. */
  unexpectedMessages: number;
  pausedUsTotal: number;
  inputsDroppedWhilePaused: number;
  staleTermDrops: number;
  /** Pause barriers repeated for the epoch paused in (the checkpointer lacked a part): answered again. */
  checkpointsResent: number;
  /** Of those, repeats within partRepeatGapUs of the parts' last sending (queued while something stalled): the EpochEnd alone went again. */
  checkpointRepeatsTooSoon: number;
  /** Resumes inferred from the next epoch's pause barrier (the copy's timer came late). */
  impliedResumes: number;
  /** Pause barriers of an epoch before the running one (late copies on the bus), dropped. */
  staleBarriers: number;
  /** Pause barriers of an epoch after the running one: the checkpointer and the guest disagree on the epoch (never in the protocol; a forgery), dropped. */
  futureBarriers: number;
}

/** No backup receives this epoch (the primary is unprotected): a base never is. */
const isLocal = (barrier: EpochBarrier): boolean => barrier.local && !barrier.base;

/** Whether the checkpointer asked for this part: of a local epoch only the state, the sign that the guest has ended it. */
const wanted = (chunk: CheckpointChunk, barrier: EpochBarrier): boolean => !isLocal(barrier) || chunk.source === ChunkSource.STATE;

/**
 * The protected machine: paged memory with dirty tracking, TCP server
 * connections whose send rings live in that memory, a workload on each (one
 * connection, or a bulk and a request/response one), and (when replicated)
 * the stop-and-copy of each epoch. While paused it runs nothing: inputs wait
 * in a bounded inbox and timers fire late, as in a suspended VM.
 *
 * It keeps its own clock: the host's plus an offset that a restore sets, so
 * that a guest restored on a host whose clock reads less never sees its time
 * go back (a hypervisor keeps a guest's clock monotonic across hosts).
 */
export class GuestVm {
  /** By connection id − 1. */
  readonly connections: readonly GuestConnection[];
  readonly memory: PagedMemory;
  readonly capture: CheckpointCapture | null;
  readonly stats: GuestStats = { bytesWritten: 0, requestsServed: 0, requestBytesReceived: 0, requestStreamVerified: true, unknownConnectionDrops: 0, unexpectedMessages: 0, pausedUsTotal: 0, inputsDroppedWhilePaused: 0, staleTermDrops: 0, checkpointsResent: 0, checkpointRepeatsTooSoon: 0, impliedResumes: 0, staleBarriers: 0, futureBarriers: 0 };
  readonly #out: Effect[][] = [];
  readonly #requestBase: number;
  readonly #heapBase: number;
  #nowUs = 0;
  #epoch = 1;
  #term = 0;
  #paused = false;
  #pausedAtUs = 0;
  /** The root spans of sampled bytes' traces (docs/tracing.md). */
  readonly #emitTracer: EmitTracer;
  readonly #spanSink = { push: (e: Effect) => this.#emit(e) };
  #inbox: Input[] = [];
  #dirtyCarry = 0;
  /** The application's record, reused: a fresh typed array per write whose buffer is read costs more than the write. */
  readonly #appRecord = new DataView(new ArrayBuffer(APP_WRITE_BYTES));
  readonly #appRecordBytes = new Uint8Array(this.#appRecord.buffer);
  #appCounter = 0;
  /** Restored from a checkpoint: start resumes the connection instead of listening. */
  #restored = false;
  /** What the last checkpoint sent, kept until the next pause: a repeated barrier gets its missing parts again. */
  #lastCheckpoint: { end: EpochEnd; chunks: CheckpointChunk[] } | null = null;
  readonly #partRepeats: RepeatGate;
  /** Guest clock = host clock + this (µs); set by a restore, never negative. */
  #clockOffsetUs = 0;
  /** The NIC in front of a plug that pushes back; null: segments go at once. */
  readonly plugNic: PlugNic | null;
  /** native: the NIC that pushes back; null: segments go at once. */
  readonly localNic: LocalNic | null;
  readonly #wakeOnNicRoom = (atUs: number) => this.#setTimer(TIMER_NIC_ROOM, atUs);
  readonly #sendToPlug = (seg: Segment) => this.#emit({ kind: 'send', subject: this.options.txSubject, msg: seg });

  /** `memory`: a backup image to run from (restore() then sets the state); a fresh, empty one by default. */
  constructor(
    readonly options: GuestVmOptions,
    memory?: PagedMemory,
  ) {
    const r = options.replication;
    this.#partRepeats = new RepeatGate(r?.partRepeatGapUs ?? 0, r?.replicationBytesPerSec ?? 0); // unused without replication
    this.memory = memory ?? new PagedMemory(options.memoryBytes);
    assert(this.memory.sizeBytes === options.memoryBytes, () => `a ${this.memory.sizeBytes} B image for a ${options.memoryBytes} B guest`);
    this.memory.takeDirtyPages(); // what the image holds is on the backup already
    const workloads = connectionWorkloads(options.workload);
    // One send ring per connection from address 0, then the request buffer, then the application's heap.
    this.#requestBase = workloads.length * options.tcp.sndBufBytes;
    this.#heapBase = this.#requestBase + REQUEST_BUFFER_BYTES;
    this.#emitTracer = new EmitTracer(options.vmId, options.tracing?.sampler ?? NO_SAMPLER);
    assert(this.#heapBase < options.memoryBytes, () => `guest memory ${options.memoryBytes} B cannot hold ${workloads.length} send rings of ${options.tcp.sndBufBytes} B and a request buffer`);
    this.plugNic = options.plugBackpressure ? new PlugNic(options.plugBackpressure.limitBytes, options.plugBackpressure.maxQueuedSegments) : null;
    this.localNic = options.localNic ? new LocalNic(options.localNic) : null;
    assert(this.localNic === null || (this.plugNic === null && r === undefined), 'a local NIC is the native guest\'s alone');
    this.capture = r ? new CheckpointCapture(this.memory, { vmId: options.vmId, chunkBytes: r.chunkBytes, pageDelta: r.pageDelta, seedPagesPerEpoch: r.seedPagesPerEpoch, recordDigests: r.recordDigests }) : null;
    this.connections = workloads.map((workload, i) => this.#newConnection(i + 1, workload));
    this.#setEpoch(this.#epoch);
  }

  #newConnection(connId: number, workload: GuestConnection['options']['workload']): GuestConnection {
    const options = this.options;
    const ringBase = (connId - 1) * options.tcp.sndBufBytes;
    const ring = { bytes: this.memory.region(ringBase, options.tcp.sndBufBytes), markDirty: (offset: number, len: number) => this.memory.markDirty(ringBase + offset, len) };
    const connection: GuestConnection = new GuestConnection(
      { vmId: options.vmId, seed: options.seed, connId, tcp: options.tcp, ...(options.tsoBytes !== undefined ? { tsoBytes: options.tsoBytes } : {}), workload, timerPrefix: connId === 1 ? TCP_TIMER_PREFIX : `${TCP_TIMER_PREFIX}${connId}` },
      {
        transmit: (seg, retransmit) => {
          this.localNic?.sent(seg, this.#nowUs);
          if (this.plugNic !== null) this.plugNic.transmit(seg, this.#sendToPlug);
          else this.#emit({ kind: 'send', subject: seg.payload.length > 0 ? (options.txDataSubject ?? options.txSubject) : options.txSubject, msg: seg });
          if (seg.payload.length > 0) this.#emitTracer.sent(seg.term, seg.connId, seg.seq - 1, seg.seq - 1 + seg.payload.length, seg.epoch, retransmit ? (connection.tcp.sender.lastResendCause ?? 'resend') : null, this.#nowUs, this.#spanSink);
        },
        setTimer: (name, atUs) => this.#emit({ kind: 'setTimer', name, atUs: atUs - this.#clockOffsetUs }),
        cancelTimer: (name) => this.#emit({ kind: 'cancelTimer', name }),
        peerClosed: () => undefined,
        ...(this.localNic !== null ? { mayTransmit: (payloadBytes: number) => this.localNic!.admits(connId, payloadBytes, this.#nowUs, this.#wakeOnNicRoom) } : {}),
      },
      ring,
      (chunk, streamOffset) => this.#storeRequest(chunk, streamOffset),
      () => this.#nowUs,
    );
    return connection;
  }

  /** The fencing term stamped on every segment. */
  get term(): number {
    return this.#term;
  }
  set term(term: number) {
    this.#term = term;
    for (const c of this.connections) c.tcp.term = term;
  }

  #setEpoch(epoch: number): void {
    this.#epoch = epoch;
    for (const c of this.connections) c.tcp.epoch = epoch;
  }

  /** The TCP counters of every connection, summed (one connection's own object when it has one). */
  get tcp(): { readonly stats: TcpStats } {
    if (this.connections.length === 1) return this.connections[0]!.tcp;
    const stats: TcpStats = { segmentsSent: 0, retransmits: 0, fastRetransmits: 0, timeouts: 0, dupAcksReceived: 0, bytesAcked: 0, timeoutsUndone: 0, slowStartExits: 0, slowStartExitCwndBytesTotal: 0, acksAboveSndMax: 0, lossProbes: 0, lossProbeRecoveries: 0, segmentsOutOfState: 0 };
    for (const c of this.connections) for (const key of Object.keys(stats) as (keyof TcpStats)[]) stats[key] += c.tcp.stats[key];
    return { stats };
  }

  get epoch(): number {
    return this.#epoch;
  }
  get paused(): boolean {
    return this.#paused;
  }

  /** Every timer this VM may have set (a service dropping it cancels them). */
  timerNames(): string[] {
    return [TIMER_APP, TIMER_RESUME, TIMER_NIC_ROOM, ...this.connections.flatMap((c) => c.timerNames())];
  }

  /** Per connection (by id − 1): the highest sequence number sent + 1. */
  get txEndSeqs(): number[] {
    return this.connections.map((c) => c.tcp.sndMax);
  }

  /** Runs one input at host time `nowUs`. */
  handle(input: Input, nowUs: number): Effect[] {
    const effects: Effect[] = [];
    this.#out.push(effects);
    this.#nowUs = nowUs + this.#clockOffsetUs;
    try {
      if (input.kind === 'message' && input.msg.type === 'epochBarrier') this.#onBarrier(input.msg);
      else if (input.kind === 'timer' && input.name === TIMER_RESUME) this.#onResumeTimer();
      else if (input.kind === 'connection') return effects; // the guest's TCP knows no bus
      else if (this.#paused) this.#defer(input);
      else this.#run(input);
    } finally {
      this.#out.pop();
      this.#sumStats();
    }
    return effects;
  }

  /** The application counters in `stats`, summed over the connections (plain numbers: a retired VM's stats outlive it). */
  #sumStats(): void {
    const s = this.stats;
    s.bytesWritten = s.requestsServed = s.requestBytesReceived = 0;
    s.requestStreamVerified = true;
    for (const c of this.connections) {
      s.bytesWritten += c.app.bytesWritten;
      s.requestsServed += c.app.requestsServed;
      s.requestBytesReceived += c.app.requestBytesReceived;
      s.requestStreamVerified &&= c.requestStreamVerified;
    }
  }

  #run(input: Input): void {
    switch (input.kind) {
      case 'start':
        for (const c of this.connections) {
          if (this.#restored) {
            c.tcp.resumeTimers(this.#nowUs);
            c.tcp.acknowledgeNow(this.#nowUs);
          } else c.tcp.listen();
        }
        if (this.options.appDirtyPagesPerSec > 0) this.#setTimer(TIMER_APP, this.#nowUs + APP_TICK_US);
        break;
      case 'message': {
        if (input.msg.type === 'epochCommit' && this.plugNic !== null) {
          if (input.msg.term === this.#term) this.plugNic.committed(input.msg.epoch, this.#epoch, this.#sendToPlug);
          else this.stats.staleTermDrops++;
          break;
        }
        if (input.msg.type !== 'segment') {
          this.stats.unexpectedMessages++;
          break;
        }
        const connection = this.connections[input.msg.connId - 1];
        if (this.options.rxFromClient !== true && input.msg.term !== this.#term) this.stats.staleTermDrops++; // another term's acker
        else if (connection === undefined) this.stats.unknownConnectionDrops++;
        else connection.tcp.onSegment(input.msg, this.#nowUs);
        break;
      }
      case 'timer':
        if (input.name === TIMER_APP) this.#dirtyAppPages();
        else if (input.name === TIMER_NIC_ROOM) this.#onNicRoom();
        else for (const c of this.connections) if (c.tcp.onTimer(input.name, this.#nowUs)) break;
        break;
    }
  }

  #onNicRoom(): void {
    this.localNic?.woken();
    for (const c of this.connections) c.tcp.nicHasRoom(this.#nowUs);
  }

  #defer(input: Input): void {
    if (this.#inbox.length >= PAUSED_INBOX_MAX && input.kind === 'message') {
      this.stats.inputsDroppedWhilePaused++;
      return;
    }
    this.#inbox.push(input);
  }

  #onBarrier(barrier: EpochBarrier): void {
    const r = this.options.replication;
    if (r === undefined || this.capture === null) return;
    if (barrier.term !== this.#term) {
      this.stats.staleTermDrops++; // another term's checkpointer
      return;
    }
    if (barrier.epoch === this.#lastCheckpoint?.end.epoch) {
      this.#resendCheckpoint(r, barrier); // a part of it was lost on the way
      return;
    }
    // The checkpointer pauses epoch N + 1 only once N is staged, long after N's copy ended: this resume is late.
    if (this.#paused && barrier.epoch === this.#epoch + 1) {
      this.stats.impliedResumes++;
      this.#emit({ kind: 'cancelTimer', name: TIMER_RESUME });
      this.#resume();
    }
    if (barrier.epoch < this.#epoch) {
      this.stats.staleBarriers++;
      return;
    }
    if (barrier.epoch > this.#epoch) {
      this.stats.futureBarriers++;
      return;
    }
    // Paused in this epoch, its barrier was answered above (a resend): a pause runs here only from running.
    assert(!this.#paused, () => `barrier of epoch ${barrier.epoch} while paused in it, not answered as a repeat`);
    this.#paused = true;
    this.#pausedAtUs = this.#nowUs;
    if (barrier.base) this.capture.startBase();
    const local = isLocal(barrier);
    // Every segment of this epoch was published before this marker, on the same connection.
    const end: EpochEnd = { type: 'epochEnd', vmId: this.options.vmId, term: barrier.term, epoch: this.#epoch, txEndSeqs: this.txEndSeqs, base: barrier.base, specStaged: false, local };
    // Captured in full even when no backup receives it: a barrier wrongly marked local then costs a repeat, not the pages.
    const chunks = this.capture.capture(barrier.term, this.#epoch, this.#serializeState());
    this.#lastCheckpoint = { end, chunks };
    this.#emit({ kind: 'send', subject: r.txEpochSubject, msg: end });
    let bytes = 0;
    let sentBytes = 0;
    for (const chunk of chunks) {
      bytes += chunk.data.length;
      if (!wanted(chunk, barrier)) continue;
      sentBytes += chunk.data.length;
      this.#emit({ kind: 'send', subject: r.ckptStageSubject, msg: chunk });
    }
    this.#partRepeats.sent(this.#nowUs, sentBytes);
    // Remus: paused while the dirty state is copied into the staging buffer; the next epoch runs while it travels.
    const copyUs = Math.ceil((bytes * US_PER_S) / r.copyBytesPerSec);
    this.#setTimer(TIMER_RESUME, this.#nowUs + r.pauseFixedUs + copyUs);
  }

  #onResumeTimer(): void {
    if (!this.#paused) return; // resumed already: the next barrier implied it
    this.#resume();
  }

  /**
   * The EpochEnd and parts of the last checkpoint again, byte for byte, but
   * for the parts the checkpointer holds in full (`stagedSources`): the acker
   * and the checkpointer take repeats as no-ops. The EpochEnd always goes (it
   * is small, and the netbuffer's may be the one lost); it tells the acker
   * whether its part is wanted.
   */
  #resendCheckpoint(r: GuestReplication, barrier: EpochBarrier): void {
    const stagedSources = barrier.stagedSources;
    const sent = this.#lastCheckpoint;
    if (sent === null) return;
    this.stats.checkpointsResent++;
    this.#emit({ kind: 'send', subject: r.txEpochSubject, msg: { ...sent.end, specStaged: hasSource(stagedSources, ChunkSource.SPEC), local: isLocal(barrier) } });
    if (!this.#partRepeats.tryRepeat(this.#nowUs)) {
      this.stats.checkpointRepeatsTooSoon++;
      return;
    }
    for (const chunk of sent.chunks) if (!hasSource(stagedSources, chunk.source) && wanted(chunk, barrier)) this.#emit({ kind: 'send', subject: r.ckptStageSubject, msg: chunk });
  }

  #resume(): void {
    this.#paused = false;
    this.stats.pausedUsTotal += this.#nowUs - this.#pausedAtUs;
    if (this.options.tracing?.epochs === true) {
      this.#emit({ kind: 'span', span: { trace: { kind: 'epoch', vmId: this.options.vmId, epoch: this.#epoch }, name: 'copy', term: this.#term, parent: { name: 'pause', term: this.#term }, startUs: this.#pausedAtUs, endUs: this.#nowUs } });
    }
    this.#setEpoch(this.#epoch + 1);
    const inbox = this.#inbox;
    this.#inbox = [];
    for (const input of inbox) this.#run(input);
  }

  /**
   * Becomes the guest the backup holds: its memory is the image (given to
   * the constructor), this is the state of the same checkpoint, running
   * under the new fencing term from host time `nowUs`. Whatever the old
   * primary did after that checkpoint never left the host, so the guest
   * simply continues from here.
   */
  restore(stateBlob: Uint8Array, term: number, nowUs: number): void {
    const state = parseGuestState(stateBlob);
    const connections = [{ tcp: state.tcp, app: state.app }, ...(state.more ?? [])];
    if (connections.length !== this.connections.length) throw new SnapshotError(`a checkpoint of ${connections.length} connections for a guest of ${this.connections.length}`);
    this.#clockOffsetUs = Math.max(0, state.clockUs - nowUs);
    connections.forEach((saved, i) => {
      const c = this.connections[i]!;
      c.tcp.restore(saved.tcp);
      c.restoreApp({ bytesWritten: saved.app.bytesWritten, requestBytesReceived: saved.app.requestBytesReceived, requestsServed: saved.app.requestsServed, responseBacklogBytes: saved.app.responseBacklogBytes });
    });
    this.#setEpoch(state.epoch + 1);
    this.term = term;
    this.#appCounter = state.app.appCounter;
    this.#restored = true;
    this.#sumStats();
  }

  /** Device, TCP and application state: everything outside memory pages. */
  #serializeState(): Uint8Array {
    const [first, ...others] = this.connections;
    const appOf = (c: GuestConnection): ConnectionAppState => ({ bytesWritten: c.app.bytesWritten, requestBytesReceived: c.app.requestBytesReceived, requestsServed: c.app.requestsServed, responseBacklogBytes: c.app.responseBacklogBytes });
    const state: SerializedGuestState = {
      epoch: this.#epoch,
      clockUs: this.#nowUs,
      tcp: first!.tcp.snapshot(),
      app: { ...appOf(first!), appCounter: this.#appCounter },
      ...(others.length > 0 ? { more: others.map((c) => ({ tcp: c.tcp.snapshot(), app: appOf(c) })) } : {}),
    };
    return new TextEncoder().encode(JSON.stringify(state));
  }

  #dirtyAppPages(): void {
    this.#dirtyCarry += (this.options.appDirtyPagesPerSec * APP_TICK_US) / 1e6;
    const heapPages = Math.floor((this.options.memoryBytes - this.#heapBase) / 4096);
    while (this.#dirtyCarry >= 1 && heapPages > 0) {
      this.#dirtyCarry -= 1;
      const page = this.options.rng.int(heapPages);
      const offset = this.options.rng.int(4096 / APP_WRITE_BYTES) * APP_WRITE_BYTES;
      this.#appRecord.setFloat64(0, ++this.#appCounter);
      this.memory.write(this.#heapBase + page * 4096 + offset, this.#appRecordBytes);
    }
    this.#setTimer(TIMER_APP, this.#nowUs + APP_TICK_US);
  }

  /** A timer at guest time `atUs`, set on the host's clock. */
  #setTimer(name: string, atUs: number): void {
    this.#emit({ kind: 'setTimer', name, atUs: atUs - this.#clockOffsetUs });
  }

  #emit(effect: Effect): void {
    this.#out[this.#out.length - 1]!.push(effect);
  }

  /** Received request bytes go into the request buffer (a ring in guest memory): the application dirties it. */
  #storeRequest(chunk: Uint8Array, streamOffset: number): void {
    const at = streamOffset % REQUEST_BUFFER_BYTES;
    const first = Math.min(chunk.length, REQUEST_BUFFER_BYTES - at);
    this.memory.write(this.#requestBase + at, chunk.subarray(0, first));
    if (first < chunk.length) this.memory.write(this.#requestBase, chunk.subarray(first, Math.min(chunk.length, first + REQUEST_BUFFER_BYTES)));
  }
}
