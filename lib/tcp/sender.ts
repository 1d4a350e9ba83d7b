import { createCongestionControl, type CongestionControl, type CongestionControlName } from './congestion/index.js';
import { RttEstimator } from './rtt.js';
import { expectSnapshot, parseSnapshot, tcpSenderSnapshotSchema, TCP_SNAPSHOT_VERSION, type TcpSenderSnapshot } from './snapshot.js';

/** What a sender needs from its owner: where data ends and how to put a segment on the wire. */
export interface SenderHost {
  /** One past the last byte the sender may transmit. */
  dataEndSeq(): number;
  /** Transmits stream bytes [seq, seq + len). */
  emitData(seq: number, len: number, retransmit: boolean, nowUs: number): void;
  /** Transmits a FIN at `seq` (only when `finSeq` is set). */
  emitFin(seq: number, retransmit: boolean, nowUs: number): void;
  /** Transmits a zero-window probe. */
  emitProbe(nowUs: number): void;
  setTimer(name: string, atUs: number): void;
  cancelTimer(name: string): void;
}

export interface SenderOptions {
  readonly mssBytes: number;
  readonly initialWindowSegments: number;
  readonly congestionControl: CongestionControlName;
  /** CUBIC's HyStart; on when not given. */
  readonly hystart?: boolean;
  readonly minRtoUs: number;
  readonly initialRtoUs: number;
  readonly maxRtoUs: number;
  readonly slowStartAfterIdle: boolean;
  readonly nagle: boolean;
}

export interface SenderStats {
  segmentsSent: number;
  retransmits: number;
  fastRetransmits: number;
  timeouts: number;
  dupAcksReceived: number;
  bytesAcked: number;
}

/** An ACK as the sender sees it. */
export interface AckInfo {
  readonly seq: number;
  readonly ack: number;
  /** Window in bytes, already scaled. */
  readonly windowBytes: number;
  /** Payload, SYN or FIN: such a segment is never a duplicate ACK. */
  readonly carriesData: boolean;
  /** RTT sample this ACK yields (timestamps or a timed segment), or null. */
  readonly rttSampleUs: number | null;
}

/**
 * The sending half of TCP: congestion control, NewReno loss recovery
 * (RFC 5681 / RFC 6582), RTO per RFC 6298 with go-back-N, Nagle and sender
 * SWS avoidance, zero-window persist probes and slow-start restart. Used by
 * the guest's and client's TCP endpoints and by the acker's wire side.
 */
export class TcpSender {
  /** What made the sender resend last: a timeout, three duplicate ACKs, or a partial ACK during recovery (tracing names retransmissions by it). */
  lastResendCause: 'rto' | 'fast' | 'partial-ack' | null = null;
  readonly stats: SenderStats = { segmentsSent: 0, retransmits: 0, fastRetransmits: 0, timeouts: 0, dupAcksReceived: 0, bytesAcked: 0 };
  readonly cc: CongestionControl;
  readonly rtt: RttEstimator;
  sndUna: number;
  sndNxt: number;
  /** Highest sequence number sent + 1 (sndNxt goes back on RTO). */
  sndMax: number;
  /** Peer's window in bytes, already scaled. */
  sndWnd = 0;
  mssBytes: number;
  /** Sequence number of our FIN once the application closed and all data went. */
  finSeq: number | null = null;
  closeRequested = false;
  #maxSndWnd = 0;
  #sndWl1 = 0;
  #sndWl2 = 0;
  #dupAcks = 0;
  #inRecovery = false;
  #partialAckSeen = false;
  /**
   * RFC 6582 `recover`, kept one past the highest sequence number sent when
   * recovery (or a timeout) began, that is sndMax then: an ACK "covers more
   * than recover" in the RFC's terms when ack > this, and acknowledges
   * everything up to and including it when ack >= this.
   */
  #recover: number;
  /** Deadline of the retransmission timer while it is armed, else null. */
  #rtoAtUs: number | null = null;
  /** Deadline of the persist timer while it is armed, else null. */
  #persistAtUs: number | null = null;
  #persistBackoff = 0;
  #lastSendUs = -1;
  #cwndLimited = false;
  /** True only inside onPersist: never in a snapshot. */
  #overrideSws = false;

  constructor(
    readonly options: SenderOptions,
    readonly host: SenderHost,
    readonly timerPrefix: string,
    firstSeq: number,
  ) {
    this.mssBytes = options.mssBytes;
    this.cc = createCongestionControl(options.congestionControl, { mssBytes: options.mssBytes, initialWindowBytes: options.initialWindowSegments * options.mssBytes, hystart: options.hystart });
    this.rtt = new RttEstimator(options.minRtoUs, options.maxRtoUs, options.initialRtoUs);
    this.sndUna = firstSeq;
    this.sndNxt = firstSeq;
    this.sndMax = firstSeq;
    this.#recover = firstSeq;
  }

