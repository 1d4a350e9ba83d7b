import { assert } from '../assert.js';

/** RFC 6675's DupThresh: three segments above a hole make it lost. */
export const DUP_THRESH = 3;

/** A hole in the scoreboard: unacknowledged, unSACKed bytes [start, end). */
export interface Hole {
  readonly start: number;
  readonly end: number;
}

/**
 * The sender's record of what the receiver SACKed above snd.una (RFC 6675's
 * scoreboard): sorted, merged ranges. Bounded by the sender's outstanding
 * data, as every range lies in (snd.una, snd.max] and two ranges never touch.
 */
export class SackScoreboard {
  /** Flat [start0, end0, start1, end1, …], sorted; ranges neither overlap nor touch. */
  #ranges: number[] = [];
  #sackedBytes = 0;

  get sackedBytes(): number {
    return this.#sackedBytes;
  }
  get isEmpty(): boolean {
    return this.#ranges.length === 0;
  }
  /** One past the highest SACKed byte, or 0 when nothing is SACKed. */
  get highestSackedEnd(): number {
    return this.#ranges.length === 0 ? 0 : this.#ranges[this.#ranges.length - 1]!;
  }

  /** The ranges as flat pairs, for a snapshot. */
  snapshot(): number[] {
    return this.#ranges.slice();
  }

  /** Takes a snapshot's ranges; the caller validated them (sorted, non-touching, non-empty). */
  restore(ranges: readonly number[]): void {
    this.#ranges = ranges.slice();
    this.#sackedBytes = 0;
    for (let i = 0; i < ranges.length; i += 2) this.#sackedBytes += ranges[i + 1]! - ranges[i]!;
  }

  clear(): void {
    this.#ranges = [];
    this.#sackedBytes = 0;
  }

  /**
   * Records that the receiver holds [start, end), clipped to [low, high):
   * a block below the cumulative ACK or above what was sent says nothing.
   * Returns the bytes newly SACKed.
   */
  add(start: number, end: number, low: number, high: number): number {
    const s = Math.max(start, low);
    const e = Math.min(end, high);
    if (e <= s) return 0;
    const r = this.#ranges;
    // First range that ends at or after s (touching ranges merge).
    let i = 0;
    while (i < r.length && r[i + 1]! < s) i += 2;
    let mergedStart = s;
    let mergedEnd = e;
    let removedBytes = 0;
    let j = i;
    while (j < r.length && r[j]! <= e) {
      mergedStart = Math.min(mergedStart, r[j]!);
      mergedEnd = Math.max(mergedEnd, r[j + 1]!);
      removedBytes += r[j + 1]! - r[j]!;
      j += 2;
    }
    r.splice(i, j - i, mergedStart, mergedEnd);
    const added = mergedEnd - mergedStart - removedBytes;
    this.#sackedBytes += added;
    assert(added >= 0, () => `SACK merge lost bytes: ${added}`);
    return added;
  }

  /** The cumulative ACK reached `una`: forgets everything below it; returns the SACKed bytes forgotten. */
  advance(una: number): number {
    const r = this.#ranges;
    let removed = 0;
    let drop = 0;
    while (drop < r.length && r[drop + 1]! <= una) {
      removed += r[drop + 1]! - r[drop]!;
      drop += 2;
    }
    if (drop > 0) r.splice(0, drop);
    if (r.length > 0 && r[0]! < una) {
      removed += una - r[0]!;
      r[0] = una;
    }
    this.#sackedBytes -= removed;
    return removed;
  }

  /** SACKed bytes below `seq`. */
  sackedBelow(seq: number): number {
    const r = this.#ranges;
    let n = 0;
    for (let i = 0; i < r.length && r[i]! < seq; i += 2) n += Math.min(r[i + 1]!, seq) - r[i]!;
    return n;
  }

  /** Is `seq` SACKed? If so, where its range ends; else null. */
  sackedRangeEnd(seq: number): number | null {
    const r = this.#ranges;
    for (let i = 0; i < r.length && r[i]! <= seq; i += 2) if (seq < r[i + 1]!) return r[i + 1]!;
    return null;
  }

  /** The first hole at or above `from` and below the highest SACKed byte, or null. */
  holeFrom(from: number): Hole | null {
    const r = this.#ranges;
    let at = from;
    for (let i = 0; i < r.length; i += 2) {
      if (r[i + 1]! <= at) continue;
      if (r[i]! > at) return { start: at, end: r[i]! };
      at = r[i + 1]!;
    }
    return null;
  }

  /**
   * RFC 6675 IsLost, as a boundary: every unSACKed byte below the result is
   * lost, as more than (DupThresh − 1) · MSS bytes or DupThresh separate
   * ranges are SACKed above it; `una` when nothing is.
   */
  lostBelow(una: number, mssBytes: number): number {
    const r = this.#ranges;
    let above = 0;
    let boundary = una;
    const ranges = r.length / 2;
    for (let k = ranges - 1; k >= 0; k--) {
      above += r[2 * k + 1]! - r[2 * k]!;
      if (above > (DUP_THRESH - 1) * mssBytes || ranges - k >= DUP_THRESH) {
        boundary = r[2 * k]!;
        break;
      }
    }
    return Math.max(una, boundary);
  }
}

/** Sorted, non-empty, non-touching flat pairs: what a scoreboard snapshot must be. */
export function rangesInOrder(ranges: readonly number[], above: number): boolean {
  if (ranges.length % 2 !== 0) return false;
  let end = above;
  for (let i = 0; i < ranges.length; i += 2) {
    if (ranges[i]! < end || ranges[i + 1]! <= ranges[i]!) return false;
    if (i > 0 && ranges[i]! === end) return false;
    end = ranges[i + 1]!;
  }
  return true;
}
