import { assert } from '../assert.js';

/**
 * Answers repeated requests for a checkpoint's parts at most once per
 * `gapUs`. The checkpointer repeats its barrier when no part arrived for its
 * repeat interval; repeats that queued up while this process or the bus
 * stalled then arrive together, and each answer is the whole part again (a
 * new backup's base part holds the whole speculative buffer: 16 MiB by
 * default), so answering every one multiplies the load that made the
 * checkpointer wait. The gap is half the checkpointer's repeat interval:
 * a repeat sent on its schedule, which backs off from that interval, is
 * always answered.
 */
export class RepeatGate {
  #lastSentUs: number | null = null;

  constructor(readonly gapUs: number) {
    assert(Number.isFinite(gapUs) && gapUs >= 0, () => `a repeat gate's gap must be a finite number of µs ≥ 0, not ${gapUs}`);
  }

  /** The parts went out (first or again) now. */
  sent(nowUs: number): void {
    this.#lastSentUs = nowUs;
  }

  /** Whether a repeat may be answered now; if so, the answer counts as sent now. */
  tryRepeat(nowUs: number): boolean {
    const last = this.#lastSentUs;
    assert(last === null || nowUs >= last, () => `a repeat at ${nowUs} before the parts were sent at ${last}`);
    if (last !== null && nowUs - last < this.gapUs) return false;
    this.#lastSentUs = nowUs;
    return true;
  }
}
