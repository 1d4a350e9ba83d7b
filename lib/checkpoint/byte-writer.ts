import { assert } from '../assert.js';
import { putVarint, varintLength } from '../varint.js';

const EMPTY = new Uint8Array(0);

/** An append-only byte buffer that grows by doubling. */
export class ByteWriter {
  #buf: Uint8Array;
  #len = 0;

  constructor(readonly initialBytes = 4096) {
    this.#buf = new Uint8Array(initialBytes);
  }

  get length(): number {
    return this.#len;
  }

  #ensure(extra: number): void {
    if (this.#len + extra <= this.#buf.length) return;
    let size = Math.max(this.#buf.length * 2, this.initialBytes, 1);
    while (size < this.#len + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  byte(value: number): void {
    this.#ensure(1);
    this.#buf[this.#len++] = value;
  }

  bytes(src: ArrayLike<number>): void {
    this.#ensure(src.length);
    this.#buf.set(src, this.#len);
    this.#len += src.length;
  }

  varint(value: number): void {
    // 7 bits a byte of a non-negative integer: anything else would be written as some other number.
    assert(Number.isSafeInteger(value) && value >= 0, () => `varint of ${value}`);
    // Room checked once, not a byte at a time: three varints a page record, millions of records a run.
    this.#ensure(varintLength(value));
    this.#len = putVarint(this.#buf, this.#len, value);
  }

  /**
   * The bytes written; the writer starts over. A buffer at least half full
   * is handed over as it is (no copy: checkpoint chunks are most of the
   * simulator's bytes) and the writer takes a fresh one at its next write
   * (the last chunk of a checkpoint has none: a chunk-sized array allocated
   * and zeroed for nothing was most of a sweep's page faults); from an
   * emptier one the bytes are copied out, so that a few of them do not pin it.
   */
  take(): Uint8Array {
    let out: Uint8Array;
    if (2 * this.#len >= this.#buf.length) {
      out = this.#buf.subarray(0, this.#len);
      this.#buf = EMPTY;
    } else {
      out = this.#buf.slice(0, this.#len);
    }
    this.#len = 0;
    return out;
  }
}
