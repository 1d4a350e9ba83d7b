import { DecodeError } from '../errors.js';
import { PAGE_BYTES, type PagedMemory } from '../memory/paged-memory.js';
import { ByteWriter } from './byte-writer.js';
import { BegunChecksum } from './checksum.js';
import type { WrittenPart } from './chunks.js';
import type { PageSource } from './page-shadow.js';
import { bytesEqual } from './hash.js';
import { applyXorRle, checkXorRle, encodeXorRleInto, readVarint, XOR_RLE_PAIR_HEADER_MAX_BYTES } from './page-delta.js';

const RAW = 0;
const XOR_RLE = 1;
/** Below this share of unchanged 32-bit words a delta cannot pay off: send the page raw. */
const DELTA_MIN_UNCHANGED_SHARE = 0.25;
/** Page index varint + encoding byte + length varint, at most. */
export const PAGE_RECORD_HEADER_MAX_BYTES = 5 + 1 + 3;

/** The delta of a page against an equal one: a single run of PAGE_BYTES unchanged bytes. */
const UNCHANGED_PAGE_DELTA = ((): Uint8Array => {
  const zeros = new Uint8Array(PAGE_BYTES);
  const dst = new Uint8Array(PAGE_BYTES + XOR_RLE_PAIR_HEADER_MAX_BYTES);
  return dst.slice(0, encodeXorRleInto(zeros, zeros, dst, PAGE_BYTES));
})();

export interface PackedPages extends WrittenPart {
  readonly pieces: Uint8Array[];
  /** Page bytes each piece stands for before encoding. */
  readonly rawBytes: number[];
  readonly checksums: BegunChecksum[];
}

/**
 * Packs dirty pages into chunks of at most `chunkBytes`: records of
 * (page index, encoding, length, bytes). With a `shadow` (the backup's copy),
 * a page is sent as XOR+RLE against it when that is smaller, and the shadow
 * takes the page's new content.
 */
export function packPages(memory: PagedMemory, shadow: PageSource | null, pages: readonly number[], chunkBytes: number): PackedPages {
  const pieces: Uint8Array[] = [];
  const rawBytes: number[] = [];
  const checksums: BegunChecksum[] = [];
  // Room for every page raw, up to a chunk: the writer never grows (no doubling copies).
  const current = new ByteWriter(Math.max(1, Math.min(chunkBytes, pages.length * (PAGE_BYTES + PAGE_RECORD_HEADER_MAX_BYTES))));
  let currentRaw = 0;
  const flush = () => {
    if (current.length === 0) return;
    const piece = current.take();
    pieces.push(piece);
    // Begun now, while the piece is in the cache; the chunk's header is added once the count is known.
    checksums.push(new BegunChecksum(piece));
    rawBytes.push(currentRaw);
    currentRaw = 0;
  };
  // One page's delta at a time; a delta of a page's size or more is sent raw.
  const delta = new Uint8Array(2 * PAGE_BYTES);
  for (const p of pages) {
    const page = memory.page(p);
    const previous = shadow?.page(p);
    let body: Uint8Array = page;
    let encoding = RAW;
    let changed = true;
    if (previous !== undefined && deltaMayPay(page, previous)) {
      const written = encodeXorRleInto(page, previous, delta, PAGE_BYTES);
      if (written >= 0) {
        body = delta.subarray(0, written);
        encoding = XOR_RLE;
        changed = !bytesEqual(body, UNCHANGED_PAGE_DELTA);
      }
    }
    if (current.length + PAGE_RECORD_HEADER_MAX_BYTES + body.length > chunkBytes) flush();
    current.varint(p);
    current.byte(encoding);
    current.varint(body.length);
    current.bytes(body);
    currentRaw += PAGE_BYTES;
    // An unchanged page is not stored: storing touches shadow memory that may never have been (a new guest's zeros).
    if (changed) shadow?.store(p, page);
  }
  flush();
  return { pieces, rawBytes, checksums };
}

/**
 * Checks that a page chunk is well formed for a `pageCount`-page image
 * without writing any page: a backup checks every part of an epoch before
 * applying any, so an epoch that does not decode leaves the image as it was.
 */
