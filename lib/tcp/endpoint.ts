import { assert } from '../assert.js';
import { NO_SACK_BLOCKS, TcpFlag, type Segment } from '../codec/messages.js';
import type { CongestionControl } from './congestion/index.js';
import type { TcpOptions } from './options.js';
import { AckDecision, MAX_WSCALE, TcpReceiver, windowScaleFor } from './receiver.js';
import type { RttEstimator } from './rtt.js';
import { SendBuffer } from './send-buffer.js';
import { expectSnapshot, parseSnapshot, tcpEndpointSnapshotSchema, TCP_SNAPSHOT_VERSION, type TcpEndpointSnapshot, type TcpState } from './snapshot.js';
import { TcpSender, type SenderHost, type SenderOptions, type SenderStats } from './sender.js';

const EMPTY = new Uint8Array(0);
/** Timestamp option value for a clock reading: +1 so that 0 keeps meaning "no timestamp" at t = 0. */
const tsOf = (nowUs: number): number => nowUs + 1;
/** A NIC that never pushes back. */
const ALWAYS_ROOM = (): boolean => true;
/** Initial send sequence number: fixed, so runs are deterministic. */
const ISS = 0;
/** Linux's send buffer before establishment (tcp_wmem[1]), when it grows with the window. */
const INITIAL_SNDBUF_BYTES = 16 * 1024;
/** tcp_sndbuf_expand sizes the buffer for at least TCP_INIT_CWND segments. */
const SNDBUF_MIN_SEGMENTS = 10;
/**
 * What Linux charges a segment beyond its payload: MAX_TCP_HEADER and the
 * sk_buff and skb_shared_info structures (x86-64). The payload plus this,
 * rounded up to a power of two, is a segment's memory (4 KiB at MSS 1448).
 */
const SEGMENT_OVERHEAD_BYTES = 896;

/** What an endpoint needs from its owner; the owner turns these into effects. */
export interface TcpIo {
  /** `retransmit`: the segment carries data sent before (a tracer numbers it). */
  transmit(seg: Segment, retransmit: boolean): void;
  setTimer(name: string, atUs: number): void;
  cancelTimer(name: string): void;
  /** In-order stream bytes, exactly once. */
  deliver(chunk: Uint8Array): void;
  connected(): void;
  /** ACKs freed send-buffer space. */
  sendSpaceFreed(): void;
  peerClosed(): void;
  /** The local NIC's room for a data segment (SenderHost.mayTransmit); absent: always room. */
  mayTransmit?(payloadBytes: number, nowUs: number): boolean;
}

export type TcpStats = SenderStats;

export type { TcpState } from './snapshot.js';

export interface TcpIdentity {
  readonly vmId: string;
  readonly connId: number;
  /** Timer names are prefixed so one core can own several endpoints. */
  readonly timerPrefix: string;
}

/** Where the send buffer's bytes live (guest memory) and how writes are tracked. */
export interface SendRing {
  readonly bytes: Uint8Array;
  markDirty(ringOffset: number, lengthBytes: number): void;
}

/**
 * One TCP connection endpoint: handshake, a TcpSender (congestion control,
 * loss recovery, RTO) over a send buffer, and a TcpReceiver (delayed ACKs,
 * reassembly, window scaling). Pure: it acts only through `io`.
 */
export class TcpEndpoint {
  state: TcpState = 'closed';
  /** Stamped on every segment we send; the owner updates them. */
  term = 0;
  epoch = 0;
  readonly receiver: TcpReceiver;
  readonly sendBuffer: SendBuffer;
  readonly sender: TcpSender;
  /** Shift applied to windows the peer advertises. */
  #sndWscale = 0;
  readonly #timerDelack: string;
  /** Deadline of the delayed-ACK timer while it is armed, else null. */
  #delackAtUs: number | null = null;
  /** What the application may have written and not had acknowledged (Linux sk_sndbuf); only grows. */
  #sndBufLimitBytes: number;

