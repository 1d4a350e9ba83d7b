/**
 * Which epoch first emitted each byte of the guest's stream: ranges by first
 * emission, [previous end, ends[i]) from epochs[i]. A promotion rolls back
 * what the old guest emitted after the restored checkpoint (it never left;
 * the new guest emits it again under new epochs). One entry per epoch
 * that emitted new bytes: it grows with the run's epochs (40 a second at
 * 25 ms epochs), not with its traffic.
 */
export class ByteEpochs {
  readonly #ends: number[] = [];
  readonly #epochs: number[] = [];
  #maxSeen = 0;
  #firstSeq = 0;

  /** Bytes [seq, end) emitted in `epoch`; only bytes beyond everything seen count (a retransmission keeps its first epoch). */
  emitted(seq: number, end: number, epoch: number): void {
    if (end <= seq || end <= this.#maxSeen) return;
    if (this.#maxSeen === 0) {
      this.#maxSeen = seq;
      this.#firstSeq = seq;
    }
    // Consecutive bytes of one epoch extend its range: one entry per epoch, not per segment (86,000 a second at 1 Gbit/s).
    const last = this.#ends.length - 1;
    if (last >= 0 && this.#epochs[last] === epoch && this.#ends[last] === this.#maxSeen) this.#ends[last] = end;
    else {
      this.#ends.push(end);
      this.#epochs.push(epoch);
    }
    this.#maxSeen = end;
  }

  /** Forgets every byte from `seq` on. */
  rollbackTo(seq: number): void {
    while (this.#ends.length > 0 && this.#ends[this.#ends.length - 1]! > seq) {
      const start = this.#ends.length > 1 ? this.#ends[this.#ends.length - 2]! : this.#firstSeq;
      if (start >= seq) {
        this.#ends.pop();
        this.#epochs.pop();
      } else {
        this.#ends[this.#ends.length - 1] = seq;
        break;
      }
    }
    this.#maxSeen = Math.min(this.#maxSeen, seq);
  }

  /** The epoch that first emitted byte `seq`, or null if none did. */
  epochOf(seq: number): number | null {
    if (this.#ends.length === 0 || seq < this.#firstSeq) return null;
    let lo = 0;
    let hi = this.#ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#ends[mid]! <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.#ends.length ? this.#epochs[lo]! : null;
  }
}
