import { parseSnapshot, rttSnapshotSchema, type RttSnapshot } from './snapshot.js';

/**
 * Retransmission timeout estimator: SRTT and RTTVAR as RFC 6298 smooths
 * them, the timeout as Linux sets it (tcp_set_rto), with exponential backoff.
 */
export class RttEstimator {
  #srttUs = 0;
  #rttvarUs = 0;
  #baseRtoUs: number;
  #backoffShift = 0;
  #samples = 0;

  constructor(
    readonly minRtoUs: number,
    readonly maxRtoUs: number,
    initialRtoUs: number,
    /** Clock granularity G of RFC 6298 §2. */
    readonly clockGranularityUs = 1000,
  ) {
    this.#baseRtoUs = initialRtoUs;
  }

  get srttUs(): number {
    return this.#srttUs;
  }
  get hasSample(): boolean {
    return this.#samples > 0;
  }
  get rtoUs(): number {
    return Math.min(this.maxRtoUs, this.#baseRtoUs * 2 ** this.#backoffShift);
  }

  sample(rttUs: number): void {
    const r = Math.max(1, rttUs);
    if (this.#samples === 0) {
      this.#srttUs = r;
      this.#rttvarUs = r / 2;
    } else {
      this.#rttvarUs = 0.75 * this.#rttvarUs + 0.25 * Math.abs(this.#srttUs - r);
      this.#srttUs = 0.875 * this.#srttUs + 0.125 * r;
    }
    this.#samples++;
    // Linux adds its floor to the SRTT (RTO = SRTT + max(rto_min, 4·RTTVAR)); RFC 6298 §2.4 floors the sum, which is one SRTT shorter at long RTTs.
    const rto = this.#srttUs + Math.max(this.minRtoUs, this.clockGranularityUs, 4 * this.#rttvarUs);
    this.#baseRtoUs = Math.round(Math.min(this.maxRtoUs, rto));
  }

  /** RFC 6298 §5.5: double the RTO after a timeout. */
  backoff(): void {
    if (this.rtoUs < this.maxRtoUs) this.#backoffShift++;
  }

  /** New data was acknowledged: the backoff ends. */
  resetBackoff(): void {
    this.#backoffShift = 0;
  }

  /** The estimator's state; the bounds and granularity come from the options. */
  snapshot(): RttSnapshot {
    return { srttUs: this.#srttUs, rttvarUs: this.#rttvarUs, baseRtoUs: this.#baseRtoUs, backoffShift: this.#backoffShift, samples: this.#samples };
  }

  /** Takes a snapshot's state; throws SnapshotError if it is malformed. */
  restore(snapshot: RttSnapshot): void {
    const s = parseSnapshot(rttSnapshotSchema, snapshot, 'RTT estimator');
    this.#srttUs = s.srttUs;
    this.#rttvarUs = s.rttvarUs;
    this.#baseRtoUs = s.baseRtoUs;
    this.#backoffShift = s.backoffShift;
    this.#samples = s.samples;
  }
}
