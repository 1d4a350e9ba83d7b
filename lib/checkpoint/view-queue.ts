import { assert } from '../assert.js';
import { joinRun, piecesOf, runLength, type ByteRun, type BytePieces } from './byte-run.js';

/** Released pieces are dropped from the front of the list once they are this many and half of it. */
const COMPACT_AFTER_PIECES = 64;

/**
 * Stream bytes [startSeq, endSeq) kept as the arrays they arrived in, in
 * order, bounded by `capacityBytes`: a backup's copy of a speculative buffer.
 * Appending copies nothing, where a ring would copy every byte of every
 * checkpoint once more. The arrays must not change after they are appended:
 * checkpoint chunks, which nothing writes once checksummed, and decoded bus
 * messages, each in a buffer of its own. What it holds in memory is the
 * arrays its pieces are views of: the chunks of the epochs it keeps.
 */
export class ViewQueue {
  readonly #pieces: (Uint8Array | undefined)[] = [];
  /** Index of the first piece holding unreleased bytes. */
  #head = 0;
  /** Bytes of the head piece already released. */
  #headReleased = 0;
  #startSeq: number;
  #endSeq: number;

  constructor(
    readonly capacityBytes: number,
    firstSeq: number,
  ) {
    assert(Number.isSafeInteger(capacityBytes) && capacityBytes > 0, () => `a view queue of ${capacityBytes} B`);
    assert(Number.isSafeInteger(firstSeq) && firstSeq >= 0, () => `a view queue from ${firstSeq}`);
    this.#startSeq = firstSeq;
    this.#endSeq = firstSeq;
  }

  get startSeq(): number {
    return this.#startSeq;
  }
  get endSeq(): number {
    return this.#endSeq;
  }
  get usedBytes(): number {
    return this.#endSeq - this.#startSeq;
  }
  get freeBytes(): number {
    return this.capacityBytes - this.usedBytes;
  }

  /** Length of the piece list, released slots not yet dropped among them: under twice the live pieces plus COMPACT_AFTER_PIECES. */
  get listLength(): number {
    return this.#pieces.length;
  }

  /** Appends the run's bytes at endSeq; they must fit (the caller checks the bound, as a backup checks an epoch before applying it). */
  append(run: ByteRun): void {
    const length = runLength(run);
    assert(length <= this.freeBytes, () => `${length} B appended with ${this.freeBytes} B free of ${this.capacityBytes}`);
    for (const piece of piecesOf(run)) if (piece.length > 0) this.#pieces.push(piece);
    this.#endSeq += length;
  }

  /** Frees bytes below `seq` (acknowledged); a seq at or below startSeq frees nothing. */
  release(seq: number): void {
    const upTo = Math.min(seq, this.#endSeq);
    if (upTo <= this.#startSeq) return;
    let left = upTo - this.#startSeq;
    while (left > 0) {
      const head = this.#pieces[this.#head]!;
      const unreleased = head.length - this.#headReleased;
      if (left < unreleased) {
        this.#headReleased += left;
        break;
      }
      left -= unreleased;
      this.#pieces[this.#head] = undefined; // the chunk it views may go
      this.#head++;
      this.#headReleased = 0;
    }
    this.#startSeq = upTo;
    if (this.#head >= COMPACT_AFTER_PIECES && 2 * this.#head >= this.#pieces.length) {
      this.#pieces.splice(0, this.#head);
      this.#head = 0;
    }
    assert(this.#startSeq < this.#endSeq || this.#head === this.#pieces.length, () => `an empty view queue keeps ${this.#pieces.length - this.#head} pieces`);
  }

  /** Stream bytes [seq, seq+len) as views of the arrays that hold them. No copy. */
  views(seq: number, len: number): BytePieces {
    assert(seq >= this.#startSeq && len >= 0 && seq + len <= this.#endSeq, () => `views [${seq},${seq + len}) outside [${this.#startSeq},${this.#endSeq})`);
    const out: Uint8Array[] = [];
    let skip = seq - this.#startSeq + this.#headReleased;
    let left = len;
    for (let i = this.#head; left > 0; i++) {
      const piece = this.#pieces[i]!;
      if (skip >= piece.length) {
        skip -= piece.length;
        continue;
      }
      const n = Math.min(piece.length - skip, left);
      out.push(piece.subarray(skip, skip + n));
      left -= n;
      skip = 0;
    }
    return { pieces: out };
  }

  /** A copy of stream bytes [seq, seq+len). */
  copyOut(seq: number, len: number): Uint8Array {
    const run = this.views(seq, len);
    return run.pieces.length === 1 ? run.pieces[0]!.slice() : joinRun(run);
  }
}
