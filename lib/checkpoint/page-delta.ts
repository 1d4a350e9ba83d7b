import { assert } from '../assert.js';
import { DecodeError } from '../errors.js';
import { putVarint } from '../varint.js';

/** The byte order of typed-array words here: a DataView writes a word back as the bytes it was read from only in it. */
const PLATFORM_LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

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
  const dstView = aligned ? new DataView(dst.buffer, dst.byteOffset, dst.byteLength) : null;
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
      // An aligned word whose 4 bytes all changed starts no run of 4 equal bytes at any of them: each run would hold one.
      if (a !== null && b !== null && (k & 3) === 0 && k + 4 <= n && !hasZeroByte(a[k >>> 2]! ^ b[k >>> 2]!)) {
        literals += 4;
      } else {
        if (page[k] === previous[k] && k + 3 < n && page[k + 1] === previous[k + 1] && page[k + 2] === previous[k + 2] && page[k + 3] === previous[k + 3]) break;
        literals++;
      }
      // The pair's header only adds to it: a page this new is cheaper raw, whatever follows.
      if (pos + literals >= limitBytes) return -1;
    }
    pos = putVarint(dst, pos, zeros);
    pos = putVarint(dst, pos, literals);
    if (pos + literals >= limitBytes) return -1;
    let k = i + zeros;
    const end = k + literals;
    if (a !== null && b !== null && dstView !== null) {
      while (k < end && (k & 3) !== 0) dst[pos++] = page[k]! ^ previous[k++]!;
      // Whole words XORed at once, written in the byte order the word views read them in.
      for (; k + 4 <= end; k += 4, pos += 4) dstView.setUint32(pos, a[k >>> 2]! ^ b[k >>> 2]!, PLATFORM_LITTLE_ENDIAN);
    }
    while (k < end) dst[pos++] = page[k]! ^ previous[k++]!;
    i += zeros + literals;
  }
  return pos;
}

/** Whether one of the 4 bytes of a 32-bit word is zero (exact: a borrow reaches a byte's top bit only past a zero byte). */
function hasZeroByte(word: number): boolean {
  return ((word - 0x01010101) & ~word & 0x80808080) !== 0;
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
    if (page !== null) xorInto(page, i, src, pos, literals);
    i += literals;
    pos += literals;
  }
  return pos - offset;
}

/** page[at, at + length) ^= src[from, from + length): a word at a time where the page is aligned. */
function xorInto(page: Uint8Array, at: number, src: Uint8Array, from: number, length: number): void {
  let k = 0;
  if (length >= 8 && (page.byteOffset & 3) === 0) {
    while (((at + k) & 3) !== 0) {
      page[at + k] = page[at + k]! ^ src[from + k]!;
      k++;
    }
    const words = new Uint32Array(page.buffer, page.byteOffset + at + k, (length - k) >>> 2);
    const view = new DataView(src.buffer, src.byteOffset + from + k, words.length * 4);
    for (let w = 0; w < words.length; w++) words[w] = words[w]! ^ view.getUint32(w * 4, PLATFORM_LITTLE_ENDIAN);
    k += words.length * 4;
  }
  for (; k < length; k++) page[at + k] = page[at + k]! ^ src[from + k]!;
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
