import type { CongestionSnapshot } from '../snapshot.js';
import { tsoSegmentBytes } from '../tso.js';

export type { CongestionSnapshot } from '../snapshot.js';

/**
 * A congestion controller owns cwnd and ssthresh. Loss recovery mechanics
 * (fast retransmit, NewReno partial ACKs, RTO go-back-N) live in the
 * endpoint; the controller decides how much to grow and how far to back off.
 */
export interface CongestionControl {
  readonly name: CongestionControlName;
  cwndBytes: number;
  ssthreshBytes: number;
  /**
   * New data was acknowledged outside loss recovery; `sample` is what the ACK says about the path (HyStart reads it).
   * It changes ssthresh only to end slow start by itself (HyStart): the sender counts that as an exit.
   */
  onAck(ackedBytes: number, nowUs: number, srttUs: number, cwndLimited: boolean, sample?: AckSample): void;
  /** Three duplicate ACKs: set ssthresh; the endpoint then inflates cwnd. */
  onFastRetransmit(flightBytes: number, nowUs: number): void;
  /** A full ACK ended recovery. */
  onRecoveryExit(flightBytes: number, nowUs: number): void;
  /**
   * The retransmission timer fired: cwnd falls to one segment. `reduceSsthresh`: it begins a loss episode, and ssthresh
   * falls too (Linux's tcp_enter_loss; a repeated timeout, or one inside a fast recovery, keeps the episode's).
   */
  onTimeout(flightBytes: number, nowUs: number, reduceSsthresh: boolean): void;
  /** Sending resumes after an idle period longer than the RTO (RFC 5681 §4.1). */
  onIdleRestart(nowUs: number): void;
  /** Every field that shapes its future decisions, tagged with `name`. */
  snapshot(): CongestionSnapshot;
  /** Takes the state of a snapshot of the same algorithm; throws SnapshotError otherwise. */
  restore(snapshot: CongestionSnapshot): void;
}

export type CongestionControlName = 'newreno' | 'cubic' | 'racc';

/** One acknowledgement as the sender saw it. */
export interface AckSample {
  /** Its RTT sample (timestamp echo); null when it has none. */
  readonly rttUs: number | null;
  /** snd.una after it, and snd.nxt when it arrived. */
  readonly sndUna: number;
  readonly sndNxt: number;
}

export interface CongestionParams {
  readonly mssBytes: number;
  readonly initialWindowBytes: number;
  /** CUBIC leaves slow start by HyStart (Linux's tcp_cubic `hystart=1`); on unless turned off. */
  readonly hystart?: boolean;
  /** The sender's TSO segment (SenderOptions.tsoBytes): slow start grows by two of them per ACK at most, where one MSS without. */
  readonly tsoBytes?: number | undefined;
}

/**
 * RFC 3465's limit L = 2 on slow start's growth per ACK, in bytes, of the
 * segments the sender hands its NIC: an ACK of one TSO segment grows cwnd by
 * every packet in it, as Linux's tcp_slow_start (which has no limit) does.
 */
export function slowStartStepMaxBytes(params: CongestionParams): number {
  return 2 * tsoSegmentBytes(params.tsoBytes, params.mssBytes);
}
