import type { CongestionSnapshot } from '../snapshot.js';

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
  /** New data was acknowledged outside loss recovery. */
  onAck(ackedBytes: number, nowUs: number, srttUs: number, cwndLimited: boolean): void;
  /** Three duplicate ACKs: set ssthresh; the endpoint then inflates cwnd. */
  onFastRetransmit(flightBytes: number, nowUs: number): void;
  /** A full ACK ended recovery. */
  onRecoveryExit(flightBytes: number, nowUs: number): void;
  /** The retransmission timer fired. */
  onTimeout(flightBytes: number, nowUs: number): void;
  /** Sending resumes after an idle period longer than the RTO (RFC 5681 §4.1). */
  onIdleRestart(nowUs: number): void;
  /** Every field that shapes its future decisions, tagged with `name`. */
  snapshot(): CongestionSnapshot;
  /** Takes the state of a snapshot of the same algorithm; throws SnapshotError otherwise. */
  restore(snapshot: CongestionSnapshot): void;
}

export type CongestionControlName = 'newreno' | 'cubic' | 'racc';

export interface CongestionParams {
  readonly mssBytes: number;
  readonly initialWindowBytes: number;
}
