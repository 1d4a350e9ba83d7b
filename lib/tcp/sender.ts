import { assert } from '../assert.js';
import { tsoSegmentBytes } from './tso.js';
import { createCongestionControl, type CongestionControl, type CongestionControlName } from './congestion/index.js';
import { RttEstimator } from './rtt.js';
import { SackScoreboard, type Hole } from './sack-scoreboard.js';
import { expectSnapshot, parseSnapshot, tcpSenderSnapshotSchema, TCP_SNAPSHOT_VERSION, type TcpSenderSnapshot, type TimeoutUndo } from './snapshot.js';

/**
 * RFC 8985 §7.2 and Linux tcp_schedule_loss_probe: the probe timeout is two
 * smoothed RTTs, plus the peer's worst-case delayed ACK (Linux: TCP_RTO_MIN)
 * when a single segment is in flight, else plus two ticks (TCP_TIMEOUT_MIN,
 * 2 ms at HZ=1000); before any RTT sample, the initial RTO.
 */
const TLP_MIN_EXTRA_US = 2_000;

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
  /**
   * Whether the sender's own NIC has room for a segment of `payloadBytes`
   * (TCP small queues, and a full device queue pushing back as Linux's
   * qdisc does to a local sender). False: the segment stays unsent, and the
   * host calls trySend once there is room. Absent: always room.
   */
  mayTransmit?(payloadBytes: number, nowUs: number): boolean;
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
  /** Double the RTO on each expiry (RFC 6298 §5.5); on when not given. */
  readonly rtoBackoff?: boolean;
  readonly slowStartAfterIdle: boolean;
  readonly nagle: boolean;
  /**
   * TSO/GSO: new data goes in segments of up to this many bytes (whole MSS
   * multiples), for a NIC that cuts them into MSS-sized packets; absent or
   * below two MSS: one MSS per segment. Retransmissions and SACK recovery
   * send one MSS at a time.
   */
  readonly tsoBytes?: number;
  /**
   * Tail loss probes (RACK-TLP, RFC 8985 §7, as Linux tcp_early_retrans=3):
   * with SACK, a tail left unacknowledged for about two round trips is
   * probed rather than left to the retransmission timer. On when not given.
   */
  readonly tlp?: boolean;
}

export interface SenderStats {
  segmentsSent: number;
  retransmits: number;
  fastRetransmits: number;
  timeouts: number;
  dupAcksReceived: number;
  bytesAcked: number;
  /** Timeouts found spurious and undone (Linux's TCPLossUndo): cwnd and ssthresh came back. */
  timeoutsUndone: number;
  /** Slow starts the controller ended by itself (HyStart: an ACK train or a delay increase), and the windows they ended at, summed. */
  slowStartExits: number;
  slowStartExitCwndBytesTotal: number;
  /** ACKs of data never sent (above snd.max), dropped with their window (RFC 9293 3.10.7.4): a forged or corrupt peer. */
  acksAboveSndMax: number;
  /** Tail loss probes sent (Linux TCPLossProbes), and those whose retransmission repaired a loss (TCPLossProbeRecovery). */
  lossProbes: number;
  lossProbeRecoveries: number;
  /**
   * Segments the connection's state does not take (RFC 9293 3.10.7): a reset
   * (never sent by this model), anything reaching a closed endpoint, a
   * listener's non-SYN, a SYN-ACK of another handshake, an ACK of no SYN we
   * sent. Dropped, as TCP does; a live peer's next segment or its
   * retransmission moves the handshake on.
   */
  segmentsOutOfState: number;
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
  /** SACK blocks (RFC 2018) as flat [start, end) pairs; empty when there are none. */
  readonly sackBlocks: readonly number[];
  /** When the segment whose timestamp this ACK echoes (RFC 7323 TSecr) was sent; null without timestamps. */
  readonly echoedSentAtUs: number | null;
}

/**
 * The sending half of TCP: congestion control; loss recovery by SACK
 * (RFC 2018, RFC 6675 with PRR, RFC 6937) when the peer offered it, else
 * NewReno (RFC 5681 / RFC 6582); RTO per RFC 6298 with go-back-N that skips
 * SACKed data, Nagle and sender SWS avoidance, zero-window persist probes and
 * slow-start restart. Used by the guest's and client's TCP endpoints and by
 * the acker's wire side.
 */
