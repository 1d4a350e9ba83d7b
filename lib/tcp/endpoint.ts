import { assert } from '../assert.js';
import { TcpFlag, type Segment } from '../codec/messages.js';
import { createCongestionControl, type CongestionControl } from './congestion/index.js';
import type { TcpOptions } from './options.js';
import { AckDecision, TcpReceiver, windowScaleFor } from './receiver.js';
import { RttEstimator } from './rtt.js';
import { SendBuffer } from './send-buffer.js';

const EMPTY = new Uint8Array(0);
/** Initial send sequence number: fixed, so runs are deterministic. */
const ISS = 0;

/** What an endpoint needs from its owner; the owner turns these into effects. */
export interface TcpIo {
  transmit(seg: Segment): void;
  setTimer(name: string, atUs: number): void;
  cancelTimer(name: string): void;
  /** In-order stream bytes, exactly once. */
  deliver(chunk: Uint8Array): void;
  connected(): void;
  /** ACKs freed send-buffer space. */
  sendSpaceFreed(): void;
  peerClosed(): void;
}

export interface TcpStats {
  segmentsSent: number;
  retransmits: number;
  fastRetransmits: number;
  timeouts: number;
  dupAcksReceived: number;
  bytesAcked: number;
}

export type TcpState = 'closed' | 'listen' | 'syn-sent' | 'syn-received' | 'established';

export interface TcpIdentity {
  readonly vmId: string;
  readonly connId: number;
  /** Timer names are prefixed so one core can own several endpoints. */
  readonly timerPrefix: string;
}

/**
 * One TCP connection endpoint: handshake, sender (NewReno loss recovery per
 * RFC 5681/6582, RTO per RFC 6298 with go-back-N, Nagle, persist probes,
 * slow-start restart) and receiver (delayed ACKs, reassembly, window
 * scaling). Pure: it acts only through `io`.
 */
export class TcpEndpoint {
  state: TcpState = 'closed';
  /** Stamped on every segment we send; the owner updates them. */
  term = 0;
  epoch = 0;
  readonly stats: TcpStats = { segmentsSent: 0, retransmits: 0, fastRetransmits: 0, timeouts: 0, dupAcksReceived: 0, bytesAcked: 0 };
  readonly cc: CongestionControl;
  readonly rtt: RttEstimator;
  readonly receiver: TcpReceiver;
  readonly sendBuffer: SendBuffer;

  sndUna = ISS;
  sndNxt = ISS;
  /** Highest sequence number sent + 1 (sndNxt goes back on RTO). */
  sndMax = ISS;
  /** Peer's window in bytes, already scaled. */
  sndWnd = 0;
  #maxSndWnd = 0;
  #sndWl1 = 0;
  #sndWl2 = 0;
  /** Shift applied to windows the peer advertises. */
  #sndWscale = 0;
  #effectiveMss: number;
  #dupAcks = 0;
  #inRecovery = false;
  #partialAckSeen = false;
  /** RFC 6582 `recover`. */
  #recover = ISS;
  #rtoArmed = false;
  #persistArmed = false;
  #persistBackoff = 0;
  #lastSendUs = -1;
  #cwndLimited = false;
  #closeRequested = false;
  #finSeq: number | null = null;
  #emitted = 0;
  readonly #timerRto: string;
  readonly #timerDelack: string;
  readonly #timerPersist: string;

  constructor(
    readonly options: TcpOptions,
    readonly identity: TcpIdentity,
    readonly io: TcpIo,
  ) {
    this.#effectiveMss = options.mssBytes;
    this.cc = createCongestionControl(options.congestionControl, { mssBytes: options.mssBytes, initialWindowBytes: options.initialWindowSegments * options.mssBytes });
    this.rtt = new RttEstimator(options.minRtoUs, options.maxRtoUs, options.initialRtoUs);
    this.receiver = new TcpReceiver(options.rcvBufBytes, options.windowScaling ? windowScaleFor(options.rcvBufBytes) : 0);
    this.sendBuffer = new SendBuffer(options.sndBufBytes, ISS + 1);
    this.#timerRto = `${identity.timerPrefix}.rto`;
    this.#timerDelack = `${identity.timerPrefix}.delack`;
    this.#timerPersist = `${identity.timerPrefix}.persist`;
  }

  get mssBytes(): number {
    return this.#effectiveMss;
  }
  get flightBytes(): number {
    return this.sndNxt - this.sndUna;
  }
  get inRecovery(): boolean {
    return this.#inRecovery;
  }
  /** Bytes written by the application and not yet sent. */
  get unsentBytes(): number {
    return Math.max(0, this.sendBuffer.endSeq - this.sndNxt);
  }