  get rtoTimer(): string {
    return `${this.timerPrefix}.rto`;
  }
  get persistTimer(): string {
    return `${this.timerPrefix}.persist`;
  }
  get flightBytes(): number {
    return this.sndNxt - this.sndUna;
  }
  get inRecovery(): boolean {
    return this.#inRecovery;
  }
  get lastSendUs(): number {
    return this.#lastSendUs;
  }
  /** When the retransmission timer fires, or null when it is not armed. */
  get rtoDeadlineUs(): number | null {
    return this.#rtoAtUs;
  }
  /** When the persist timer fires, or null when it is not armed. */
  get persistDeadlineUs(): number | null {
    return this.#persistAtUs;
  }

  /**
   * Everything that shapes what the sender does next, timers as deadlines.
   * Options (MSS option, RTO bounds, the algorithm) are the restorer's own.
   */
  snapshot(): TcpSenderSnapshot {
    return {
      version: TCP_SNAPSHOT_VERSION,
      sndUna: this.sndUna,
      sndNxt: this.sndNxt,
      sndMax: this.sndMax,
      sndWnd: this.sndWnd,
      maxSndWnd: this.#maxSndWnd,
      sndWl1: this.#sndWl1,
      sndWl2: this.#sndWl2,
      mssBytes: this.mssBytes,
      finSeq: this.finSeq,
      closeRequested: this.closeRequested,
      dupAcks: this.#dupAcks,
      inRecovery: this.#inRecovery,
      partialAckSeen: this.#partialAckSeen,
      recover: this.#recover,
      rtoAtUs: this.#rtoAtUs,
      persistAtUs: this.#persistAtUs,
      persistBackoff: this.#persistBackoff,
      lastSendUs: this.#lastSendUs,
      cwndLimited: this.#cwndLimited,
      cc: this.cc.snapshot(),
      rtt: this.rtt.snapshot(),
    };
  }

