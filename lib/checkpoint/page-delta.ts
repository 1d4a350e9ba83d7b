import { assert } from '../assert.js';
import { DecodeError } from '../errors.js';
import { putVarint } from '../varint.js';

/** Two LEB128 lengths of up to 2^21 each: the header of one (zero run, literal run) pair. */
export const XOR_RLE_PAIR_HEADER_MAX_BYTES = 6;

/**
 * XOR+RLE page delta (as Remus compresses checkpoints): the XOR of a page
 * with the backup's copy is mostly zeros; encode it as (zero run, literal run)
 * pairs of LEB128 lengths followed by the literal bytes, into `dst` from its
 * start without allocating. Returns the bytes written, or -1 as soon as the
 * delta would take `limitBytes` or more (the page is cheaper raw). `dst` has
 * room for `limitBytes` plus one pair's header.
 */
export function encodeXorRleInto(page: Uint8Array, previous: Uint8Array, dst: Uint8Array, limitBytes: number): number {
  assert(page.length === previous.length, 'page and previous differ in size');
  assert(page.length < 2 ** 21 && dst.length >= limitBytes + XOR_RLE_PAIR_HEADER_MAX_BYTES, () => `XOR+RLE target of ${dst.length} B for a limit of ${limitBytes} B`);
  let pos = 0;
  let i = 0;
  const n = page.length;
  // Pages are word-aligned views of guest memory: unchanged stretches are skipped a word at a time.
  const aligned = page.byteOffset % 4 === 0 && previous.byteOffset % 4 === 0;
  const a = aligned ? new Uint32Array(page.buffer, page.byteOffset, n >>> 2) : null;
  const b = aligned ? new Uint32Array(previous.buffer, previous.byteOffset, n >>> 2) : null;
  while (i < n) {
    let j = i;
    if (a !== null && b !== null) {
      while (j < n && (j & 3) !== 0 && page[j] === previous[j]) j++;
      if ((j & 3) === 0) {
        let w = j >>> 2;
        while (w < a.length && a[w] === b[w]) w++;
        j = w << 2;
      }
    }
    while (j < n && page[j] === previous[j]) j++;
    const zeros = j - i;
    let literals = 0;
    // A literal run ends at the first run of 4 equal bytes (shorter runs are cheaper as literals).
    while (i + zeros + literals < n) {
      const k = i + zeros + literals;
      if (page[k] === previous[k] && k + 3 < n && page[k + 1] === previous[k + 1] && page[k + 2] === previous[k + 2] && page[k + 3] === previous[k + 3]) break;
      literals++;
    }
    pos = putVarint(dst, pos, zeros);
    pos = putVarint(dst, pos, literals);
    if (pos + literals >= limitBytes) return -1;
    for (let k = i + zeros; k < i + zeros + literals; k++) dst[pos++] = page[k]! ^ previous[k]!;
    i += zeros + literals;
  }
  return pos;
}

/** Applies an encoded delta to `page` (the previous copy) in place; returns bytes consumed. */
export function applyXorRle(page: Uint8Array, src: Uint8Array, offset: number, end: number): number {
  return walkXorRle(page, page.length, src, offset, end);
}

/** Checks that an encoded delta of a `pageBytes` page is well formed, without applying it; returns bytes it takes (DecodeError otherwise). */
export function checkXorRle(pageBytes: number, src: Uint8Array, offset: number, end: number): number {
  return walkXorRle(null, pageBytes, src, offset, end);
}

/** Reads a delta of a `pageBytes` page, applying it to `page` unless that is null; returns bytes consumed. */
function walkXorRle(page: Uint8Array | null, pageBytes: number, src: Uint8Array, offset: number, end: number): number {
  let pos = offset;
  let i = 0;
  while (i < pageBytes) {
    if (pos >= end) throw new DecodeError('page delta ends early');
    const [zeros, p1] = readVarint(src, pos);
    const [literals, p2] = readVarint(src, p1);
    pos = p2;
    i += zeros;
    if (i + literals > pageBytes || pos + literals > end) throw new DecodeError('page delta overruns its page');
    if (page !== null) for (let k = 0; k < literals; k++) page[i + k] = page[i + k]! ^ src[pos + k]!;
    i += literals;
    pos += literals;
  }
  return pos - offset;
}

export function writeVarint(out: number[], value: number): void {
  let v = value;
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

export function readVarint(src: Uint8Array, offset: number): [number, number] {
  let value = 0;
  let scale = 1;
  let pos = offset;
  for (;;) {
    if (pos >= src.length) throw new DecodeError('varint runs past the end');
    const b = src[pos++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, pos];
    scale *= 128;
    if (scale > 2 ** 49) throw new DecodeError('varint too long');
  }
}
