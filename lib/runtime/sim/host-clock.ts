import { assert } from '../../assert.js';

/** How one machine's clock differs from true (simulated) time. */
export interface HostClockSpec {
  /** Added to true time, µs; never negative, so local time never reads below 0. */
  readonly offsetUs: number;
  /** Rate error in parts per million: +100 runs 100 µs/s fast. */
  readonly driftPpm: number;
}

/** Drift beyond this is not a clock but a bug in a fault plan. */
export const MAX_DRIFT_PPM = 100_000;

export const TRUE_CLOCK: HostClockSpec = { offsetUs: 0, driftPpm: 0 };

/**
 * A machine's clock in the simulator: local = true + offset + ⌊true·drift/10⁶⌋,
 * integer µs, never going back. Every core on the machine reads it (leases,
 * heartbeats, release permits, TCP), so a skew between hosts is real.
 */
export class HostClock {
  readonly #offsetUs: number;
  readonly #driftPpm: number;

  constructor(readonly spec: HostClockSpec = TRUE_CLOCK) {
    assert(Number.isSafeInteger(spec.offsetUs) && spec.offsetUs >= 0, () => `clock offset ${spec.offsetUs}µs must be a non-negative integer`);
    assert(Number.isFinite(spec.driftPpm) && Math.abs(spec.driftPpm) <= MAX_DRIFT_PPM, () => `clock drift ${spec.driftPpm} ppm beyond ±${MAX_DRIFT_PPM}`);
    this.#offsetUs = spec.offsetUs;
    this.#driftPpm = spec.driftPpm;
  }

  get exact(): boolean {
    return this.#offsetUs === 0 && this.#driftPpm === 0;
  }

  /** What this clock reads at true time `trueUs`. */
  localUs(trueUs: number): number {
    if (this.#driftPpm === 0) return trueUs + this.#offsetUs;
    return trueUs + this.#offsetUs + Math.floor((trueUs * this.#driftPpm) / 1e6);
  }

  /** The first true instant at which this clock reads at least `localUs` (a timer set for `localUs` fires then). */
  trueUs(localUs: number): number {
    if (this.#driftPpm === 0) return Math.max(0, localUs - this.#offsetUs);
    let t = Math.max(0, Math.floor((localUs - this.#offsetUs) / (1 + this.#driftPpm / 1e6)) - 2);
    while (this.localUs(t) < localUs) t++;
    while (t > 0 && this.localUs(t - 1) >= localUs) t--;
    return t;
  }
}