  /**
   * Takes a snapshot's state, validated first (SnapshotError, nothing changed).
   * Timers are not requested here: the owner calls resumeTimers when the
   * restored sender should run. Timers this sender had armed are cancelled.
   */
  restore(snapshot: TcpSenderSnapshot): void {
    const s = parseSnapshot(tcpSenderSnapshotSchema, snapshot, 'TCP sender');
    expectSnapshot(s.cc.name === this.cc.name, `sender snapshot uses ${s.cc.name}, this sender ${this.cc.name}`);
    this.#disarmRto();
    if (this.#persistAtUs !== null) this.#disarmPersist();
    this.sndUna = s.sndUna;
    this.sndNxt = s.sndNxt;
    this.sndMax = s.sndMax;
    this.sndWnd = s.sndWnd;
    this.#maxSndWnd = s.maxSndWnd;
    this.#sndWl1 = s.sndWl1;
    this.#sndWl2 = s.sndWl2;
    this.mssBytes = s.mssBytes;
    this.finSeq = s.finSeq;
    this.closeRequested = s.closeRequested;
    this.#dupAcks = s.dupAcks;
    this.#inRecovery = s.inRecovery;
    this.#partialAckSeen = s.partialAckSeen;
    this.#recover = s.recover;
    this.#rtoAtUs = s.rtoAtUs;
    this.#persistAtUs = s.persistAtUs;
    this.#persistBackoff = s.persistBackoff;
    this.#lastSendUs = s.lastSendUs;
    this.#cwndLimited = s.cwndLimited;
    this.#overrideSws = false;
    this.cc.restore(s.cc);
    this.rtt.restore(s.rtt);
  }

  /**
   * Requests the timers the snapshot had armed, at their deadlines (or now,
   * if a deadline passed while the guest was down).
   */
  resumeTimers(nowUs: number): void {
    if (this.#rtoAtUs !== null) {
      this.#rtoAtUs = Math.max(this.#rtoAtUs, nowUs);
      this.host.setTimer(this.rtoTimer, this.#rtoAtUs);
    }
    if (this.#persistAtUs !== null) {
      this.#persistAtUs = Math.max(this.#persistAtUs, nowUs);
      this.host.setTimer(this.persistTimer, this.#persistAtUs);
    }
  }

  /** The window the peer advertised in its SYN, before any scaling applies. */
  initWindow(windowBytes: number, seq: number): void {
    this.sndWnd = windowBytes;
    this.#maxSndWnd = windowBytes;
    this.#sndWl1 = seq;
  }

  /** Restarts sequence space at `seq` (handshake done: data starts here). */
  resetTo(seq: number): void {
    this.sndUna = seq;
    this.sndNxt = seq;
    this.sndMax = seq;
    // RFC 6582: recover starts at the ISS, one below the first data byte, so
    // that three duplicate ACKs for the very first segment start a fast retransmit.
    this.#recover = seq - 1;
  }


  /** Processes the ACK part of an incoming segment; returns the bytes newly acknowledged. */
  onAck(a: AckInfo, nowUs: number): number {
    const ack = a.ack;
    if (ack > this.sndMax) return 0; // acknowledges data never sent
    let windowChanged = false;
    if (this.#sndWl1 < a.seq || (this.#sndWl1 === a.seq && this.#sndWl2 <= ack)) {
      windowChanged = a.windowBytes !== this.sndWnd;
      this.sndWnd = a.windowBytes;
      this.#sndWl1 = a.seq;
      this.#sndWl2 = ack;
      if (a.windowBytes > this.#maxSndWnd) this.#maxSndWnd = a.windowBytes;
      if (a.windowBytes > 0 && this.#persistAtUs !== null) this.#disarmPersist();
    }
    const mss = this.mssBytes;
    if (ack > this.sndUna) {
      const acked = ack - this.sndUna;
      this.stats.bytesAcked += acked;
      if (a.rttSampleUs !== null) this.rtt.sample(a.rttSampleUs);
      this.rtt.resetBackoff();
      this.sndUna = ack;
      if (this.sndNxt < ack) this.sndNxt = ack;
      if (this.#inRecovery) {
        if (ack >= this.#recover) {
          this.#inRecovery = false;
          this.#dupAcks = 0;
          this.cc.onRecoveryExit(this.flightBytes, nowUs);
        } else {
          // RFC 6582 §3.2 step 4: partial ACK.
          this.lastResendCause = 'partial-ack';
          this.#retransmit(this.sndUna, nowUs);
          this.cc.cwndBytes = Math.max(mss, this.cc.cwndBytes - acked + (acked >= mss ? mss : 0));
          if (!this.#partialAckSeen) {
            this.#partialAckSeen = true;
            this.#armRto(nowUs);
          }
        }
      } else {
        this.#dupAcks = 0;
        this.cc.onAck(acked, nowUs, this.rtt.srttUs, this.#cwndLimited, { rttUs: a.rttSampleUs, sndUna: this.sndUna, sndNxt: this.sndNxt });
      }
      // In recovery the timer restarts on the first partial ACK only (RFC 6582's "Impatient" variant): without SACK a burst of
      // losses is repaired one hole per RTT, and at an epoch-long RTT that takes seconds a timeout and go-back-N would not.
      if (this.sndUna >= this.sndMax) this.#disarmRto();
      else if (!this.#inRecovery || !this.#partialAckSeen) this.#armRto(nowUs);
      return acked;
    }
    const isDuplicate = ack === this.sndUna && !a.carriesData && !windowChanged && this.sndMax > this.sndUna;
    if (!isDuplicate) return 0;
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
      this.lastResendCause = 'fast';
      this.#retransmit(this.sndUna, nowUs);
      this.cc.cwndBytes = this.cc.ssthreshBytes + 3 * mss;
    }
    return 0;
  }

  /** Sends what the windows allow. */
  trySend(nowUs: number): void {
    const mss = this.mssBytes;
    if (this.options.slowStartAfterIdle && this.sndNxt === this.sndUna && this.#lastSendUs >= 0 && nowUs - this.#lastSendUs >= this.rtt.rtoUs) {
      this.cc.onIdleRestart(nowUs);
      this.#lastSendUs = nowUs;
    }
    const dataEnd = this.host.dataEndSeq();
    for (;;) {
      const wnd = Math.min(this.cc.cwndBytes + this.#limitedTransmitBytes(), this.sndWnd);
      const limit = this.sndUna + wnd;
      if (this.sndNxt < dataEnd) {
        const pending = dataEnd - this.sndNxt;
        const len = Math.min(mss, pending, limit - this.sndNxt);
        this.#cwndLimited = this.cc.cwndBytes <= this.sndWnd && limit - this.sndNxt < Math.min(mss, pending);
        if (len <= 0) break;
        // Sender-side silly window avoidance (RFC 1122 §4.2.3.4).
        if (len < mss && len < pending && len < this.#maxSndWnd / 2 && !this.#overrideSws) break;
        // Nagle: hold a short final segment while data is unacknowledged.
        if (len < mss && len === pending && this.options.nagle && this.sndNxt > this.sndUna && !this.closeRequested) break;
        const seq = this.sndNxt;
        const retransmit = seq < this.sndMax;
        if (retransmit) this.stats.retransmits++;
        this.#emitData(seq, len, retransmit, nowUs);
        this.sndNxt += len;
        if (this.sndNxt > this.sndMax) this.sndMax = this.sndNxt;
        if (this.#rtoAtUs === null) this.#armRto(nowUs);
        continue;
      }
      if (this.closeRequested && this.sndNxt === dataEnd && (this.finSeq === null || this.sndNxt === this.finSeq)) {
        this.finSeq = dataEnd;
        const retransmit = this.sndNxt < this.sndMax;
        if (retransmit) this.stats.retransmits++;
        this.#emitFin(dataEnd, retransmit, nowUs);
        this.sndNxt = dataEnd + 1;
        if (this.sndNxt > this.sndMax) this.sndMax = this.sndNxt;
        if (this.#rtoAtUs === null) this.#armRto(nowUs);
      }
      break;
    }
    // Data waits and nothing is in flight to bring an ACK: only the persist timer can move things on.
    if (this.sndNxt < dataEnd && this.sndUna === this.sndMax && this.#persistAtUs === null) this.#armPersist(nowUs);
  }

  /**
   * Limited transmit (RFC 3042): the first and second duplicate ACKs each let
   * one new segment out beyond cwnd, so a small window still draws the three
   * duplicates a fast retransmit needs.
   */
  #limitedTransmitBytes(): number {
    return this.#inRecovery || this.#dupAcks >= 3 ? 0 : this.#dupAcks * this.mssBytes;
  }

  /** The retransmission timer fired; returns false if nothing was outstanding. */
  onRto(nowUs: number): boolean {
    this.#rtoAtUs = null;
    this.rtt.backoff();
    if (this.sndUna >= this.sndMax) return false;
    this.stats.timeouts++;
    this.cc.onTimeout(this.sndMax - this.sndUna, nowUs);
    this.#recover = this.sndMax; // RFC 6582 §4 after a timeout
    this.#inRecovery = false;
    this.#dupAcks = 0;
    this.lastResendCause = 'rto';
    this.sndNxt = this.sndUna; // go back N
    this.trySend(nowUs);
    if (this.#rtoAtUs === null) this.#armRto(nowUs);
    return true;
  }

  onPersist(nowUs: number): void {
    this.#persistAtUs = null;
    if (this.sndWnd > 0) {
      // RFC 1122 §4.2.3.4: the override timeout sends what a small window allows.
      this.#overrideSws = true;
      this.trySend(nowUs);
      this.#overrideSws = false;
      return;
    }
    this.host.emitProbe(nowUs);
    this.#persistBackoff++;
    this.#armPersist(nowUs);
  }

  /** Arms the RTO from now (handshake segments use it too). */
  armRto(nowUs: number): void {
    this.#armRto(nowUs);
  }

  disarmRto(): void {
    this.#disarmRto();
  }

  #retransmit(seq: number, nowUs: number): void {
    this.stats.retransmits++;
    if (this.finSeq !== null && seq === this.finSeq) {
      this.#emitFin(seq, true, nowUs);
      return;
    }
    const len = Math.min(this.mssBytes, this.host.dataEndSeq() - seq);
    if (len > 0) this.#emitData(seq, len, true, nowUs);
  }

  #emitData(seq: number, len: number, retransmit: boolean, nowUs: number): void {
    this.stats.segmentsSent++;
    this.#lastSendUs = nowUs;
    this.host.emitData(seq, len, retransmit, nowUs);
  }

  #emitFin(seq: number, retransmit: boolean, nowUs: number): void {
    this.stats.segmentsSent++;
    this.#lastSendUs = nowUs;
    this.host.emitFin(seq, retransmit, nowUs);
  }

  #armRto(nowUs: number): void {
    this.#rtoAtUs = nowUs + this.rtt.rtoUs;
    this.host.setTimer(this.rtoTimer, this.#rtoAtUs);
  }

  #disarmRto(): void {
    if (this.#rtoAtUs === null) return;
    this.#rtoAtUs = null;
    this.host.cancelTimer(this.rtoTimer);
  }

  #armPersist(nowUs: number): void {
    const delayUs = Math.min(this.options.maxRtoUs, this.rtt.rtoUs * 2 ** this.#persistBackoff);
    this.#persistAtUs = nowUs + delayUs;
    this.host.setTimer(this.persistTimer, this.#persistAtUs);
  }

  #disarmPersist(): void {
    this.#persistAtUs = null;
    this.#persistBackoff = 0;
    this.host.cancelTimer(this.persistTimer);
  }
}
