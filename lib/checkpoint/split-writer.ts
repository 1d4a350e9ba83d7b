import { assert } from '../assert.js';
import { putVarint, varintLength } from '../varint.js';
import { BegunChecksum } from './checksum.js';
import type { WrittenPart } from './chunks.js';

/**
 * Writes a part of known length straight into its chunks: the bytes that
 * `splitBytes` would cut from the whole part, without the whole part. An
 * epoch's speculative part is megabytes; allocated whole each epoch, its
 * fresh pages cost more than the copy itself on a machine with slow page
 * faults, while chunk-sized arrays are reused by the allocator. Each
 * chunk's checksum is begun as the chunk fills, while its bytes are in the
 * cache: begun over a whole epoch's part afterwards, it read them back from
 * memory.
 */
export class SplitWriter {
  readonly chunks: Uint8Array[] = [];
  readonly #checksums: BegunChecksum[] = [];
  #chunk: Uint8Array;
  #pos = 0;
  #left: number;

  constructor(
    readonly totalBytes: number,
    readonly chunkBytes: number,
  ) {
    assert(Number.isSafeInteger(totalBytes) && totalBytes >= 0, () => `a part of ${totalBytes} B`);
    assert(Number.isSafeInteger(chunkBytes) && chunkBytes >= 1, () => `chunks of ${chunkBytes} B`);
    this.#left = totalBytes;
    this.#chunk = this.#next();
    if (totalBytes === 0) this.#checksums.push(new BegunChecksum(this.#chunk));
  }

  /** Bytes still to write; the part is done at zero. */
  get remaining(): number {
    return this.#left + (this.#chunk.length - this.#pos);
  }

  #next(): Uint8Array {
    const size = Math.min(this.chunkBytes, this.#left);
    this.#left -= size;
    const chunk = new Uint8Array(size);
    this.chunks.push(chunk);
    this.#pos = 0;
    return chunk;
  }

  bytes(src: Uint8Array): void {
    assert(src.length <= this.remaining, () => `${src.length} B written with ${this.remaining} B left of the part`);
    let from = 0;
    while (from < src.length) {
      if (this.#pos === this.#chunk.length) this.#chunk = this.#next();
      const n = Math.min(src.length - from, this.#chunk.length - this.#pos);
      this.#chunk.set(from === 0 && n === src.length ? src : src.subarray(from, from + n), this.#pos);
      this.#pos += n;
      from += n;
      if (this.#pos === this.#chunk.length) this.#checksums.push(new BegunChecksum(this.#chunk));
    }
  }

  varint(value: number): void {
    assert(Number.isSafeInteger(value) && value >= 0, () => `varint of ${value}`);
    const encoded = new Uint8Array(varintLength(value));
    putVarint(encoded, 0, value);
    this.bytes(encoded);
  }

  /** The chunks and their begun checksums, once every byte announced is written. */
  take(): WrittenPart {
    assert(this.remaining === 0, () => `a part taken with ${this.remaining} B unwritten`);
    assert(this.#checksums.length === this.chunks.length, () => `${this.#checksums.length} checksums begun for ${this.chunks.length} full chunks`);
    return { pieces: this.chunks, checksums: this.#checksums };
  }
}