  constructor(
    readonly options: TcpOptions & Pick<SenderOptions, 'tsoBytes'>,
    readonly identity: TcpIdentity,
    readonly io: TcpIo,
    sendRing?: SendRing,
  ) {
    this.receiver = new TcpReceiver(options.rcvBufBytes, options.windowScaling ? windowScaleFor(options.rcvBufBytes) : 0);
    this.sendBuffer = new SendBuffer(options.sndBufBytes, ISS + 1, sendRing);
    this.#sndBufLimitBytes = options.sndBufAutotune ? Math.min(options.sndBufBytes, INITIAL_SNDBUF_BYTES) : options.sndBufBytes;
    this.#timerDelack = `${identity.timerPrefix}.delack`;
    const host: SenderHost = {
      dataEndSeq: () => this.sendBuffer.endSeq,
      emitData: (seq, len, retransmit, nowUs) => this.#emit(seq, len, TcpFlag.ACK | (seq + len === this.sendBuffer.endSeq ? TcpFlag.PSH : 0), nowUs, retransmit),
      emitFin: (seq, _retransmit, nowUs) => this.#emit(seq, 0, TcpFlag.FIN | TcpFlag.ACK, nowUs),
      // An old sequence number makes the peer re-advertise its window.
      emitProbe: (nowUs) => this.#emit(this.sender.sndUna - 1, 0, TcpFlag.ACK, nowUs),
      setTimer: (name, atUs) => io.setTimer(name, atUs),
      cancelTimer: (name) => io.cancelTimer(name),
      // Always present, so that every endpoint's host has one shape (the sender's calls on it stay monomorphic).
      mayTransmit: io.mayTransmit ?? ALWAYS_ROOM,
    };
    this.sender = new TcpSender(options, host, identity.timerPrefix, ISS);
  }

  get stats(): TcpStats {
    return this.sender.stats;
  }
  get cc(): CongestionControl {
    return this.sender.cc;
  }
  get rtt(): RttEstimator {
    return this.sender.rtt;
  }
  get sndUna(): number {
    return this.sender.sndUna;
  }
  get sndNxt(): number {
    return this.sender.sndNxt;
  }
  get sndMax(): number {
    return this.sender.sndMax;
  }
  get sndWnd(): number {
    return this.sender.sndWnd;
  }
  get mssBytes(): number {
    return this.sender.mssBytes;
  }
  get flightBytes(): number {
    return this.sender.flightBytes;
  }
  get inRecovery(): boolean {
    return this.sender.inRecovery;
  }
  /** When the delayed-ACK timer fires, or null when it is not armed. */
  get delackDeadlineUs(): number | null {
    return this.#delackAtUs;
  }
  /** The send buffer the application may fill now: sndBufBytes, or less while it grows with the window. */
  get sndBufLimitBytes(): number {
    return this.#sndBufLimitBytes;
  }
  /** Bytes written by the application and not yet sent. */
  get unsentBytes(): number {
    return Math.max(0, this.sendBuffer.endSeq - this.sender.sndNxt);
  }

