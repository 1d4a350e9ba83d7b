import { assert } from '../assert.js';
import { copyFromRun, runLength, type ByteRun, type BytePieces } from '../checkpoint/byte-run.js';
import { expectSnapshot, parseSnapshot, sendBufferSnapshotSchema, type SendBufferSnapshot } from './snapshot.js';

const SLAB_BYTES = 256 * 1024;

/**
 * The socket send buffer: a byte ring holding stream bytes [unaSeq, endSeq),
 * i.e. written by the application and not yet acknowledged. Bounded by its
 * capacity: a write takes only what fits, the rest waits for ACKs.
 */
export class SendBuffer {
  readonly #ring: Uint8Array;
  #startSeq: number;
  #endSeq: number;
  #slab = new Uint8Array(0);
  /** Starts full, so the first copy allocates a slab. */
  #slabUsed = SLAB_BYTES;

  constructor(
    readonly capacityBytes: number,
    firstSeq: number,
    /** Backing bytes (e.g. guest memory) and write tracking; a private array otherwise. */
    readonly backing?: { readonly bytes: Uint8Array; markDirty(offset: number, lengthBytes: number): void },
  ) {
    assert(capacityBytes > 0, 'send buffer needs capacity');
    assert(backing === undefined || backing.bytes.length === capacityBytes, 'send ring backing must match the capacity');
    this.#ring = backing?.bytes ?? new Uint8Array(capacityBytes);
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

  /**
   * Appends up to `maxBytes`; `fill(dst, streamSeq)` writes the bytes in at
   * most two pieces (the ring wraps). Returns the bytes accepted.
   */
  append(maxBytes: number, fill: (dst: Uint8Array, seq: number) => void): number {
    const n = Math.min(maxBytes, this.freeBytes);
    let done = 0;
    while (done < n) {
      const pos = (this.#endSeq + done) % this.capacityBytes;
      const piece = Math.min(n - done, this.capacityBytes - pos);
      fill(this.#ring.subarray(pos, pos + piece), this.#endSeq + done);
      this.backing?.markDirty(pos, piece);
      done += piece;
    }
    this.#endSeq += n;
    return n;
  }

  /** Appends as much of `bytes` as fits, in order; returns the bytes accepted. */
  appendBytes(bytes: ByteRun): number {
    let copied = 0;
    return this.append(runLength(bytes), (dst) => {
      copyFromRun(bytes, copied, dst);
      copied += dst.length;
    });
  }

  /**
   * Stream bytes [seq, seq+len) for a segment: a view of the ring, or a copy
   * where the ring wraps. A view stays exact while its bytes are unacknowledged,
   * which is as long as anyone reads them: a slot is written again only after
   * its bytes were acknowledged, that is after the receiver had them all, and
   * a receiver drops what lies below what it acknowledged. A late copy (a
   * retransmission the plug held, a duplicate on the bus) may then carry other
   * bytes, never to be read as data: only its length is (by the auditor).
   * Whoever keeps bytes beyond that (a checkpoint, a handover) takes `copyOut`.
   */
  view(seq: number, len: number): Uint8Array {
    assert(seq >= this.#startSeq && seq + len <= this.#endSeq, () => `view [${seq},${seq + len}) outside [${this.#startSeq},${this.#endSeq})`);
    const pos = seq % this.capacityBytes;
    if (pos + len <= this.capacityBytes) return this.#ring.subarray(pos, pos + len);
    return this.copyOut(seq, len);
  }

  /**
   * Stream bytes [seq, seq+len) as views of the ring (two where it wraps):
   * for a reader done with them before anything is appended or released,
   * such as a checkpoint encoding them. No copy.
   */
  views(seq: number, len: number): BytePieces {
    assert(seq >= this.#startSeq && seq + len <= this.#endSeq, () => `views [${seq},${seq + len}) outside [${this.#startSeq},${this.#endSeq})`);
    const pos = seq % this.capacityBytes;
    const first = Math.min(len, this.capacityBytes - pos);
    const head = this.#ring.subarray(pos, pos + first);
    return { pieces: first < len ? [head, this.#ring.subarray(0, len - first)] : [head] };
  }

  /** A copy of stream bytes [seq, seq+len), for bytes kept beyond their acknowledgement. */
  copyOut(seq: number, len: number): Uint8Array {
    const out = this.#allocate(len);
    copyFromRun(this.views(seq, len), 0, out);
    return out;
  }

  /**
   * Copies are carved from shared slabs: one small ArrayBuffer per copy costs
   * more than the copy itself. A slab is freed by the garbage collector once
   * nothing views it.
   */
  #allocate(len: number): Uint8Array {
    if (len > SLAB_BYTES / 4) return new Uint8Array(len);
    if (this.#slabUsed + len > SLAB_BYTES) {
      this.#slab = new Uint8Array(SLAB_BYTES);
      this.#slabUsed = 0;
    }
    const out = this.#slab.subarray(this.#slabUsed, this.#slabUsed + len);
    this.#slabUsed += len;
    return out;
  }

  /** The indices; the bytes are in the backing (guest memory), checkpointed as pages. */
  snapshot(): SendBufferSnapshot {
    return { capacityBytes: this.capacityBytes, startSeq: this.#startSeq, endSeq: this.#endSeq };
  }

  /**
   * Takes a snapshot's indices without touching the bytes: the backing must
   * already hold them (restored guest memory). Throws SnapshotError if the
   * snapshot is malformed or of a ring of another capacity.
   */
  restoreIndices(snapshot: SendBufferSnapshot): void {
    const s = parseSnapshot(sendBufferSnapshotSchema, snapshot, 'send buffer');
    expectSnapshot(s.capacityBytes === this.capacityBytes, `send buffer snapshot of ${s.capacityBytes} B for a ${this.capacityBytes} B ring`);
    this.#startSeq = s.startSeq;
    this.#endSeq = s.endSeq;
  }

  /** Frees bytes below `seq` (acknowledged). */
  release(seq: number): void {
    const upTo = Math.min(seq, this.#endSeq);
    if (upTo > this.#startSeq) this.#startSeq = upTo;
  }
}
