/**
 * Unsigned LEB128 varints, as protobuf writes them (7 bits a byte, least
 * significant first): for safe non-negative integers, up to 2^53 (8 bytes).
 * The callers check their values; these only write.
 */

/** Bytes `value` takes as a varint. */
export function varintLength(value: number): number {
  let n = 1;
  for (let v = value; v >= 0x80; v = Math.floor(v / 0x80)) n++;
  return n;
}

/** Writes `value` at `at`; returns where the next byte goes. */
export function putVarint(dst: Uint8Array, at: number, value: number): number {
  let v = value;
  let pos = at;
  while (v >= 0x80) {
    dst[pos++] = (v & 0x7f) | 0x80;
    v = Math.floor(v / 0x80);
  }
  dst[pos++] = v;
  return pos;
}
