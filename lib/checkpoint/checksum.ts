import { createCipheriv } from 'node:crypto';
import type { CipherGCM } from 'node:crypto';
import { assert } from '../assert.js';

/** Bytes of a chunk checksum. */
export const CHECKSUM_BYTES = 16;

// A fixed key and nonce: the checksum guards against corruption and mix-ups
// between hosts that trust each other, not against forgery (TLS on the bus
// does that), so nothing is secret and the result is a pure function.
const KEY = new Uint8Array(16);
const NONCE = new Uint8Array(12);

/**
 * The integrity checksum of a checkpoint chunk: AES-128-GMAC under a fixed
 * key, 128 bits. As TigerBeetle's AEGIS-128L checksum, it is a MAC used as a
 * checksum: AES-NI and carry-less multiply make it 3-4x faster than SHA-256
 * on 256 KiB chunks (docs/design-notes.md), and every checkpoint byte is
 * checksummed twice, by the primary and by the backup.
 *
 * Begun over the data, finished with a `tail` (a chunk's header fields)
 * once that is known: a chunk writer begins it as each chunk fills, while
 * its bytes are in the cache, before it knows how many chunks its part
 * will have. Two AAD inputs authenticate their concatenation, so the tail
 * is a field of its own and the data are not copied.
 */
export class BegunChecksum {
  readonly #gmac: CipherGCM;
  #finished = false;

  constructor(readonly data: Uint8Array) {
    this.#gmac = createCipheriv('aes-128-gcm', KEY, NONCE);
    this.#gmac.setAAD(data);
  }

  /** The checksum of the data followed by `tail`; once only (the GMAC state is spent). */
  finish(tail?: Uint8Array): Uint8Array {
    assert(!this.#finished, () => `a checksum over ${this.data.length} B finished twice`);
    this.#finished = true;
    if (tail !== undefined) this.#gmac.setAAD(tail);
    this.#gmac.final();
    const tag = this.#gmac.getAuthTag();
    assert(tag.length === CHECKSUM_BYTES, () => `GMAC tag of ${tag.length} bytes`);
    return new Uint8Array(tag.buffer, tag.byteOffset, tag.byteLength);
  }
}

/** The checksum of `data` followed by `tail`, at once. */
export function checksum(data: Uint8Array, tail?: Uint8Array): Uint8Array {
  return new BegunChecksum(data).finish(tail);
}