export function checkPages(chunk: Uint8Array, pageCount: number): void {
  walkPages(chunk, pageCount, null);
}

/** Applies a chunk's pages to `image` (the backup's copy); returns the page indices written. */
export function unpackPages(chunk: Uint8Array, image: PagedMemory): number[] {
  return walkPages(chunk, image.pageCount, image);
}

/** Reads a chunk's page records, writing them into `image` unless that is null; returns the page indices. */
function walkPages(chunk: Uint8Array, pageCount: number, image: PagedMemory | null): number[] {
  let pos = 0;
  const pages: number[] = [];
  while (pos < chunk.length) {
    const [index, p1] = readVarint(chunk, pos);
    if (index >= pageCount) throw new DecodeError(`page ${index} outside a ${pageCount}-page image`);
    const encoding = chunk[p1];
    const [length, p2] = readVarint(chunk, p1 + 1);
    if (p2 + length > chunk.length) throw new DecodeError('page record overruns its chunk');
    if (encoding === RAW) {
      if (length !== PAGE_BYTES) throw new DecodeError(`raw page of ${length} bytes`);
      image?.page(index).set(chunk.subarray(p2, p2 + length));
    } else if (encoding === XOR_RLE) {
      const used = image === null ? checkXorRle(PAGE_BYTES, chunk, p2, p2 + length) : applyXorRle(image.page(index), chunk, p2, p2 + length);
      if (used !== length) throw new DecodeError('page delta length mismatch');
    } else {
      throw new DecodeError(`unknown page encoding ${encoding}`);
    }
    pos = p2 + length;
    pages.push(index);
  }
  return pages;
}

const PAGE_WORDS = PAGE_BYTES / 4;
/** The delta test reads 8 of a page's 64 cache lines (16 words each), spread over it: a sample of whole lines, since a read costs its line. */
const SAMPLE_LINES = 8;
const LINE_WORDS = 16;
const SAMPLE_STRIDE_WORDS = PAGE_WORDS / SAMPLE_LINES;
const SAMPLE_WORDS = SAMPLE_LINES * LINE_WORDS;
const SAMPLE_MIN_UNCHANGED = Math.ceil(DELTA_MIN_UNCHANGED_SHARE * SAMPLE_WORDS);
/** The sampled lines, farthest apart first: the page's first line, its middle one, then the quarters and eighths between. */
const SAMPLE_ORDER = [0, 4, 2, 6, 1, 3, 5, 7];
/**
 * A page whose first QUICK_REJECT_LINES sampled lines (its first and its
 * middle one) share no word with the shadow is taken for new bytes and sent
 * raw without reading more: a bulk sender's ring pages are, and each line
 * read of them is a miss in the cache (4% of a speculative run). A page new
 * over more than half but not all of it is then sent raw where a delta would
 * have been smaller (checkpoints 0.01–0.06% larger in the default sweep).
 */
const QUICK_REJECT_LINES = 2;

/**
 * True when at least DELTA_MIN_UNCHANGED_SHARE of a sample of the page's
 * 32-bit words are unchanged; stops as soon as the answer is known. A sample,
 * not every word: on a page of new bytes (most of a bulk sender's pages)
 * every word read is a miss in the cache, and the choice only decides which
 * valid encoding is tried (the delta still gives up where it would not be
 * smaller).
 */
function deltaMayPay(page: Uint8Array, previous: Uint8Array): boolean {
  const a = new Uint32Array(page.buffer, page.byteOffset, PAGE_WORDS);
  const b = new Uint32Array(previous.buffer, previous.byteOffset, PAGE_WORDS);
  let same = 0;
  let read = 0;
  for (let k = 0; k < SAMPLE_LINES; k++) {
    const line = SAMPLE_ORDER[k]! * SAMPLE_STRIDE_WORDS;
    for (let i = line; i < line + LINE_WORDS; i++) if (a[i] === b[i]) same++;
    read += LINE_WORDS;
    if (same >= SAMPLE_MIN_UNCHANGED) return true;
    if (same + (SAMPLE_WORDS - read) < SAMPLE_MIN_UNCHANGED) return false;
    if (k === QUICK_REJECT_LINES - 1 && same === 0) return false;
  }
  return false;
}
