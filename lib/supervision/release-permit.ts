import type { ReleasePermit } from '../codec/messages.js';

/**
 * Fencing without shared memory: a service that releases output keeps the
 * newest permit its host agent granted, an absolute deadline on the host's
 * clock derived from a lease renewal the store confirmed. It stops at that
 * deadline on its own, whether or not another message ever arrives, and a
 * grant delayed or repeated on the bus carries its own (older) deadline, so
 * it can never extend what is allowed. Bound: docs/fencing.md.
 */
export class PermitHolder {
  #term = 0;
  #untilUs = 0;
  /** Grants of an older term than one already held (a delayed copy), ignored. */
  staleGrants = 0;
  /**
   * Grants to another host (its deadline is on that host's clock), ignored:
   * only a misrouted or forged message names another host on this one's
   * subject.
   */
  foreignGrants = 0;

  constructor(
    /** The host whose agent grants this holder's permits. */
    readonly host: string,
    /** Tests only: a planted bug that treats a permit, once granted, as lasting forever. */
    readonly plantedIgnoreExpiry = false,
  ) {}

  /** Grants ignored, for a service's report. */
  get ignored(): { stale: number; foreign: number } {
    return { stale: this.staleGrants, foreign: this.foreignGrants };
  }

  get term(): number {
    return this.#term;
  }
  get untilUs(): number {
    return this.#untilUs;
  }

  /** Keeps the latest deadline of the highest term; returns whether it moved. */
  grant(p: ReleasePermit): boolean {
    if (p.host !== this.host) {
      this.foreignGrants++;
      return false;
    }
    if (p.term < this.#term) {
      this.staleGrants++;
      return false;
    }
    if (p.term === this.#term && p.untilUs <= this.#untilUs) return false;
    this.#term = p.term;
    this.#untilUs = p.untilUs;
    return true;
  }

  /** Output of `term` may leave at `nowUs` (host clock): strictly before the deadline. */
  allows(term: number, nowUs: number): boolean {
    if (this.#term !== term) return false;
    return this.plantedIgnoreExpiry ? this.#untilUs > 0 : nowUs < this.#untilUs;
  }
}
