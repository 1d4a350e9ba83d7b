import { assert } from '../assert.js';

/** Each repeat answered for one part doubles the wait before the next, up to 2^this times the first wait. */
export const MAX_REPEAT_BACKOFF_SHIFT = 5;

const US_PER_S = 1_000_000;

/**
 * Answers repeated requests for a checkpoint's parts, each with the whole
 * part again, no more often than the part can cross the replication link.
 * The checkpointer repeats its barrier when no part arrived for its repeat
 * interval; repeats that queued up while this process or the bus stalled
 * then arrive together, and a new backup's base part holds the whole
 * speculative buffer (16 MiB by default), so answering each one multiplies
 * the load that made the checkpointer wait.
 *
 * A repeat is answered once `gapUs` has passed since the part last went
 * out, and once twice the time the link takes to carry the part has
 * (`bytesPerSec`; 0: no link time): one asked sooner asks for what is still
 * on its way, as a retransmission before TCP's RTO would. Each answer to one
 * part doubles that wait, up to 2^MAX_REPEAT_BACKOFF_SHIFT: a machine too
 * loaded to carry a part in time carries it again only as often as it shows
 * it can. The gap is half the checkpointer's repeat interval, so a repeat
 * of a small part sent on its schedule is answered.
 */
export class RepeatGate {
  #lastSentUs: number | null = null;
  /** Bytes of the part last sent: a repeat re-sends all of them. */
  #partBytes = 0;
  /** Repeats answered since the part was first sent. */
  #answers = 0;

  constructor(
    readonly gapUs: number,
    /** The replication link's rate, bytes per second; 0: the link's time is not waited for. */
    readonly bytesPerSec = 0,
  ) {
    assert(Number.isFinite(gapUs) && gapUs >= 0, () => `a repeat gate's gap must be a finite number of µs ≥ 0, not ${gapUs}`);
    assert(Number.isFinite(bytesPerSec) && bytesPerSec >= 0, () => `a repeat gate's link rate must be a finite number of bytes/s ≥ 0, not ${bytesPerSec}`);
  }

  /** A new part of `partBytes` went out now. */
  sent(nowUs: number, partBytes = 0): void {
    assert(Number.isSafeInteger(partBytes) && partBytes >= 0, () => `a part of ${partBytes} bytes`);
    this.#lastSentUs = nowUs;
    this.#partBytes = partBytes;
    this.#answers = 0;
  }

  /** How long after the part last went out the next repeat may be answered, µs. */
  get waitUs(): number {
    const linkUs = this.bytesPerSec > 0 ? Math.ceil((2 * this.#partBytes * US_PER_S) / this.bytesPerSec) : 0;
    return Math.max(this.gapUs, linkUs) * 2 ** Math.min(this.#answers, MAX_REPEAT_BACKOFF_SHIFT);
  }

  /** Whether a repeat may be answered now; if so, the answer counts as sent now. */
  tryRepeat(nowUs: number): boolean {
    const last = this.#lastSentUs;
    assert(last === null || nowUs >= last, () => `a repeat at ${nowUs} before the parts were sent at ${last}`);
    if (last !== null && nowUs - last < this.waitUs) return false;
    this.#lastSentUs = nowUs;
    this.#answers++;
    return true;
  }
}