  listen(): void {
    assert(this.state === 'closed', `listen in ${this.state}`);
    this.state = 'listen';
  }

  connect(nowUs: number): void {
    assert(this.state === 'closed', `connect in ${this.state}`);
    this.state = 'syn-sent';
    this.#sendSyn(nowUs);
  }

  /** Appends up to `maxBytes` of application data; returns what fit. */
  write(maxBytes: number, fill: (dst: Uint8Array, streamOffset: number) => void, nowUs: number): number {
    assert(!this.#closeRequested, 'write after close');
    const n = this.sendBuffer.append(maxBytes, (dst, seq) => fill(dst, seq - (ISS + 1)));
    if (n > 0) this.#trySend(nowUs);
    return n;
  }

  /** Sends FIN once all written data has gone. */
  close(nowUs: number): void {
    this.#closeRequested = true;
    this.#trySend(nowUs);
  }

  onTimer(name: string, nowUs: number): boolean {
    if (name === this.#timerRto) this.#onRto(nowUs);
    else if (name === this.#timerDelack) this.#onDelayedAck(nowUs);
    else if (name === this.#timerPersist) this.#onPersist(nowUs);
    else return false;
    return true;
  }

  onSegment(seg: Segment, nowUs: number): void {
    if (seg.flags & TcpFlag.RST) return;
    switch (this.state) {
      case 'closed':
        return;
      case 'listen':
        if (seg.flags & TcpFlag.SYN && !(seg.flags & TcpFlag.ACK)) this.#onSyn(seg, nowUs);
        return;
      case 'syn-sent':
        if (seg.flags & TcpFlag.SYN && seg.flags & TcpFlag.ACK && seg.ack === ISS + 1) this.#onSynAck(seg, nowUs);
        return;
      case 'syn-received':
        if (seg.flags & TcpFlag.SYN) {
          this.#emit(ISS, 0, TcpFlag.SYN | TcpFlag.ACK, nowUs); // our SYN-ACK was lost
          return;
        }
        if (!(seg.flags & TcpFlag.ACK) || seg.ack !== ISS + 1) return;
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
    this.sndNxt = ISS + 1;
    this.sndMax = ISS + 1;
    this.#emit(ISS, 0, this.state === 'syn-sent' ? TcpFlag.SYN : TcpFlag.SYN | TcpFlag.ACK, nowUs);
    this.#armRto(nowUs);
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
    if (syn.mss > 0) this.#effectiveMss = Math.min(this.options.mssBytes, syn.mss);
    const bothScale = this.options.windowScaling && syn.wscale !== undefined;
    this.#sndWscale = bothScale ? syn.wscale! : 0;
    if (!bothScale) this.receiver.rcvWscale = 0;
    this.sndWnd = syn.window; // SYN windows are unscaled
    this.#maxSndWnd = this.sndWnd;
    this.#sndWl1 = syn.seq;
  }

  #establish(seg: Segment, nowUs: number): void {
    this.state = 'established';
    this.sndUna = ISS + 1;
    this.#recover = ISS + 1;
    if (seg.tsEcrUs > 0) this.rtt.sample(nowUs - seg.tsEcrUs);
    this.rtt.resetBackoff();
    this.#disarmRto();
    this.io.connected();
  }

  // ── established ────────────────────────────────────────────────────────

  #onEstablishedSegment(seg: Segment, nowUs: number): void {
    const emittedBefore = this.#emitted;
    if (seg.flags & TcpFlag.ACK) this.#onAck(seg, nowUs);
    const decision = this.receiver.accept(seg.seq, seg.payload, (seg.flags & TcpFlag.FIN) !== 0, seg.tsValUs, this.#effectiveMss, (chunk) => this.io.deliver(chunk));
    if (this.receiver.finReceived && seg.flags & TcpFlag.FIN) this.io.peerClosed();
    this.#trySend(nowUs); // the application may have answered: piggyback the ACK
    if (decision === AckDecision.Now) {
      if (this.#emitted === emittedBefore || this.receiver.lastAckSent !== this.receiver.rcvNxt) this.#sendAck(nowUs);
    } else if (decision === AckDecision.Delay && this.receiver.lastAckSent !== this.receiver.rcvNxt) {
      if (!this.options.delayedAck) this.#sendAck(nowUs);
      else this.io.setTimer(this.#timerDelack, nowUs + this.options.delayedAckUs);
    }
  }

  #onAck(seg: Segment, nowUs: number): void {
    const ack = seg.ack;
    if (ack > this.sndMax) return; // acknowledges data never sent
    const wnd = seg.window * 2 ** this.#sndWscale;
    let windowChanged = false;
    if (this.#sndWl1 < seg.seq || (this.#sndWl1 === seg.seq && this.#sndWl2 <= ack)) {
      windowChanged = wnd !== this.sndWnd;
      this.sndWnd = wnd;
      this.#sndWl1 = seg.seq;
      this.#sndWl2 = ack;
      if (wnd > this.#maxSndWnd) this.#maxSndWnd = wnd;
      if (wnd > 0 && this.#persistArmed) this.#disarmPersist();
    }
    const mss = this.#effectiveMss;
    if (ack > this.sndUna) {
      const acked = ack - this.sndUna;
      this.stats.bytesAcked += acked;
      if (seg.tsEcrUs > 0) this.rtt.sample(nowUs - seg.tsEcrUs);
      this.rtt.resetBackoff();
      this.sndUna = ack;
      this.sendBuffer.release(ack);
      if (this.sndNxt < ack) this.sndNxt = ack;
      if (this.#inRecovery) {
        if (ack >= this.#recover) {
          this.#inRecovery = false;
          this.#dupAcks = 0;
          this.cc.onRecoveryExit(this.flightBytes, nowUs);
        } else {
          // RFC 6582 §3.2 step 4: partial ACK.
          this.#retransmit(this.sndUna, nowUs);
          this.cc.cwndBytes = Math.max(mss, this.cc.cwndBytes - acked + (acked >= mss ? mss : 0));
          if (!this.#partialAckSeen) {
            this.#partialAckSeen = true;
            this.#armRto(nowUs);
          }
        }
      } else {
        this.#dupAcks = 0;
        this.cc.onAck(acked, nowUs, this.rtt.srttUs, this.#cwndLimited);
      }
      if (this.sndUna >= this.sndMax) this.#disarmRto();
      else if (!this.#inRecovery || !this.#partialAckSeen) this.#armRto(nowUs);
      this.io.sendSpaceFreed();
      return;
    }
    const isDuplicate = ack === this.sndUna && seg.payload.length === 0 && !windowChanged && this.sndMax > this.sndUna && !(seg.flags & (TcpFlag.SYN | TcpFlag.FIN));
    if (!isDuplicate) return;
    this.stats.dupAcksReceived++;
    this.#dupAcks++;
    if (this.#inRecovery) {
      this.cc.cwndBytes += mss; // inflate: a segment has left the network
    } else if (this.#dupAcks === 3 && ack > this.#recover) {
      this.#inRecovery = true;
      this.#partialAckSeen = false;
      this.#recover = this.sndMax;
      this.cc.onFastRetransmit(this.flightBytes, nowUs);
      this.stats.fastRetransmits++;
      this.#retransmit(this.sndUna, nowUs);
      this.cc.cwndBytes = this.cc.ssthreshBytes + 3 * mss;
    }
  }

  // ── sending ────────────────────────────────────────────────────────────

  #trySend(nowUs: number): void {
    if (this.state !== 'established') return;
    const mss = this.#effectiveMss;
    if (this.options.slowStartAfterIdle && this.sndNxt === this.sndUna && this.#lastSendUs >= 0 && nowUs - this.#lastSendUs >= this.rtt.rtoUs) {
      this.cc.onIdleRestart(nowUs);
      this.#lastSendUs = nowUs;
    }
    const dataEnd = this.sendBuffer.endSeq;
    for (;;) {
      const wnd = Math.min(this.cc.cwndBytes, this.sndWnd);
      const limit = this.sndUna + wnd;
      if (this.sndNxt < dataEnd) {
        const pending = dataEnd - this.sndNxt;
        const len = Math.min(mss, pending, limit - this.sndNxt);
        this.#cwndLimited = this.cc.cwndBytes <= this.sndWnd && limit - this.sndNxt < Math.min(mss, pending);
        if (len <= 0) break;
        // Sender-side silly window avoidance (RFC 1122 §4.2.3.4).
        if (len < mss && len < pending && len < this.#maxSndWnd / 2) break;
        // Nagle: hold a short final segment while data is unacknowledged.
        if (len < mss && len === pending && this.options.nagle && this.sndNxt > this.sndUna && !this.#closeRequested) break;
        const seq = this.sndNxt;
        if (seq < this.sndMax) this.stats.retransmits++;
        this.#emit(seq, len, TcpFlag.ACK | (len === pending ? TcpFlag.PSH : 0), nowUs);
        this.sndNxt += len;
        if (this.sndNxt > this.sndMax) this.sndMax = this.sndNxt;
        if (!this.#rtoArmed) this.#armRto(nowUs);
        continue;
      }
      if (this.#closeRequested && this.sndNxt === dataEnd && (this.#finSeq === null || this.sndNxt === this.#finSeq)) {
        this.#finSeq = dataEnd;
        if (this.sndNxt < this.sndMax) this.stats.retransmits++;
        this.#emit(dataEnd, 0, TcpFlag.FIN | TcpFlag.ACK, nowUs);
        this.sndNxt = dataEnd + 1;
        if (this.sndNxt > this.sndMax) this.sndMax = this.sndNxt;
        if (!this.#rtoArmed) this.#armRto(nowUs);
      }
      break;
    }
    if (this.sndWnd === 0 && this.sndNxt < dataEnd && this.sndUna === this.sndMax && !this.#persistArmed) this.#armPersist(nowUs);
  }

  #retransmit(seq: number, nowUs: number): void {
    this.stats.retransmits++;
    if (this.#finSeq !== null && seq === this.#finSeq) {
      this.#emit(seq, 0, TcpFlag.FIN | TcpFlag.ACK, nowUs);
      return;
    }
    const len = Math.min(this.#effectiveMss, this.sendBuffer.endSeq - seq);
    if (len > 0) this.#emit(seq, len, TcpFlag.ACK, nowUs);
  }

  #sendAck(nowUs: number): void {
    this.#emit(this.sndNxt, 0, TcpFlag.ACK, nowUs);
  }

  #emit(seq: number, len: number, flags: number, nowUs: number): void {
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
      payload: len > 0 ? this.sendBuffer.copyOut(seq, len) : EMPTY,
      mss: syn ? this.options.mssBytes : 0,
      wscale: syn && this.options.windowScaling ? this.receiver.rcvWscale : undefined,
      tsValUs: nowUs,
      tsEcrUs: this.receiver.tsRecentUs,
      speculative: false,
    };
    this.#emitted++;
    this.stats.segmentsSent++;
    if (len > 0 || flags & TcpFlag.FIN) this.#lastSendUs = nowUs;
    if (flags & TcpFlag.ACK) {
      this.receiver.lastAckSent = this.receiver.rcvNxt;
      this.receiver.unackedSegments = 0;
      this.io.cancelTimer(this.#timerDelack);
    }
    this.io.transmit(seg);
  }

  // ── timers ─────────────────────────────────────────────────────────────

  #armRto(nowUs: number): void {
    this.#rtoArmed = true;
    this.io.setTimer(this.#timerRto, nowUs + this.rtt.rtoUs);
  }

  #disarmRto(): void {
    if (!this.#rtoArmed) return;
    this.#rtoArmed = false;
    this.io.cancelTimer(this.#timerRto);
  }

  #onRto(nowUs: number): void {
    this.#rtoArmed = false;
    this.rtt.backoff();
    if (this.state === 'syn-sent' || this.state === 'syn-received') {
      this.stats.timeouts++;
      this.stats.retransmits++;
      this.#sendSyn(nowUs);
      return;
    }
    if (this.state !== 'established' || this.sndUna >= this.sndMax) return;
    this.stats.timeouts++;
    this.cc.onTimeout(this.sndMax - this.sndUna, nowUs);
    this.#recover = this.sndMax; // RFC 6582 §3.2 step 1 after a timeout
    this.#inRecovery = false;
    this.#dupAcks = 0;
    this.sndNxt = this.sndUna; // go back N
    this.#trySend(nowUs);
    if (!this.#rtoArmed) this.#armRto(nowUs);
  }

  #onDelayedAck(nowUs: number): void {
    if (this.receiver.lastAckSent !== this.receiver.rcvNxt || this.receiver.unackedSegments > 0) this.#sendAck(nowUs);
  }

  #armPersist(nowUs: number): void {
    this.#persistArmed = true;
    const delayUs = Math.min(this.options.maxRtoUs, this.rtt.rtoUs * 2 ** this.#persistBackoff);
    this.io.setTimer(this.#timerPersist, nowUs + delayUs);
  }

  #disarmPersist(): void {
    this.#persistArmed = false;
    this.#persistBackoff = 0;
    this.io.cancelTimer(this.#timerPersist);
  }

  #onPersist(nowUs: number): void {
    this.#persistArmed = false;
    if (this.sndWnd > 0 || this.state !== 'established') {
      this.#trySend(nowUs);
      return;
    }
    // Zero-window probe: an old sequence number makes the peer re-advertise its window.
    this.#emit(this.sndUna - 1, 0, TcpFlag.ACK, nowUs);
    this.#persistBackoff++;
    this.#armPersist(nowUs);
  }
}
