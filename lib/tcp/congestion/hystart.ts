import type { HystartSnapshot } from '../snapshot.js';
import type { AckSample } from './types.js';

/** Linux tcp_cubic's constants. */
const LOW_WINDOW_SEGMENTS = 16;
const ACK_DELTA_US = 2_000;
const MIN_SAMPLES = 8;
const DELAY_THRESHOLD_MIN_US = 4_000;
const DELAY_THRESHOLD_MAX_US = 16_000;
/** GSO_LEGACY_MAX_SIZE: the most one transmission hands the NIC. */
const GSO_MAX_BYTES = 65_536;
const ACK_DELAY_MAX_US = 1_000;
/** sysctl tcp_pacing_ss_ratio and tcp_pacing_ca_ratio, in percent. */
const PACING_SS_PERCENT = 200;
const PACING_CA_PERCENT = 120;

/**
 * Linux's `hystart_ack_delay` (since 5.7): the time four GSO packets take at
 * the socket's pacing rate, at most 1 ms, which the ACK train may run
 * longer, since GSO and pacing send (and so ACKs come) in bunches. The
 * pacing rate is `tcp_update_pacing_rate`'s, computed whether or not a
 * qdisc paces: cwnd × MSS / SRTT, times 2 below half ssthresh, else 1.2.
 */
export function hystartAckDelayUs(mssBytes: number, cwndSegments: number, ssthreshSegments: number, srttUs: number): number {
  if (srttUs <= 0) return 0;
  const percent = cwndSegments < ssthreshSegments / 2 ? PACING_SS_PERCENT : PACING_CA_PERCENT;
  const rateBytesPerSec = (mssBytes * cwndSegments * percent * 10_000) / srttUs;
  return Math.min(ACK_DELAY_MAX_US, Math.floor((GSO_MAX_BYTES * 4 * 1e6) / rateBytesPerSec));
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

type HystartState = { -readonly [K in keyof HystartSnapshot]: HystartSnapshot[K] };
/** Before the first ACK, and again after a timeout. */
const freshState = (): HystartState => ({ delayMinUs: 0, found: false, roundStartUs: 0, lastAckUs: 0, endSeq: null, currRttUs: null, sampleCount: 0 });

/**
 * HyStart as Linux's CUBIC runs it (tcp_cubic.c, `hystart_update`): once
 * cwnd reaches 16 segments in slow start, each round of one RTT is watched
 * for two signs that the pipe is full, and slow start ends at the first:
 * - an ACK train: ACKs keep coming at most 2 ms apart for longer than half
 *   the smallest RTT seen plus the ACK delay GSO and pacing allow
 *   (`hystartAckDelayUs`; the window already spans the path);
 * - a delay increase: the smallest of a round's first 8 RTT samples exceeds
 *   the smallest RTT seen by an eighth of it, clamped to 4–16 ms (a queue
 *   builds).
 * Without it slow start doubles into a drop-tail queue until the queue
 * overflows, and a burst of losses follows. No pacing is modelled, so the
 * ACK train's threshold is halved, as Linux does without pacing.
 */
export class Hystart {
  #s: HystartState = freshState();

  get found(): boolean {
    return this.#s.found;
  }

  /**
   * An ACK in slow start; returns true when slow start should end now
   * (the caller sets ssthresh to cwnd). `freshFromRecovery`: a recovery
   * ended under a second ago, whose delays say nothing about the path.
   * `ackDelayUs`: hystartAckDelayUs of the sender now.
   */
  onAck(sample: AckSample, cwndSegments: number, nowUs: number, freshFromRecovery: boolean, ackDelayUs = 0): boolean {
    const s = this.#s;
    if (sample.rttUs === null || freshFromRecovery) return false;
    const delayUs = Math.max(1, sample.rttUs);
    if (s.delayMinUs === 0 || delayUs < s.delayMinUs) s.delayMinUs = delayUs;
    if (s.found || cwndSegments < LOW_WINDOW_SEGMENTS) return false;
    if (s.endSeq === null || sample.sndUna > s.endSeq) this.#newRound(sample.sndNxt, nowUs);
    if (nowUs - s.lastAckUs <= ACK_DELTA_US) {
      s.lastAckUs = nowUs;
      if (nowUs - s.roundStartUs > (s.delayMinUs + ackDelayUs) / 2) s.found = true;
    }
    if (s.currRttUs === null || delayUs < s.currRttUs) s.currRttUs = delayUs;
    if (s.sampleCount < MIN_SAMPLES) s.sampleCount++;
    else if (s.currRttUs > s.delayMinUs + clamp(s.delayMinUs / 8, DELAY_THRESHOLD_MIN_US, DELAY_THRESHOLD_MAX_US)) s.found = true;
    return s.found;
  }

  /** A timeout: slow start begins again, and HyStart watches it again from nothing, the smallest delay too (Linux's bictcp_reset). */
  reset(): void {
    this.#s = freshState();
  }

  #newRound(sndNxt: number, nowUs: number): void {
    const s = this.#s;
    s.roundStartUs = nowUs;
    s.lastAckUs = nowUs;
    s.endSeq = sndNxt;
    s.currRttUs = null;
    s.sampleCount = 0;
  }

  snapshot(): HystartSnapshot {
    return { ...this.#s };
  }

  restore(snapshot: HystartSnapshot): void {
    this.#s = { ...snapshot };
  }
}