export class TcpSender {
  /** What made the sender resend last: a timeout, three duplicate ACKs, or a partial ACK during recovery (tracing names retransmissions by it). */
  lastResendCause: 'rto' | 'fast' | 'partial-ack' | 'probe' | null = null;
  readonly stats: SenderStats = { segmentsSent: 0, retransmits: 0, fastRetransmits: 0, timeouts: 0, dupAcksReceived: 0, bytesAcked: 0, timeoutsUndone: 0, slowStartExits: 0, slowStartExitCwndBytesTotal: 0, acksAboveSndMax: 0, lossProbes: 0, lossProbeRecoveries: 0, segmentsOutOfState: 0 };
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
  /** The retransmission timer is armed as a tail loss probe (Linux ICSK_TIME_LOSS_PROBE shares the timer too). */
  #probeArmed = false;
  /** The RTO deadline a pending probe stands in front of. */
  #probeRtoAtUs = 0;
  /**
   * When the pending probe is due: new data moves it later without moving
   * the timer (a re-arm per segment sent cost the simulator a tenth of its
   * time); a timer that fires before it is armed again for it.
   */
  #probeDueAtUs = 0;
  /** RFC 8985 TLPRxtOut / Linux tlp_high_seq: snd.max when the outstanding probe went; null when none is. */
  #tlpHighSeq: number | null = null;
  /** The outstanding probe retransmitted data (rather than sending new data). */
  #tlpRetrans = false;
  /** When the outstanding probe went: an ACK echoing an earlier send shows the original arrived. */
  #tlpSentAtUs = 0;
  /** Deadline of the persist timer while it is armed, else null. */
  #persistAtUs: number | null = null;
  #persistBackoff = 0;
  #lastSendUs = -1;
  #cwndLimited = false;
  /** True only inside onPersist: never in a snapshot. */
  #overrideSws = false;
  /** The peer offered SACK-permitted and so did we (set at the handshake). */
  sackEnabled = false;
  readonly #scoreboard = new SackScoreboard();
  /** RFC 6675 HighRxt: one past the highest byte retransmitted by SACK recovery (kept across recoveries, reset by a timeout). */
  #highRxt = 0;
  #prrDeliveredBytes = 0;
  #prrOutBytes = 0;
  #recoverFsBytes = 0;
  /** What PRR lets out before the next ACK (may go below zero by the part of a segment it overran). */
  #prrBudgetBytes = 0;
  /** Set by a timeout until its loss episode ends (ack ≥ recover) or proves real or spurious. */
  #timeoutUndo: TimeoutUndo | null = null;
  /**
   * Linux's Loss state: from a timeout until the ACK reaches `recover` (no
   * fast recovery can begin before: it needs an ACK at or above `recover`);
   * `progressed`: an ACK advanced snd.una since the latest timeout (Linux's
   * icsk_retransmits back at 0).
   */
  #lossEpisode: { progressed: boolean } | null = null;
  readonly rtoTimer: string;
  readonly persistTimer: string;

