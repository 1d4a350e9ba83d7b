import { assert } from '../assert.js';
import { expectSnapshot, parseSnapshot, rttSnapshotSchema, type RttSnapshot } from './snapshot.js';

/**
 * Retransmission timeout estimator as Linux's tcp_rtt_estimator and
 * tcp_set_rto, with exponential backoff. SRTT is smoothed as RFC 6298 says;
 * so is the mean deviation (`mdev`, kept as 4·RTTVAR), except that an RTT
 * falling by more than a quarter of it moves it at an eighth of the gain
 * (Linux's variant of Eifel: a sudden shorter RTT must not inflate the
 * RTO). The RTO adds to SRTT not the smoothed deviation but `rttvar`: the
 * largest deviation of the last round trip, raised at once, lowered once a
 * round by a quarter of the gap, and never below the minimum RTO. RFC
 * 6298's RTO = SRTT + 4·RTTVAR follows each sample instead, floored as a
 * sum: one SRTT shorter at long RTTs, and quick to forget a round's spike.
 */
export class RttEstimator {
  #srttUs = 0;
  /** Linux's mdev_us: the smoothed mean deviation, four times RFC 6298's RTTVAR. */
  #mdevUs = 0;
  /** The largest mdev of the current round, never below the floor. */
  #mdevMaxUs = 0;
  /** What the RTO adds to SRTT (Linux's rttvar_us). */
  #rttvarUs = 0;
  /** The round ends when snd.una passes this (snd.max when it began). */
  #rttSeq = 0;
  #baseRtoUs: number;
  #backoffShift = 0;
  #samples = 0;

  constructor(
    readonly minRtoUs: number,
    readonly maxRtoUs: number,
    initialRtoUs: number,
    /** Clock granularity G of RFC 6298 §2: the floor of the variance term with the minimum RTO. */
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
  /** What the RTO adds to SRTT. */
  get rttvarUs(): number {
    return this.#rttvarUs;
  }

  /** An RTT sample from an ACK that left snd.una at `sndUna`, with `sndMax` sent so far. */
  sample(rttUs: number, sndUna: number, sndMax: number): void {
    const r = Math.max(1, rttUs);
    const floorUs = Math.max(this.minRtoUs, this.clockGranularityUs);
    if (this.#samples === 0) {
      this.#srttUs = r;
      this.#mdevUs = 2 * r; // an RTO of three RTTs
      this.#rttvarUs = Math.max(this.#mdevUs, floorUs);
      this.#mdevMaxUs = this.#rttvarUs;
      this.#rttSeq = sndMax;
    } else {
      let m = r - this.#srttUs;
      this.#srttUs += m / 8;
      if (m < 0) {
        m = -m - this.#mdevUs / 4;
        if (m > 0) m /= 8;
      } else {
        m -= this.#mdevUs / 4;
      }
      this.#mdevUs += m;
      if (this.#mdevUs > this.#mdevMaxUs) {
        this.#mdevMaxUs = this.#mdevUs;
        if (this.#mdevMaxUs > this.#rttvarUs) this.#rttvarUs = this.#mdevMaxUs;
      }
      if (sndUna > this.#rttSeq) {
        if (this.#mdevMaxUs < this.#rttvarUs) this.#rttvarUs -= (this.#rttvarUs - this.#mdevMaxUs) / 4;
        this.#rttSeq = sndMax;
        this.#mdevMaxUs = floorUs;
      }
    }
    assert(this.#rttvarUs >= floorUs, () => `an RTO variance of ${this.#rttvarUs} µs below its floor of ${floorUs} µs`);
    this.#samples++;
    this.#baseRtoUs = Math.round(Math.min(this.maxRtoUs, this.#srttUs + this.#rttvarUs));
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
    return { srttUs: this.#srttUs, mdevUs: this.#mdevUs, mdevMaxUs: this.#mdevMaxUs, rttvarUs: this.#rttvarUs, rttSeq: this.#rttSeq, baseRtoUs: this.#baseRtoUs, backoffShift: this.#backoffShift, samples: this.#samples };
  }

  /** Takes a snapshot's state; throws SnapshotError if it is malformed. */
  restore(snapshot: RttSnapshot): void {
    const s = parseSnapshot(rttSnapshotSchema, snapshot, 'RTT estimator');
    const floorUs = Math.max(this.minRtoUs, this.clockGranularityUs);
    expectSnapshot(s.samples === 0 || (s.rttvarUs >= floorUs && s.mdevMaxUs >= floorUs), `RTT estimator snapshot with a variance term below its floor of ${floorUs} µs`);
    this.#srttUs = s.srttUs;
    this.#mdevUs = s.mdevUs;
    this.#mdevMaxUs = s.mdevMaxUs;
    this.#rttvarUs = s.rttvarUs;
    this.#rttSeq = s.rttSeq;
    this.#baseRtoUs = s.baseRtoUs;
    this.#backoffShift = s.backoffShift;
    this.#samples = s.samples;
  }
}