  /**
   * Connection state for a checkpoint, as plain JSON (see snapshot.ts). The
   * send buffer's bytes live in guest memory and are checkpointed as pages.
   */
  snapshot(): TcpEndpointSnapshot {
    return {
      version: TCP_SNAPSHOT_VERSION,
      state: this.state,
      term: this.term,
      epoch: this.epoch,
      sndWscale: this.#sndWscale,
      delackAtUs: this.#delackAtUs,
      // Only while it grows: a field in every checkpoint's state would make each longer and move every figure.
      ...(this.options.sndBufAutotune ? { sndBufLimitBytes: this.#sndBufLimitBytes } : {}),
      sendBuffer: this.sendBuffer.snapshot(),
      sender: this.sender.snapshot(),
      receiver: this.receiver.snapshot(),
    };
  }

  /**
   * Becomes the endpoint a snapshot describes. Construct it with the same
   * options and a send ring that already holds the checkpointed bytes; from
   * here on it behaves as the original did from the moment of the snapshot.
   * The snapshot is validated first: a malformed one, one of another version
   * or one that does not fit these options throws SnapshotError and changes
   * nothing. No timer is requested until resumeTimers; timers this endpoint
   * had armed are cancelled. Stats are not restored: they count what this
   * endpoint does.
   */
  restore(snapshot: TcpEndpointSnapshot): void {
    const s = parseSnapshot(tcpEndpointSnapshotSchema, snapshot, 'TCP endpoint');
    expectSnapshot(s.sendBuffer.capacityBytes === this.sendBuffer.capacityBytes, `snapshot of a ${s.sendBuffer.capacityBytes} B send buffer for a ${this.sendBuffer.capacityBytes} B one`);
    expectSnapshot(s.receiver.rcvBufBytes === this.receiver.rcvBufBytes, `snapshot of a ${s.receiver.rcvBufBytes} B receive buffer for a ${this.receiver.rcvBufBytes} B one`);
    expectSnapshot(s.sender.cc.name === this.cc.name, `snapshot uses ${s.sender.cc.name}, this endpoint ${this.cc.name}`);
    if (this.#delackAtUs !== null) {
      this.#delackAtUs = null;
      this.io.cancelTimer(this.#timerDelack);
    }
    this.state = s.state;
    this.term = s.term;
    this.epoch = s.epoch;
    this.#sndWscale = s.sndWscale;
    this.sendBuffer.restoreIndices(s.sendBuffer);
    this.sender.restore(s.sender);
    this.receiver.restore(s.receiver);
    this.#delackAtUs = s.delackAtUs;
    this.#sndBufLimitBytes = s.sndBufLimitBytes ?? this.sendBuffer.capacityBytes;
  }

  /**
   * Requests the timers the restored state has armed (retransmission,
   * persist, delayed ACK) at their deadlines, or now for those already due.
   * The owner calls it when the restored guest starts to run.
   */
  /**
   * Sends a pure ACK now (established only). A guest resumed on a promoted
   * host announces itself this way: ACKs its predecessor sent after the last
   * release point never reached the peer, and the peer may be waiting on one.
   */
  acknowledgeNow(nowUs: number): void {
    if (this.state === 'established') this.#sendAck(nowUs);
  }

  resumeTimers(nowUs: number): void {
    this.sender.resumeTimers(nowUs);
    if (this.#delackAtUs !== null) {
      this.#delackAtUs = Math.max(this.#delackAtUs, nowUs);
      this.io.setTimer(this.#timerDelack, this.#delackAtUs);
    }
  }

  listen(): void {
    assert(this.state === 'closed', () => `listen in ${this.state}`);
    this.state = 'listen';
  }

  connect(nowUs: number): void {
    assert(this.state === 'closed', () => `connect in ${this.state}`);
    this.state = 'syn-sent';
    this.#sendSyn(nowUs);
  }

  /** Appends up to `maxBytes` of application data; returns what fit. */
  write(maxBytes: number, fill: (dst: Uint8Array, streamOffset: number) => void, nowUs: number): number {
    assert(!this.sender.closeRequested, 'write after close');
    const roomBytes = this.#sndBufLimitBytes - this.sendBuffer.usedBytes;
    assert(roomBytes >= 0, () => `send buffer holds ${this.sendBuffer.usedBytes} B over its limit of ${this.#sndBufLimitBytes} B`);
    const n = this.sendBuffer.append(Math.min(maxBytes, roomBytes), (dst, seq) => fill(dst, seq - (ISS + 1)));
    if (n > 0) this.#trySend(nowUs);
    return n;
  }

  /** Sends FIN once all written data has gone. */
  close(nowUs: number): void {
    this.sender.closeRequested = true;
    this.#trySend(nowUs);
  }

  onTimer(name: string, nowUs: number): boolean {
    if (name === this.sender.rtoTimer) {
      if (this.#due(name, this.sender.rtoDeadlineUs, nowUs)) this.#onRto(nowUs);
    } else if (name === this.#timerDelack) {
      if (this.#due(name, this.#delackAtUs, nowUs)) this.#onDelayedAck(nowUs);
    } else if (name === this.sender.persistTimer) {
      if (this.state === 'established' && this.#due(name, this.sender.persistDeadlineUs, nowUs)) this.sender.onPersist(nowUs);
    } else return false;
    return true;
  }

  /**
   * Whether a timer delivered now is still due. A paused guest runs the
   * inputs it queued in order when it resumes, so a timer may arrive after
   * an ACK that cancelled it or moved it later: ignore the first, request
   * the second again.
   */
  #due(name: string, deadlineUs: number | null, nowUs: number): boolean {
    if (deadlineUs === null) return false;
    if (nowUs >= deadlineUs) return true;
    this.io.setTimer(name, deadlineUs);
    return false;
  }

  onSegment(seg: Segment, nowUs: number): void {
    if (seg.flags & TcpFlag.RST) {
      this.sender.stats.segmentsOutOfState++;
      return;
    }
    switch (this.state) {
      case 'closed':
        this.sender.stats.segmentsOutOfState++;
        return;
      case 'listen':
        if (seg.flags & TcpFlag.SYN && !(seg.flags & TcpFlag.ACK)) this.#onSyn(seg, nowUs);
        else this.sender.stats.segmentsOutOfState++;
        return;
      case 'syn-sent':
        if (seg.flags & TcpFlag.SYN && seg.flags & TcpFlag.ACK && seg.ack === ISS + 1) this.#onSynAck(seg, nowUs);
        else this.sender.stats.segmentsOutOfState++;
        return;
      case 'syn-received':
        if (seg.flags & TcpFlag.SYN) {
          this.#emit(ISS, 0, TcpFlag.SYN | TcpFlag.ACK, nowUs); // our SYN-ACK was lost
          return;
        }
        if (!(seg.flags & TcpFlag.ACK) || seg.ack !== ISS + 1) {
          this.sender.stats.segmentsOutOfState++;
          return;
        }
        this.#establish(seg, nowUs);
        this.#onEstablishedSegment(seg, nowUs);
        return;
      case 'established':
        if (seg.flags & TcpFlag.SYN) {
          // The peer did not see our handshake ACK: repeat it.
          this.#sendAck(nowUs);
          return;
        }
        this.#onEstablishedSegment(seg, nowUs);
        return;
    }
  }

  // ── handshake ──────────────────────────────────────────────────────────

  #sendSyn(nowUs: number): void {
    this.sender.sndNxt = ISS + 1;
    this.sender.sndMax = ISS + 1;
    this.#emit(ISS, 0, this.state === 'syn-sent' ? TcpFlag.SYN : TcpFlag.SYN | TcpFlag.ACK, nowUs);
    this.sender.armRto(nowUs);
  }

  #onSyn(seg: Segment, nowUs: number): void {
    this.receiver.init(seg.seq);
    this.receiver.tsRecentUs = seg.tsValUs;
    this.#negotiate(seg);
    this.state = 'syn-received';
    this.#sendSyn(nowUs);
  }

  #onSynAck(seg: Segment, nowUs: number): void {
    this.receiver.init(seg.seq);
    this.receiver.tsRecentUs = seg.tsValUs;
    this.#negotiate(seg);
    this.#establish(seg, nowUs);
    this.#sendAck(nowUs);
    this.#trySend(nowUs);
  }

  #negotiate(syn: Segment): void {
    if (syn.mss > 0) this.sender.mssBytes = Math.min(this.options.mssBytes, syn.mss);
    const bothScale = this.options.windowScaling && syn.wscale !== undefined;
    this.#sndWscale = bothScale ? Math.min(syn.wscale!, MAX_WSCALE) : 0; // RFC 7323 2.3: a shift over 14 counts as 14
    if (!bothScale) this.receiver.rcvWscale = 0;
    const bothSack = this.options.sack && syn.sackPermitted;
    this.sender.sackEnabled = bothSack;
    this.receiver.sackEnabled = bothSack;
    this.sender.initWindow(syn.window, syn.seq); // SYN windows are unscaled
  }

  #establish(seg: Segment, nowUs: number): void {
    this.state = 'established';
    this.sender.resetTo(ISS + 1);
    if (seg.tsEcrUs > 0) this.sender.rtt.sample(tsOf(nowUs) - seg.tsEcrUs, this.sender.sndUna, this.sender.sndMax);
    this.sender.rtt.resetBackoff();
    this.sender.disarmRto();
    this.#expandSndBuf(); // tcp_init_buffer_space
    this.io.connected();
  }

  /**
   * Linux's tcp_sndbuf_expand: room for twice the window's segments (at least
   * ten), each counted as its memory; capped at sndBufBytes. Returns whether
   * the limit grew.
   */
  #expandSndBuf(): boolean {
    if (!this.options.sndBufAutotune) return false;
    const mssBytes = this.sender.mssBytes;
    const segmentMemoryBytes = nextPowerOfTwo(mssBytes + SEGMENT_OVERHEAD_BYTES);
    const segments = Math.max(SNDBUF_MIN_SEGMENTS, Math.ceil(this.sender.cc.cwndBytes / mssBytes));
    const wantedBytes = Math.min(this.options.sndBufBytes, 2 * segments * segmentMemoryBytes);
    if (wantedBytes <= this.#sndBufLimitBytes) return false;
    this.#sndBufLimitBytes = wantedBytes;
    return true;
  }

  // ── established ────────────────────────────────────────────────────────

  #onEstablishedSegment(seg: Segment, nowUs: number): void {
    const emittedBefore = this.#emitted;
    let acked = 0;
    if (seg.flags & TcpFlag.ACK) {
      acked = this.sender.onAck(
        {
          seq: seg.seq,
          ack: seg.ack,
          windowBytes: seg.window * (1 << this.#sndWscale), // a shift, not `**`: that is a call to pow per segment
          carriesData: seg.payload.length > 0 || (seg.flags & (TcpFlag.SYN | TcpFlag.FIN)) !== 0,
          rttSampleUs: seg.tsEcrUs > 0 ? tsOf(nowUs) - seg.tsEcrUs : null, // RFC 7323 timestamps
          sackBlocks: seg.sackBlocks,
          echoedSentAtUs: seg.tsEcrUs > 0 ? seg.tsEcrUs - tsOf(0) : null,
        },
        nowUs,
      );
      if (acked > 0) {
        this.sendBuffer.release(this.sender.sndUna);
        this.io.sendSpaceFreed();
      }
    }
    const finBefore = this.receiver.finReceived;
    const decision = this.receiver.accept(seg.seq, seg.payload, (seg.flags & TcpFlag.FIN) !== 0, seg.tsValUs, this.sender.mssBytes, this.#deliver);
    // Once, when the stream end is reached: a retransmitted FIN is a duplicate, and
    // a FIN held out of order completes on whatever segment fills the gap.
    if (!finBefore && this.receiver.finReceived) this.io.peerClosed();
    this.#trySend(nowUs); // the application may have answered: piggyback the ACK
    if (decision === AckDecision.Now) {
      if (this.#emitted === emittedBefore || this.receiver.lastAckSent !== this.receiver.rcvNxt) this.#sendAck(nowUs);
    } else if (decision === AckDecision.Delay && this.receiver.lastAckSent !== this.receiver.rcvNxt) {
      if (!this.options.delayedAck) this.#sendAck(nowUs);
      else this.#armDelayedAck(nowUs);
    }
    // tcp_check_space: once sending is done, a window left not full means the buffer ran dry; it grows, and the
    // application is told there is room again.
    if (acked > 0 && this.sender.flightBytes < this.sender.cc.cwndBytes && this.#expandSndBuf()) this.io.sendSpaceFreed();
  }

  #trySend(nowUs: number): void {
    if (this.state === 'established') this.sender.trySend(nowUs);
  }

  /** The local NIC has room again (io.mayTransmit said no before): sends what the windows allow. */
  nicHasRoom(nowUs: number): void {
    this.#trySend(nowUs);
  }

  #sendAck(nowUs: number): void {
    this.#emit(this.sender.sndNxt, 0, TcpFlag.ACK, nowUs);
  }

  #emitted = 0;
  /** One closure for every segment's in-order bytes. */
  readonly #deliver = (chunk: Uint8Array): void => this.io.deliver(chunk);

  #emit(seq: number, len: number, flags: number, nowUs: number, retransmit = false): void {
    const syn = (flags & TcpFlag.SYN) !== 0;
    const seg: Segment = {
      type: 'segment',
      vmId: this.identity.vmId,
      term: this.term,
      epoch: this.epoch,
      connId: this.identity.connId,
      seq,
      ack: syn && !(flags & TcpFlag.ACK) ? 0 : this.receiver.rcvNxt,
      window: this.receiver.windowField(syn),
      flags,
      payload: len > 0 ? this.sendBuffer.view(seq, len) : EMPTY,
      mss: syn ? this.options.mssBytes : 0,
      wscale: syn && this.options.windowScaling ? this.receiver.rcvWscale : undefined,
      // RFC 2018 §2: a SYN-ACK offers SACK only to a SYN that did.
      sackPermitted: syn && (this.state === 'syn-sent' ? this.options.sack : this.sender.sackEnabled),
      sackBlocks: flags & TcpFlag.ACK ? this.receiver.sackBlocksToSend() : NO_SACK_BLOCKS,
      tsValUs: tsOf(nowUs),
      tsEcrUs: this.receiver.tsRecentUs,
      speculative: false,
    };
    this.#emitted++;
    if (flags & TcpFlag.ACK) {
      this.receiver.lastAckSent = this.receiver.rcvNxt;
      this.receiver.unackedSegments = 0;
      // Cancelled only when armed: most segments carry an ACK, and a cancel is an effect to apply.
      if (this.#delackAtUs !== null) {
        this.#delackAtUs = null;
        this.io.cancelTimer(this.#timerDelack);
      }
    }
    this.io.transmit(seg, retransmit);
  }

  // ── timers ─────────────────────────────────────────────────────────────

  #onRto(nowUs: number): void {
    if (this.state === 'syn-sent' || this.state === 'syn-received') {
      this.sender.rtt.backoff();
      this.sender.stats.timeouts++;
      this.sender.stats.retransmits++;
      this.#sendSyn(nowUs);
      return;
    }
    if (this.state === 'established') this.sender.onRto(nowUs);
  }

  #armDelayedAck(nowUs: number): void {
    this.#delackAtUs = nowUs + this.options.delayedAckUs;
    this.io.setTimer(this.#timerDelack, this.#delackAtUs);
  }

  #onDelayedAck(nowUs: number): void {
    this.#delackAtUs = null;
    if (this.receiver.lastAckSent !== this.receiver.rcvNxt || this.receiver.unackedSegments > 0) this.#sendAck(nowUs);
  }
}

/** The least power of two ≥ n (1 ≤ n ≤ 2^30): what 2 ** ceil(log2(n)) gives, without two calls into libm. */
export function nextPowerOfTwo(n: number): number {
  assert(Number.isInteger(n) && n >= 1 && n <= 2 ** 30, () => `nextPowerOfTwo(${n})`);
  return n === 1 ? 1 : 1 << (32 - Math.clz32(n - 1));
}