  constructor(
    readonly options: SenderOptions,
    readonly host: SenderHost,
    readonly timerPrefix: string,
    firstSeq: number,
  ) {
    this.mssBytes = options.mssBytes;
    this.cc = createCongestionControl(options.congestionControl, { mssBytes: options.mssBytes, initialWindowBytes: options.initialWindowSegments * options.mssBytes, hystart: options.hystart, tsoBytes: options.tsoBytes });
    this.rtt = new RttEstimator(options.minRtoUs, options.maxRtoUs, options.initialRtoUs);
    this.sndUna = firstSeq;
    this.sndNxt = firstSeq;
    this.sndMax = firstSeq;
    this.#recover = firstSeq;
    // Built once: a name built per use is a new string, hashed again at every timer lookup.
    this.rtoTimer = `${timerPrefix}.rto`;
    this.persistTimer = `${timerPrefix}.persist`;
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
  /** Bytes the peer SACKed above sndUna. */
  get sackedBytes(): number {
    return this.#scoreboard.sackedBytes;
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
      // What a probe left behind once it is over means nothing: written as zeros, so that equal behaviour snapshots equal.
      ...(this.#probeArmed || this.#tlpHighSeq !== null ? { tlp: { probeArmed: this.#probeArmed, rtoBehindProbeAtUs: this.#probeArmed ? this.#probeRtoAtUs : 0, probeDueAtUs: this.#probeArmed ? this.#probeDueAtUs : 0, highSeq: this.#tlpHighSeq, retrans: this.#tlpHighSeq !== null && this.#tlpRetrans, sentAtUs: this.#tlpHighSeq !== null ? this.#tlpSentAtUs : 0 } } : {}),
      persistAtUs: this.#persistAtUs,
      persistBackoff: this.#persistBackoff,
      lastSendUs: this.#lastSendUs,
      cwndLimited: this.#cwndLimited,
      sackEnabled: this.sackEnabled,
      sacked: this.#scoreboard.snapshot(),
      highRxt: this.#highRxt,
      prrDeliveredBytes: this.#prrDeliveredBytes,
      prrOutBytes: this.#prrOutBytes,
      recoverFsBytes: this.#recoverFsBytes,
      prrBudgetBytes: this.#prrBudgetBytes,
      ...(this.#timeoutUndo !== null ? { timeoutUndo: this.#timeoutUndo } : {}),
      ...(this.#lossEpisode !== null ? { lossEpisode: { ...this.#lossEpisode } } : {}),
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
    this.#probeArmed = s.tlp?.probeArmed ?? false;
    this.#probeRtoAtUs = s.tlp?.rtoBehindProbeAtUs ?? 0;
    this.#probeDueAtUs = s.tlp?.probeDueAtUs ?? 0;
    this.#tlpHighSeq = s.tlp?.highSeq ?? null;
    this.#tlpRetrans = s.tlp?.retrans ?? false;
    this.#tlpSentAtUs = s.tlp?.sentAtUs ?? 0;
    this.#persistAtUs = s.persistAtUs;
    this.#persistBackoff = s.persistBackoff;
    this.#lastSendUs = s.lastSendUs;
    this.#cwndLimited = s.cwndLimited;
    this.#overrideSws = false;
    this.sackEnabled = s.sackEnabled;
    this.#scoreboard.restore(s.sacked);
    this.#highRxt = s.highRxt;
    this.#prrDeliveredBytes = s.prrDeliveredBytes;
    this.#prrOutBytes = s.prrOutBytes;
    this.#recoverFsBytes = s.recoverFsBytes;
    this.#prrBudgetBytes = s.prrBudgetBytes;
    this.#timeoutUndo = s.timeoutUndo ?? null;
    this.#lossEpisode = s.lossEpisode !== undefined ? { ...s.lossEpisode } : null;
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
    if (ack > this.sndMax) {
      this.stats.acksAboveSndMax++; // acknowledges data never sent
      return 0;
    }
    let windowChanged = false;
    if (this.#sndWl1 < a.seq || (this.#sndWl1 === a.seq && this.#sndWl2 <= ack)) {
      windowChanged = a.windowBytes !== this.sndWnd;
      this.sndWnd = a.windowBytes;
      this.#sndWl1 = a.seq;
      this.#sndWl2 = ack;
      if (a.windowBytes > 0 && this.#persistAtUs !== null) this.#disarmPersist();
      if (a.windowBytes > this.#maxSndWnd) this.#maxSndWnd = a.windowBytes;
    }
    const sackedBefore = this.#scoreboard.sackedBytes;
    let newlySacked = 0;
    if (this.sackEnabled) {
      const low = Math.max(ack, this.sndUna);
      for (let i = 0; i + 1 < a.sackBlocks.length; i += 2) newlySacked += this.#scoreboard.add(a.sackBlocks[i]!, a.sackBlocks[i + 1]!, low, this.sndMax);
    }
    const mss = this.mssBytes;
    if (this.#tlpHighSeq !== null) this.#judgeProbe(ack, ack > this.sndUna || newlySacked > 0 || a.carriesData || windowChanged, a.echoedSentAtUs, nowUs);
    if (ack > this.sndUna) {
      if (this.#timeoutUndo !== null) this.#judgeTimeout(a, ack);
      const acked = ack - this.sndUna;
      this.stats.bytesAcked += acked;
      // RFC 6298's note after §5.7, as Linux reads it (tcp_ack_update_rtt): only a valid RTT sample ends the backoff. Without
      // timestamps (the acker's wire side, Karn's rule) that is an ACK of data sent once since the last resend.
      if (a.rttSampleUs !== null) {
        this.rtt.sample(a.rttSampleUs, ack, this.sndMax);
        this.rtt.resetBackoff();
      }
      if (this.#lossEpisode !== null) {
        this.#lossEpisode.progressed = true;
        if (ack >= this.#recover) this.#lossEpisode = null;
      }
      this.sndUna = ack;
      this.#scoreboard.advance(ack);
      if (this.sndNxt < ack) this.sndNxt = ack;
      if (this.#highRxt < ack) this.#highRxt = ack;
      if (this.#inRecovery) {
        if (ack >= this.#recover) {
          this.#inRecovery = false;
          this.#dupAcks = 0;
          this.cc.onRecoveryExit(this.flightBytes, nowUs);
        } else if (this.sackEnabled) {
          this.#prrOnAck(acked + this.#scoreboard.sackedBytes - sackedBefore);
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
        const ssthreshBefore = this.cc.ssthreshBytes;
        this.cc.onAck(acked, nowUs, this.rtt.srttUs, this.#cwndLimited, { rttUs: a.rttSampleUs, sndUna: this.sndUna, sndNxt: this.sndNxt });
        if (this.cc.ssthreshBytes !== ssthreshBefore) {
          this.stats.slowStartExits++;
          this.stats.slowStartExitCwndBytesTotal += this.cc.cwndBytes;
        }
        if (this.sackEnabled && this.#lossDetected(ack)) this.#enterSackRecovery(acked + this.#scoreboard.sackedBytes - sackedBefore, nowUs);
      }
      // Without SACK, in recovery the timer restarts on the first partial ACK only (RFC 6582's "Impatient" variant): a
      // burst of losses is repaired one hole per RTT, and at an epoch-long RTT that takes seconds a timeout and go-back-N
      // would not. With SACK every hole is repaired within a round trip, and the timer restarts on every ACK as in Linux.
      if (this.sndUna >= this.sndMax) this.#disarmRto();
      else if (!this.#inRecovery || this.sackEnabled || !this.#partialAckSeen) this.#armTimer(nowUs);
      return acked;
    }
    // With SACK, an ACK that SACKs new data is a duplicate (RFC 6675 §2); one without blocks counts as RFC 5681 says.
    const classicDuplicate = ack === this.sndUna && !a.carriesData && !windowChanged && a.sackBlocks.length === 0;
    const isDuplicate = this.sndMax > this.sndUna && ack === this.sndUna && (newlySacked > 0 || classicDuplicate);
    if (!isDuplicate) return 0;
    this.stats.dupAcksReceived++;
    this.#dupAcks++;
    if (this.sackEnabled) {
      if (this.#inRecovery) this.#prrOnAck(newlySacked);
      else if (this.#lossDetected(ack)) this.#enterSackRecovery(newlySacked, nowUs);
    } else if (this.#inRecovery) {
      this.cc.cwndBytes += mss; // inflate: a segment has left the network
    } else if (this.#dupAcks === 3 && ack > this.#recover) {
      assert(this.#lossEpisode === null, () => `fast recovery at ${ack} inside a timeout's loss episode (recover ${this.#recover})`);
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

  // ── SACK loss recovery (RFC 6675 with PRR, RFC 6937) ───────────────────

  /**
   * RFC 6675 §5: DupThresh duplicates, or SACK shows the first unacknowledged
   * segment lost; never twice for one window: not before the ACK reaches the
   * last recovery's end (`recover`, one past its highest byte sent). At it, a
   * loss of the next segment is a new one (RFC 6675 §5: HighACK ≥
   * RecoveryPoint; Linux holds SACK flows no further).
   */
  #lossDetected(ack: number): boolean {
    if (this.sndUna >= this.sndMax || ack < this.#recover) return false;
    return this.#dupAcks >= 3 || this.#scoreboard.lostBelow(this.sndUna, this.mssBytes) > this.sndUna || this.#probeSacked();
  }

  /**
   * The outstanding probe's segment is SACKed while data below it is not:
   * that data went before the probe and was lost, as RACK (RFC 8985 §6)
   * concludes from send times; this model has no RACK, and on its FIFO
   * links nothing overtakes. Without it a probe's SACK, one duplicate ACK,
   * left the hole to an RTO the probe had pushed back (vopr seed 52713).
   */
  #probeSacked(): boolean {
    return this.#tlpHighSeq !== null && this.#scoreboard.sackedRangeEnd(this.#tlpHighSeq - 1) !== null;
  }

  #enterSackRecovery(deliveredBytes: number, nowUs: number): void {
    assert(this.sndNxt === this.sndMax, () => `SACK recovery from ${this.sndNxt} below snd.max ${this.sndMax}`);
    assert(this.#lossEpisode === null, () => `SACK recovery at ${this.sndUna} inside a timeout's loss episode (recover ${this.#recover})`);
    this.#inRecovery = true;
    this.#recover = this.sndMax;
    // Retransmissions of an earlier recovery still in flight are not sent again (Linux keeps them marked too).
    this.#highRxt = Math.max(this.#highRxt, this.sndUna);
    this.#recoverFsBytes = this.sndMax - this.sndUna;
    this.#prrDeliveredBytes = 0;
    this.#prrOutBytes = 0;
    this.cc.onFastRetransmit(this.flightBytes, nowUs);
    this.stats.fastRetransmits++;
    this.lastResendCause = 'fast';
    // Duplicates without SACK blocks (a peer that SACKs nothing it holds): the first unacknowledged segment is the hole.
    if (this.#scoreboard.isEmpty && this.#highRxt === this.sndUna) this.#resend({ start: this.sndUna, end: Math.min(this.sndMax, this.sndUna + this.mssBytes) }, nowUs);
    this.#prrOnAck(deliveredBytes);
  }

  /** RFC 6937: how much the ACK just processed lets out; cwnd follows (pipe + what may be sent). */
  #prrOnAck(deliveredBytes: number): void {
    const mss = this.mssBytes;
    this.#prrDeliveredBytes += deliveredBytes;
    const pipe = this.#pipe();
    const ssthresh = this.cc.ssthreshBytes;
    let sendBytes: number;
    if (pipe > ssthresh) {
      sendBytes = Math.ceil((this.#prrDeliveredBytes * ssthresh) / Math.max(1, this.#recoverFsBytes)) - this.#prrOutBytes;
    } else {
      // PRR-SSRB: grow back toward ssthresh by at most one segment more than was delivered.
      sendBytes = Math.min(ssthresh - pipe, Math.max(this.#prrDeliveredBytes - this.#prrOutBytes, deliveredBytes) + mss);
    }
    sendBytes = Math.max(Math.floor(sendBytes), 0);
    if (this.#prrOutBytes === 0 && sendBytes < mss) sendBytes = mss; // the fast retransmit itself always goes (as Linux)
    this.#prrBudgetBytes = sendBytes;
    this.cc.cwndBytes = Math.max(mss, pipe + sendBytes);
  }

  /**
   * RFC 6675 SetPipe, in closed form over the scoreboard: what is outstanding,
   * less what is SACKed, less the holes deemed lost, plus the lost bytes
   * already retransmitted (below HighRxt).
   */
  #pipe(): number {
    const una = this.sndUna;
    const lostBelow = this.#scoreboard.lostBelow(una, this.mssBytes);
    const holesBelow = (seq: number): number => seq - una - this.#scoreboard.sackedBelow(seq);
    const pipe = this.sndMax - una - this.#scoreboard.sackedBytes - holesBelow(lostBelow) + holesBelow(Math.min(Math.max(this.#highRxt, una), lostBelow));
    assert(pipe >= 0, () => `negative pipe ${pipe}`);
    return pipe;
  }

  /**
   * RFC 6675 NextSeg: a lost hole above HighRxt (rule 1), else new data
   * (rule 2, the caller's), else, when `anyHole`, any hole above HighRxt
   * below the highest SACKed byte (rule 3).
   */
  #nextHole(anyHole: boolean): Hole | null {
    const una = this.sndUna;
    const hole = this.#scoreboard.holeFrom(Math.max(this.#highRxt, una));
    if (hole === null) return null;
    return anyHole || hole.start < this.#scoreboard.lostBelow(una, this.mssBytes) ? hole : null;
  }

  #sendInSackRecovery(nowUs: number): void {
    const mss = this.mssBytes;
    while (this.#prrBudgetBytes > 0) {
      const before = this.#prrOutBytes;
      if (this.host.mayTransmit !== undefined && !this.host.mayTransmit(mss, nowUs)) break;
      const lost = this.#nextHole(false);
      if (lost !== null) this.#resend(lost, nowUs);
      else if (!this.#sendNext(true, nowUs)) {
        const other = this.#nextHole(true);
        if (other === null) break;
        this.#resend(other, nowUs);
      } else {
        this.#prrOutBytes += this.#lastSentBytes;
      }
      const sent = this.#prrOutBytes - before;
      if (sent <= 0) break;
      this.#prrBudgetBytes -= sent;
      assert(sent <= mss, () => `one step of recovery sent ${sent} bytes`);
    }
  }

  /** Retransmits the front of a hole, up to one segment. */
  #resend(hole: Hole, nowUs: number): void {
    const seq = hole.start;
    const len = Math.min(this.mssBytes, hole.end - seq);
    assert(len > 0 && seq >= this.sndUna && hole.end <= this.sndMax, () => `resend [${seq}, ${hole.end}) outside [${this.sndUna}, ${this.sndMax})`);
    this.#retransmit(seq, nowUs, len);
    this.#highRxt = seq + len;
    this.#prrOutBytes += len;
    if (this.#rtoAtUs === null) this.#armRto(nowUs);
  }

  /** Sends what the windows allow. */
  trySend(nowUs: number): void {
    // What every ACK and every send keeps (the snapshot schema demands it too): acknowledged ≤ next ≤ highest sent.
    assert(this.sndUna <= this.sndNxt && this.sndNxt <= this.sndMax, () => `sequence out of order: una ${this.sndUna}, nxt ${this.sndNxt}, max ${this.sndMax}`);
    if (this.options.slowStartAfterIdle && this.sndNxt === this.sndUna && this.#lastSendUs >= 0 && nowUs - this.#lastSendUs >= this.rtt.rtoUs) {
      this.cc.onIdleRestart(nowUs);
      this.#lastSendUs = nowUs;
    }
    if (this.#inRecovery && this.sackEnabled) this.#sendInSackRecovery(nowUs);
    else while (this.#sendNext(false, nowUs));
    // Data waits and nothing is in flight to bring an ACK: only the persist timer can move things on.
    if (this.sndNxt < this.host.dataEndSeq() && this.sndUna === this.sndMax && this.#persistAtUs === null) this.#armPersist(nowUs);
  }

  /**
   * One past the last byte the congestion and peer windows let out now: a
   * whole byte, as CUBIC grows cwnd by fractions of one (a segment cut at a
   * fraction put every later sequence number between bytes).
   */
  #windowLimit(): number {
    const rwndLimit = this.sndUna + this.sndWnd;
    // SACKed bytes have left the network (RFC 6675's pipe); they stand in for limited transmit too.
    if (this.sackEnabled) return Math.min(rwndLimit, Math.floor(this.sndUna + this.#scoreboard.sackedBelow(this.sndNxt) + this.cc.cwndBytes));
    return Math.min(rwndLimit, Math.floor(this.sndUna + this.cc.cwndBytes + this.#limitedTransmitBytes()));
  }

  /** Bytes of data the last #sendNext put on the wire (0 for a FIN). */
  #lastSentBytes = 0;

  /**
   * Sends the segment at sndNxt (new data, or go-back-N after a timeout,
   * skipping what the peer SACKed) if the windows let it out (in SACK
   * recovery, where PRR decides how much, only the peer's), or the FIN;
   * returns whether data went and another may follow.
   */
  #sendNext(inSackRecovery: boolean, nowUs: number): boolean {
    this.#lastSentBytes = 0;
    const mss = this.mssBytes;
    const dataEnd = this.host.dataEndSeq();
    if (this.sndNxt < this.sndMax && this.sackEnabled) {
      const sackedEnd = this.#scoreboard.sackedRangeEnd(this.sndNxt);
      if (sackedEnd !== null) this.sndNxt = sackedEnd;
    }
    // After the skip: the SACKed bytes below sndNxt have left the network and do not count against cwnd.
    const limit = inSackRecovery ? this.sndUna + this.sndWnd : this.#windowLimit();
    if (this.sndNxt < dataEnd) {
      const pending = dataEnd - this.sndNxt;
      const holeEnd = this.sndNxt < this.sndMax && this.sackEnabled ? (this.#scoreboard.holeFrom(this.sndNxt)?.end ?? dataEnd) : dataEnd;
      const fresh = this.sndNxt >= this.sndMax && !inSackRecovery;
      let len = Math.min(fresh ? tsoSegmentBytes(this.options.tsoBytes, mss) : mss, pending, limit - this.sndNxt, holeEnd - this.sndNxt);
      // A TSO segment is whole packets: a short tail goes alone, through the checks below as any short segment.
      if (len > mss) len -= len % mss;
      this.#cwndLimited = this.cc.cwndBytes <= this.sndWnd && limit - this.sndNxt < Math.min(mss, pending);
      if (len <= 0) return false;
      // Sender-side silly window avoidance (RFC 1122 §4.2.3.4).
      const holeSized = len === holeEnd - this.sndNxt; // a small hole between SACKed ranges goes as it is
      if (len < mss && len < pending && len < this.#maxSndWnd / 2 && !this.#overrideSws && !holeSized) return false;
      // Nagle: hold a short final segment while data is unacknowledged.
      if (len < mss && len === pending && this.options.nagle && this.sndNxt > this.sndUna && !this.closeRequested) return false;
      if (this.host.mayTransmit !== undefined && !this.host.mayTransmit(len, nowUs)) return false;
      const seq = this.sndNxt;
      assert(Number.isSafeInteger(seq) && Number.isSafeInteger(len), () => `a segment [${seq}, +${len}) between bytes`);
      const retransmit = seq < this.sndMax;
      if (retransmit) this.stats.retransmits++;
      // Data in flight brings ACKs: the persist timer of an idle connection gives way, as Linux's probe timer gives its slot to the retransmission timer.
      if (this.#persistAtUs !== null) this.#disarmPersist();
      this.#emitData(seq, len, retransmit, nowUs);
      this.#lastSentBytes = len;
      this.sndNxt += len;
      if (this.sndNxt > this.sndMax) this.sndMax = this.sndNxt;
      // New data restarts a pending probe (RFC 8985 §7.2); a running RTO keeps its deadline (RFC 6298 §5.1).
      if (this.#rtoAtUs === null) this.#armTimer(nowUs);
      else if (this.#probeArmed && !retransmit) {
        this.#probeDueAtUs = this.#probeAtUs(nowUs, this.#probeRtoAtUs);
        // Sooner only when a second segment takes the single segment's delayed-ACK allowance away: then the timer moves.
        if (this.#probeDueAtUs < this.#rtoAtUs!) this.#armTimer(nowUs, this.#probeRtoAtUs);
      }
      return true;
    }
    if (this.closeRequested && this.sndNxt === dataEnd && (this.finSeq === null || this.sndNxt === this.finSeq)) {
      this.finSeq = dataEnd;
      const retransmit = this.sndNxt < this.sndMax;
      if (retransmit) this.stats.retransmits++;
      if (this.#persistAtUs !== null) this.#disarmPersist(); // a FIN in flight brings an ACK too
      this.#emitFin(dataEnd, retransmit, nowUs);
      this.sndNxt = dataEnd + 1;
      if (this.sndNxt > this.sndMax) this.sndMax = this.sndNxt;
      if (this.#rtoAtUs === null) this.#armRto(nowUs);
    }
    return false;
  }

  /**
   * Limited transmit (RFC 3042): the first and second duplicate ACKs each let
   * one new segment out beyond cwnd, so a small window still draws the three
   * duplicates a fast retransmit needs.
   */
  #limitedTransmitBytes(): number {
    return this.#inRecovery || this.#dupAcks >= 3 ? 0 : this.#dupAcks * this.mssBytes;
  }

  /**
   * The first ACK of a timeout's episode that advances snd.una tells whether
   * the timeout was spurious: it echoes a send from before the retransmission
   * when an original got through (the timer fired on delay, not loss: an epoch
   * held the output, or a slow commit). Then cwnd and ssthresh come back and
   * the segments still marked for go-back-N count as in flight again, as
   * Linux's tcp_undo_cwnd_reduction unmarks them. An ACK echoing the
   * retransmission proves the loss real (stricter than Linux, which keeps
   * looking: in a FIFO network a later original cannot overtake it).
   */
  #judgeTimeout(a: AckInfo, ack: number): void {
    const undo = this.#timeoutUndo!;
    if (a.echoedSentAtUs !== null && a.echoedSentAtUs < undo.retransmittedAtUs) {
      this.cc.cwndBytes = Math.max(this.cc.cwndBytes, undo.priorCwndBytes);
      this.cc.ssthreshBytes = Math.max(this.cc.ssthreshBytes, undo.priorSsthreshBytes);
      if (this.sndNxt < this.sndMax) this.sndNxt = this.sndMax;
      this.stats.timeoutsUndone++;
      this.#timeoutUndo = null;
    } else if (a.echoedSentAtUs !== null || ack >= this.#recover) {
      this.#timeoutUndo = null;
    }
  }

  /** The retransmission timer fired (as a probe, or as the RTO); returns false if nothing was outstanding. */
  onRto(nowUs: number): boolean {
    this.#rtoAtUs = null;
    if (this.#probeArmed) {
      // Duplicate ACKs may have started a recovery since (Linux re-arms the RTO then): the timer is the RTO it stood in front of.
      const due = this.#probeMayGo() ? this.#probeDueAtUs : this.#probeRtoAtUs;
      if (nowUs < due) {
        // New data went since the timer was set (the probe is due later), or the RTO is not due yet.
        this.#probeArmed = this.#probeMayGo();
        this.#rtoAtUs = due;
        this.host.setTimer(this.rtoTimer, due);
        return true;
      }
      this.#probeArmed = false;
      if (this.#probeMayGo()) return this.#sendProbe(nowUs);
    }
    if (this.options.rtoBackoff !== false) this.rtt.backoff();
    if (this.sndUna >= this.sndMax) return false;
    this.stats.timeouts++;
    // Linux keeps what the first timeout of an episode took (a backed-off repeat does not overwrite it).
    this.#timeoutUndo ??= { priorCwndBytes: this.cc.cwndBytes, priorSsthreshBytes: Math.max(this.cc.ssthreshBytes, Math.floor((this.cc.cwndBytes * 3) / 4)), retransmittedAtUs: nowUs };
    // Linux's tcp_enter_loss reduces ssthresh only where no reduction was made inside this window: outside any recovery,
    // once the ACK has reached the last episode's end, or at a timeout after an ACK advanced since the one before. A
    // repeated timeout, or one inside a fast recovery, keeps what the episode's first reduction set.
    assert(this.#lossEpisode === null || !this.#inRecovery, 'a fast recovery inside a timeout\'s loss episode');
    const newEpisode = this.sndUna >= this.#recover || (this.#lossEpisode === null ? !this.#inRecovery : this.#lossEpisode.progressed);
    this.cc.onTimeout(this.sndMax - this.sndUna, nowUs, newEpisode);
    this.#lossEpisode = { progressed: false };
    this.#recover = this.sndMax; // RFC 6582 §4 after a timeout
    this.#tlpHighSeq = null; // Linux tcp_enter_loss: the timeout repairs whatever a probe was for
    this.#inRecovery = false;
    this.#dupAcks = 0;
    this.#highRxt = this.sndUna;
    this.lastResendCause = 'rto';
    this.sndNxt = this.sndUna; // go back N
    this.trySend(nowUs);
    if (this.#rtoAtUs === null) this.#armRto(nowUs);
    return true;
  }

  onPersist(nowUs: number): void {
    // Armed only with nothing in flight, and disarmed by the first data to go.
    assert(this.sndUna === this.sndMax, () => `the persist timer fired with [${this.sndUna}, ${this.sndMax}) in flight`);
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

  #retransmit(seq: number, nowUs: number, maxBytes = this.mssBytes): void {
    this.stats.retransmits++;
    if (this.finSeq !== null && seq === this.finSeq) {
      this.#emitFin(seq, true, nowUs);
      return;
    }
    const len = Math.min(maxBytes, this.host.dataEndSeq() - seq);
    if (len > 0) this.#emitData(seq, len, true, nowUs);
  }

  #emitData(seq: number, len: number, retransmit: boolean, nowUs: number): void {
    // Packets, as Linux counts a TSO segment's (segs_out): what the wire carries whatever the NIC's offload.
    this.stats.segmentsSent += Math.ceil(len / this.mssBytes);
    this.#lastSendUs = nowUs;
    this.host.emitData(seq, len, retransmit, nowUs);
  }

  #emitFin(seq: number, retransmit: boolean, nowUs: number): void {
    this.stats.segmentsSent++;
    this.#lastSendUs = nowUs;
    this.host.emitFin(seq, retransmit, nowUs);
  }

  #armRto(nowUs: number): void {
    this.#probeArmed = false;
    this.#rtoAtUs = nowUs + this.rtt.rtoUs;
    this.host.setTimer(this.rtoTimer, this.#rtoAtUs);
  }

  /** The probe timeout from now, no later than the RTO would have fired (Linux: min with tcp_rto_delta_us): then it goes as a probe instead. */
  #probeAtUs(nowUs: number, rtoAtUs: number): number {
    const singleSegment = this.sndMax - this.sndUna <= this.mssBytes;
    const ptoUs = this.rtt.hasSample ? 2 * this.rtt.srttUs + (singleSegment ? this.options.minRtoUs : TLP_MIN_EXTRA_US) : this.options.initialRtoUs;
    return Math.min(Math.ceil(nowUs + ptoUs), rtoAtUs);
  }

  /**
   * Arms the retransmission timer as a tail loss probe when one may go (RFC
   * 8985 §7.2, Linux tcp_schedule_loss_probe), at the probe timeout or at
   * `rtoAtUs` if that comes first; else as the RTO at `rtoAtUs`.
   */
  #armTimer(nowUs: number, rtoAtUs = nowUs + this.rtt.rtoUs): void {
    if (this.#probeMayGo()) {
      const probeAtUs = this.#probeAtUs(nowUs, rtoAtUs);
      this.#probeArmed = true;
      this.#probeRtoAtUs = rtoAtUs;
      this.#probeDueAtUs = probeAtUs;
      this.#rtoAtUs = probeAtUs;
      this.host.setTimer(this.rtoTimer, probeAtUs);
      return;
    }
    this.#probeArmed = false;
    this.#rtoAtUs = rtoAtUs;
    this.host.setTimer(this.rtoTimer, rtoAtUs);
  }

  /**
   * A probe may be scheduled: SACK on, data in flight, in the open state (no
   * recovery, no timeout episode or go-back-N under way) and no probe
   * outstanding, as Linux requires (CA_Open, tlp_high_seq 0).
   */
  #probeMayGo(): boolean {
    return this.options.tlp !== false && this.sackEnabled && !this.#inRecovery && this.#tlpHighSeq === null && this.#timeoutUndo === null && this.sndMax > this.sndUna && this.sndNxt === this.sndMax && this.sndUna >= this.#recover;
  }

  /**
   * RFC 8985 §7.3, Linux tcp_send_loss_probe: one new segment if the peer's
   * window lets it out (past cwnd and Nagle), else, with nothing new to send,
   * the highest segment again; then the RTO. New data the peer's window
   * holds back makes no probe, as in Linux.
   */
  #sendProbe(nowUs: number): boolean {
    if (this.sndUna >= this.sndMax) return false;
    const mss = this.mssBytes;
    const pending = this.host.dataEndSeq() - this.sndNxt;
    let sent = false;
    // Armed only in the open state, and only a timeout (this timer) goes back N: nothing was sent below snd.max since.
    assert(this.sndNxt === this.sndMax, () => `a probe with snd.nxt ${this.sndNxt} below snd.max ${this.sndMax}`);
    if (pending > 0) {
      const len = Math.min(mss, pending);
      if (this.sndNxt + len <= this.sndUna + this.sndWnd && (this.host.mayTransmit === undefined || this.host.mayTransmit(len, nowUs))) {
        this.#emitData(this.sndNxt, len, false, nowUs);
        this.sndNxt += len;
        this.sndMax = this.sndNxt;
        this.#tlpRetrans = false;
        sent = true;
      }
    } else {
      // A FIN is the last segment when it went; else the last MSS of data.
      const start = this.finSeq !== null && this.sndMax === this.finSeq + 1 ? this.finSeq : Math.max(this.sndUna, this.sndMax - mss);
      this.lastResendCause = 'probe';
      this.#retransmit(start, nowUs, this.sndMax - start);
      this.#tlpRetrans = true;
      sent = true;
    }
    if (sent) {
      this.stats.lossProbes++;
      this.#tlpHighSeq = this.sndMax;
      this.#tlpSentAtUs = nowUs;
    }
    this.#armRto(nowUs);
    return sent;
  }

  /**
   * Linux tcp_process_tlp_ack: once the ACK reaches the probe's snd.max the
   * probe is over. Linux tells a probe that repaired a loss from one whose
   * original arrived too by D-SACK, which this model has not; the timestamps
   * tell the same (as for a timeout, #judgeTimeout): the first ACK to reach
   * it echoing a send from before the probe was answered by the original,
   * and nothing was lost. Without timestamps, as Linux without D-SACK: an
   * ACK beyond the probe with no duplicate first means it repaired a loss.
   * A repair brings cwnd down as after a fast recovery.
   */
  #judgeProbe(ack: number, advancedOrSacked: boolean, echoedSentAtUs: number | null, nowUs: number): void {
    const highSeq = this.#tlpHighSeq!;
    if (ack < highSeq) return;
    const repaired = this.#tlpRetrans && (echoedSentAtUs !== null ? echoedSentAtUs >= this.#tlpSentAtUs : ack > highSeq);
    if (repaired) {
      this.stats.lossProbeRecoveries++;
      this.cc.onFastRetransmit(this.flightBytes, nowUs);
      this.cc.onRecoveryExit(this.flightBytes, nowUs);
      this.#tlpHighSeq = null;
    } else if (!this.#tlpRetrans || echoedSentAtUs !== null || !advancedOrSacked || ack > highSeq) this.#tlpHighSeq = null;
  }

  #disarmRto(): void {
    this.#probeArmed = false;
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
