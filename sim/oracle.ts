import { assert } from '../lib/assert.js';
import type { Segment, WireMessage } from '../lib/codec/messages.js';
import type { Hop } from '../lib/runtime/sim/sim-runtime.js';

/**
 * Checks every packet that enters the client's link. Output commit: no
 * segment, and no byte in it, may leave before the epoch that produced it is
 * applied on the backup (or committed locally by an unprotected primary); the
 * epoch of a byte is the epoch in which the guest first emitted it, learned by
 * watching the guest's tx subject. One primary: output is stamped with its
 * host's fencing term, and after a newer term has released output, an older
 * one never does again.
 */
export class OutputCommitOracle {
  /** Byte ranges by first emission: [previous end, ends[i]) came from epochs[i]. */
  readonly #ends: number[] = [];
  readonly #epochs: number[] = [];
  #maxSeen = 0;
  #firstSeq = 0;
  #maxTerm = 0;
  #guestTerm = 0;
  /** End of the highest byte that reached the client's wire. */
  #releasedEnd = 0;
  segmentsChecked = 0;

  /** The newest epoch output may come from: applied on the backup, or committed locally by an unprotected primary. */
  constructor(public committedEpoch: () => number) {}

  /**
   * A promoted guest resumes from a checkpoint: bytes it had emitted beyond
   * `seq` never left (output commit) and will be emitted again, under new
   * epochs. Forget them.
   */
  rollbackTo(seq: number, term: number): void {
    // A failover loses nothing: the image promoted holds every byte the client was ever sent.
    assert(seq >= this.#releasedEnd, `output commit: the promoted image ends at byte ${seq}, but bytes up to ${this.#releasedEnd} already left (a backup older than committed output was promoted)`);
    this.#guestTerm = Math.max(this.#guestTerm, term);
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

  /** A guest segment on tx. A fenced primary's guest may still run: only the newest term's emissions count. */
  observeGuest(seg: Segment): void {
    if (seg.term < this.#guestTerm) return;
    this.#guestTerm = seg.term;
    const end = seg.seq + seg.payload.length;
    if (seg.payload.length === 0 || end <= this.#maxSeen) return;
    if (this.#maxSeen === 0) {
      this.#maxSeen = seg.seq;
      this.#firstSeq = seg.seq;
    }
    this.#ends.push(end);
    this.#epochs.push(seg.epoch);
    this.#maxSeen = end;
  }

  /** Asserts output commit and one primary for a segment about to enter the wire toward the client. */
  check(seg: Segment, nowUs: number): void {
    this.segmentsChecked++;
    // One primary: once a newer term has put output on the wire, an older term never may again.
    assert(seg.term >= this.#maxTerm, `one primary: term ${seg.term} output at ${nowUs}µs after term ${this.#maxTerm} began releasing`);
    this.#maxTerm = seg.term;
    const applied = this.committedEpoch();
    assert(seg.epoch <= applied, `output commit: segment seq ${seg.seq} of epoch ${seg.epoch} left at ${nowUs}µs, backup has epoch ${applied}`);
    if (seg.payload.length === 0) return;
    const lastByte = seg.seq + seg.payload.length - 1;
    const epoch = this.epochOfByte(lastByte);
    assert(epoch !== null, `output commit: byte ${lastByte} reached the wire but the guest never emitted it`);
    assert(epoch <= applied, `output commit: byte ${lastByte} of epoch ${epoch} left at ${nowUs}µs, backup has epoch ${applied}`);
    this.#releasedEnd = Math.max(this.#releasedEnd, lastByte + 1);
  }

  epochOfByte(seq: number): number | null {
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

/** A hop that lets the oracle see each packet before the link takes it. */
export class CheckedHop implements Hop {
  constructor(
    readonly inner: Hop,
    readonly check: (msg: WireMessage, nowUs: number) => void,
  ) {}

  transit(msg: WireMessage, nowUs: number): number {
    this.check(msg, nowUs);
    return this.inner.transit(msg, nowUs);
  }
}
