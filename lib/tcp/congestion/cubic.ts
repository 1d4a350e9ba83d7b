import { US_PER_S } from '../../units.js';
import { congestionSnapshotSchema, expectSnapshot, parseSnapshot, type CubicSnapshot } from '../snapshot.js';
import { Hystart, hystartAckDelayUs } from './hystart.js';
import { slowStartStepMaxBytes, type AckSample, type CongestionControl, type CongestionParams, type CongestionSnapshot } from './types.js';

const C = 0.4;
/** What a CUBIC without HyStart reports as its HyStart state. */
const OFF = { delayMinUs: 0, found: false, roundStartUs: 0, lastAckUs: 0, endSeq: null, currRttUs: null, sampleCount: 0 } as const;
const BETA = 0.7;
/** RFC 9438 §4.3: AIMD increase that matches Reno's average rate. */
const ALPHA = (3 * (1 - BETA)) / (1 + BETA);
/**
 * Linux (tcp_cubic.c bictcp_update): while no loss has set Wmax (the flow
 * left slow start by HyStart, or a timeout reset it), cwnd grows by at least
 * one segment per 20 ACKed, 5% per RTT: the cubic curve from Wmax 0 starts
 * flat, "too conservative when the available bandwidth is still unknown".
 */
const UNKNOWN_BANDWIDTH_MIN_GROWTH_PER_SEGMENT = 1 / 20;

/** CUBIC, RFC 9438, with fast convergence, leaving slow start by HyStart as Linux does. Windows in segments inside, bytes outside. */
export class Cubic implements CongestionControl {
  readonly name = 'cubic' as const;
  cwndBytes: number;
  ssthreshBytes = Number.MAX_SAFE_INTEGER;
  #wMaxSeg = 0;
  #kS = 0;
  #originSeg = 0;
  #epochStartUs: number | null = null;
  #wEstSeg = 0;
  readonly #hystart: Hystart | null;

  constructor(readonly params: CongestionParams) {
    this.cwndBytes = params.initialWindowBytes;
    this.#hystart = params.hystart === false ? null : new Hystart();
  }

  onAck(ackedBytes: number, nowUs: number, srttUs: number, cwndLimited: boolean, sample?: AckSample): void {
    const mss = this.params.mssBytes;
    if (this.#hystart !== null && sample !== undefined && this.cwndBytes < this.ssthreshBytes) {
      // Linux skips delay samples for a second after a recovery's congestion-avoidance epoch began.
      const freshFromRecovery = this.#epochStartUs !== null && nowUs - this.#epochStartUs < US_PER_S;
      const ackDelayUs = hystartAckDelayUs(mss, this.cwndBytes / mss, this.ssthreshBytes / mss, srttUs);
      if (this.#hystart.onAck(sample, this.cwndBytes / mss, nowUs, freshFromRecovery, ackDelayUs)) this.ssthreshBytes = this.cwndBytes;
    }
    if (!cwndLimited) return;
    if (this.cwndBytes < this.ssthreshBytes) {
      this.cwndBytes += Math.min(ackedBytes, slowStartStepMaxBytes(this.params));
      return;
    }
    const cwndSeg = this.cwndBytes / mss;
    if (this.#epochStartUs === null) {
      this.#epochStartUs = nowUs;
      if (cwndSeg < this.#wMaxSeg) {
        this.#kS = Math.cbrt((this.#wMaxSeg - cwndSeg) / C);
        this.#originSeg = this.#wMaxSeg;
      } else {
        this.#kS = 0;
        this.#originSeg = cwndSeg;
      }
      this.#wEstSeg = cwndSeg;
    }
    const tS = (nowUs - this.#epochStartUs) / US_PER_S;
    const rttS = srttUs / US_PER_S;
    const wCubic = (t: number): number => C * (t - this.#kS) ** 3 + this.#originSeg;
    const targetSeg = Math.min(Math.max(wCubic(tS + rttS), cwndSeg), 1.5 * cwndSeg);
    const ackedSeg = ackedBytes / mss;
    const floorSeg = this.#wMaxSeg === 0 ? UNKNOWN_BANDWIDTH_MIN_GROWTH_PER_SEGMENT * ackedSeg : 0;
    this.#wEstSeg += (ALPHA * ackedSeg) / cwndSeg;
    if (wCubic(tS) < this.#wEstSeg) {
      this.cwndBytes = Math.max(this.cwndBytes + floorSeg * mss, this.#wEstSeg * mss); // Reno-friendly region
    } else {
      this.cwndBytes += Math.max(((targetSeg - cwndSeg) / cwndSeg) * ackedSeg, floorSeg) * mss;
    }
  }

  onFastRetransmit(_flightBytes: number): void {
    this.#reduce();
  }

  onRecoveryExit(): void {
    this.cwndBytes = this.ssthreshBytes;
  }

  onTimeout(_flightBytes: number, _nowUs: number, reduceSsthresh: boolean): void {
    if (reduceSsthresh) this.#reduce();
    this.cwndBytes = this.params.mssBytes;
    // Linux (cubictcp_state at every entry into Loss, bictcp_reset): the curve and HyStart start over, Wmax and the
    // smallest delay forgotten; ssthresh is what the sender's loss episode decided (reduced here or kept). The curve's
    // other fields are set anew at the next epoch's start.
    this.#epochStartUs = null;
    this.#wMaxSeg = 0;
    this.#hystart?.reset();
  }

  onIdleRestart(): void {
    this.cwndBytes = Math.min(this.cwndBytes, this.params.initialWindowBytes);
    this.#epochStartUs = null;
  }

  snapshot(): CubicSnapshot {
    return {
      name: this.name,
      cwndBytes: this.cwndBytes,
      ssthreshBytes: this.ssthreshBytes,
      wMaxSeg: this.#wMaxSeg,
      kS: this.#kS,
      originSeg: this.#originSeg,
      epochStartUs: this.#epochStartUs,
      wEstSeg: this.#wEstSeg,
      hystart: this.#hystart?.snapshot() ?? OFF,
    };
  }

  restore(snapshot: CongestionSnapshot): void {
    const s = parseSnapshot(congestionSnapshotSchema, snapshot, 'congestion control');
    expectSnapshot(s.name === this.name, `a ${s.name} snapshot cannot restore ${this.name}`);
    this.cwndBytes = s.cwndBytes;
    this.ssthreshBytes = s.ssthreshBytes;
    this.#wMaxSeg = s.wMaxSeg;
    this.#kS = s.kS;
    this.#originSeg = s.originSeg;
    this.#epochStartUs = s.epochStartUs;
    this.#wEstSeg = s.wEstSeg;
    this.#hystart?.restore(s.hystart);
  }

  #reduce(): void {
    const mss = this.params.mssBytes;
    const cwndSeg = this.cwndBytes / mss;
    // Fast convergence: release bandwidth to newer flows.
    this.#wMaxSeg = cwndSeg < this.#wMaxSeg ? (cwndSeg * (1 + BETA)) / 2 : cwndSeg;
    this.ssthreshBytes = Math.max(Math.floor(this.cwndBytes * BETA), 2 * mss);
    this.#epochStartUs = null;
  }
}
