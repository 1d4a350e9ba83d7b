/**
 * At most `burst` log lines per key in each `intervalMs`; the rest are
 * counted, and the next line let through says how many were held back. A
 * flood of one event (a forged message refused a thousand times a second)
 * then costs a few synchronous writes, not one each.
 */
export class LogThrottle {
  readonly #windows = new Map<string, { startMs: number; lines: number; suppressed: number }>();
  /** Lines held back, over every key, since the start. */
  suppressedTotal = 0;

  constructor(
    readonly burst: number,
    readonly intervalMs: number,
    readonly nowMs: () => number = () => performance.now(),
    /** Keys tracked at most (events are few; past it every new key shares one window). */
    readonly maxKeys = 1_024,
  ) {}

  /** null: hold this line back; otherwise how many lines of `key` were held back since the last one let through. */
  admit(key: string): number | null {
    const now = this.nowMs();
    const k = this.#windows.has(key) || this.#windows.size < this.maxKeys ? key : '(other)';
    let w = this.#windows.get(k);
    if (w === undefined) {
      w = { startMs: now, lines: 0, suppressed: 0 };
      this.#windows.set(k, w);
    }
    if (now - w.startMs >= this.intervalMs) {
      w.startMs = now;
      w.lines = 0;
    }
    if (w.lines >= this.burst) {
      w.suppressed++;
      this.suppressedTotal++;
      return null;
    }
    w.lines++;
    const held = w.suppressed;
    w.suppressed = 0;
    return held;
  }
}
