import { Rng } from '../../../lib/rng.js';

/** Prime, so the pattern never lines up with segment or page boundaries. */
const PATTERN_BYTES = 65_521;

/**
 * The deterministic byte stream a workload sends: byte i is a fixed function
 * of (seed, stream name, i). The receiver regenerates it to verify every byte.
 */
export class ByteGenerator {
  /** The pattern twice over, so any run of ≤ PATTERN_BYTES is one slice. */
  readonly #doubled: Buffer;

  constructor(seed: number, stream: string) {
    const rng = new Rng(seed, `bytes/${stream}`);
    this.#doubled = Buffer.alloc(2 * PATTERN_BYTES);
    for (let i = 0; i < PATTERN_BYTES; i += 4) {
      const v = rng.nextUint32();
      for (let k = 0; k < 4 && i + k < PATTERN_BYTES; k++) this.#doubled[i + k] = (v >>> (8 * k)) & 0xff;
    }
    this.#doubled.copyWithin(PATTERN_BYTES, 0, PATTERN_BYTES);
  }

  /** Writes stream bytes [offset, offset + dst.length) into dst. */
  fill(dst: Uint8Array, offset: number): void {
    let done = 0;
    while (done < dst.length) {
      const start = (offset + done) % PATTERN_BYTES;
      const n = Math.min(dst.length - done, PATTERN_BYTES);
      dst.set(this.#doubled.subarray(start, start + n), done);
      done += n;
    }
  }

  /** True when `chunk` equals stream bytes [offset, offset + chunk.length). */
  matches(chunk: Uint8Array, offset: number): boolean {
    let done = 0;
    while (done < chunk.length) {
      const start = (offset + done) % PATTERN_BYTES;
      const n = Math.min(chunk.length - done, PATTERN_BYTES);
      // Ranges, not subarrays: two views a segment cost more than the comparison.
      if (this.#doubled.compare(chunk, done, done + n, start, start + n) !== 0) return false;
      done += n;
    }
    return true;
  }
}

/** Checks a delivered stream chunk by chunk; remembers the first mismatch. */
export class StreamVerifier {
  bytesVerified = 0;
  firstMismatchOffset: number | null = null;

  constructor(readonly generator: ByteGenerator) {}

  get ok(): boolean {
    return this.firstMismatchOffset === null;
  }

  check(chunk: Uint8Array): void {
    if (this.firstMismatchOffset === null && !this.generator.matches(chunk, this.bytesVerified)) {
      this.firstMismatchOffset = this.bytesVerified;
    }
    this.bytesVerified += chunk.length;
  }
}
