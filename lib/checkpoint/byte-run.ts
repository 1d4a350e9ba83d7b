import { assert } from '../assert.js';
import { DecodeError } from '../errors.js';

/**
 * Bytes in order, in one array or in pieces: a ring buffer's two ends, a
 * part that travels as several chunks. Joined only where they land, so a
 * checkpoint's megabytes are not copied once more just to lie contiguous.
 */
export type ByteRun = Uint8Array | BytePieces;

/** Pieces in order. Deliberately without a `length`: a run's length is runLength's, never a count of pieces. */
export interface BytePieces {
  readonly pieces: readonly Uint8Array[];
}

export const piecesOf = (run: ByteRun): readonly Uint8Array[] => (run instanceof Uint8Array ? [run] : run.pieces);

export function runLength(run: ByteRun): number {
  if (run instanceof Uint8Array) return run.length;
  let n = 0;
  for (const piece of run.pieces) n += piece.length;
  return n;
}

/** Fills `dst` with the run's bytes from `offset` on. */
export function copyFromRun(run: ByteRun, offset: number, dst: Uint8Array): void {
  assert(offset >= 0 && offset + dst.length <= runLength(run), () => `${dst.length} B from ${offset} of a ${runLength(run)} B run`);
  if (run instanceof Uint8Array) {
    dst.set(run.subarray(offset, offset + dst.length));
    return;
  }
  let skip = offset;
  let done = 0;
  for (const piece of piecesOf(run)) {
    if (done === dst.length) return;
    if (skip >= piece.length) {
      skip -= piece.length;
      continue;
    }
    const n = Math.min(piece.length - skip, dst.length - done);
    dst.set(piece.subarray(skip, skip + n), done);
    done += n;
    skip = 0;
  }
}

/** The run as one array: itself when it is one (no copy). */
export function joinRun(run: ByteRun): Uint8Array {
  if (run instanceof Uint8Array) return run;
  if (run.pieces.length === 1) return run.pieces[0]!;
  const out = new Uint8Array(runLength(run));
  copyFromRun(run, 0, out);
  return out;
}

/** Reads a run front to back, across its pieces. Reading past its end is a DecodeError. */
export class RunReader {
  readonly #pieces: readonly Uint8Array[];
  #piece = 0;
  #pos = 0;
  #remaining: number;

  constructor(run: ByteRun) {
    this.#pieces = piecesOf(run);
    this.#remaining = runLength(run);
  }

  get remaining(): number {
    return this.#remaining;
  }

  byte(): number {
    this.#skipSpent();
    if (this.#remaining === 0) throw new DecodeError('read past the end');
    this.#remaining--;
    return this.#pieces[this.#piece]![this.#pos++]!;
  }

  /** A varint as page-delta.ts writes it (7 bits a byte, least significant first). */
  varint(): number {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (this.#remaining === 0) throw new DecodeError('varint runs past the end');
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
      if (scale > 2 ** 49) throw new DecodeError('varint too long');
    }
  }

  /** The next `n` bytes: a view when they lie in one piece, views of each piece otherwise. */
  take(n: number): ByteRun {
    if (n > this.#remaining) throw new DecodeError(`${n} B asked, ${this.#remaining} B left`);
    this.#remaining -= n;
    this.#skipSpent();
    const first = this.#pieces[this.#piece];
    if (first === undefined || this.#pos + n <= first.length) {
      const view = first === undefined ? new Uint8Array(0) : first.subarray(this.#pos, this.#pos + n);
      this.#pos += n;
      return view;
    }
    const views: Uint8Array[] = [];
    for (let left = n; left > 0; ) {
      this.#skipSpent();
      const piece = this.#pieces[this.#piece]!;
      const k = Math.min(left, piece.length - this.#pos);
      views.push(piece.subarray(this.#pos, this.#pos + k));
      this.#pos += k;
      left -= k;
    }
    return { pieces: views };
  }

  #skipSpent(): void {
    while (this.#piece < this.#pieces.length && this.#pos === this.#pieces[this.#piece]!.length) {
      this.#piece++;
      this.#pos = 0;
    }
  }
}
