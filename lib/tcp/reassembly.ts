import { base64ToBytes, bytesToBase64, type ReassemblyPieceSnapshot } from './snapshot.js';

/**
 * Out-of-order segments held by a receiver: sorted, non-overlapping pieces.
 * Bounded by the receiver, which never accepts data beyond its window.
 */
export class Reassembly {
  #pieces: { seq: number; data: Uint8Array }[] = [];
  #bytes = 0;

  get bytes(): number {
    return this.#bytes;
  }
  get isEmpty(): boolean {
    return this.#pieces.length === 0;
  }

  /** The held pieces, in order, with their bytes copied (base64). */
  snapshot(): ReassemblyPieceSnapshot[] {
    return this.#pieces.map((p) => ({ seq: p.seq, data: bytesToBase64(p.data) }));
  }

  /**
   * Replaces the contents with a snapshot's pieces. The caller validated them
   * (sorted, non-overlapping, non-empty, base64): see TcpReceiver.restore.
   */
  restore(pieces: readonly ReassemblyPieceSnapshot[]): void {
    this.#pieces = pieces.map((p) => ({ seq: p.seq, data: base64ToBytes(p.data) }));
    this.#bytes = this.#pieces.reduce((n, p) => n + p.data.length, 0);
  }

  /** Stores the parts of [seq, seq+data.length) not already held. */
  insert(seq: number, data: Uint8Array): void {
    const pieces = this.#pieces;
    let start = seq;
    const end = seq + data.length;
    let i = lowerBound(pieces, start);
    // A predecessor may cover the front.
    if (i > 0) {
      const prev = pieces[i - 1]!;
      start = Math.max(start, prev.seq + prev.data.length);
    }
    const added: { seq: number; data: Uint8Array }[] = [];
    while (start < end) {
      const next = pieces[i];
      const gapEnd = next === undefined ? end : Math.min(end, next.seq);
      if (gapEnd > start) added.push({ seq: start, data: data.subarray(start - seq, gapEnd - seq) });
      if (next === undefined || next.seq >= end) break;
      start = next.seq + next.data.length;
      i++;
    }
    for (const piece of added) {
      pieces.splice(lowerBound(pieces, piece.seq), 0, piece);
      this.#bytes += piece.data.length;
    }
  }

  /** Removes and returns the pieces contiguous from `rcvNxt`; drops any below it. */
  pull(rcvNxt: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let next = rcvNxt;
    let taken = 0;
    for (const piece of this.#pieces) {
      const pieceEnd = piece.seq + piece.data.length;
      if (piece.seq > next) break;
      taken++;
      this.#bytes -= piece.data.length;
      if (pieceEnd > next) {
        out.push(piece.data.subarray(next - piece.seq));
        next = pieceEnd;
      }
    }
    if (taken > 0) this.#pieces.splice(0, taken);
    return out;
  }
}

function lowerBound(pieces: readonly { seq: number }[], seq: number): number {
  let lo = 0;
  let hi = pieces.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pieces[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
