import { assert } from '../assert.js';
import { InvariantError } from '../errors.js';
import { putVarint, varintLength } from '../varint.js';
import type { Segment } from './messages.js';

/**
 * The protobuf encoding of a Segment, written by hand: byte for byte what
 * protobufjs writes (field order, defaults left out, `wscale` written when
 * present), which a property test holds it to, and decoded by protobufjs
 * as every other message. Segments are most of what a transfer puts on the
 * bus, one per 1,448 bytes, and the generated encoder allocated an object
 * for each 64-bit field and a list of write operations before the buffer:
 * 40% of a native guest's CPU at 1 Gbit/s over NATS.
 */

/** Encodings are carved from slabs of this size: one small ArrayBuffer per segment costs more than the encoding. */
const SLAB_BYTES = 64 * 1024;
/**
 * Every byte but the payload's, the vmId's and the SACK blocks' varints, at
 * most: six 64-bit fields of a tag and 8 bytes (a safe integer has 53
 * bits), five 32-bit ones of a tag and 5, the tag and length of the vmId,
 * the payload and the SACK list (2-byte tag), two booleans: 107, rounded up.
 */
const FIXED_FIELDS_MAX_BYTES = 128;

let slab = new Uint8Array(SLAB_BYTES);
let slabUsed = 0;
let lastVmId = '';
let lastVmIdBytes = new Uint8Array(0);
const utf8 = new TextEncoder();

/**
 * A field's value, checked: a negative or unsafe number would encode as
 * something else. The message names the field (its protobuf number; 0 for a
 * SACK edge) and the value, which a sender's bug leaves nowhere else.
 */
function putChecked(buf: Uint8Array, at: number, value: number, field: number): number {
  if (!(Number.isSafeInteger(value) && value >= 0)) throw new InvariantError(`segment field ${field} is ${value}, not a safe non-negative integer`);
  return putVarint(buf, at, value);
}

/** A varint field: its 1-byte tag, then the value. */
function putField(buf: Uint8Array, at: number, tag: number, value: number): number {
  buf[at] = tag;
  return putChecked(buf, at + 1, value, tag >> 3);
}

function vmIdBytes(vmId: string): Uint8Array {
  if (vmId !== lastVmId) {
    lastVmId = vmId;
    lastVmIdBytes = utf8.encode(vmId);
  }
  return lastVmIdBytes;
}

/** The Segment's protobuf bytes (a view of a shared slab that nothing writes again). */
export function encodeSegment(seg: Segment): Uint8Array {
  const vmId = seg.vmId === '' ? null : vmIdBytes(seg.vmId);
  const sack = seg.sackBlocks;
  let sackBytes = 0;
  for (let i = 0; i < sack.length; i++) sackBytes += varintLength(sack[i]!);
  const payloadBytes = seg.payload.length;
  const max = FIXED_FIELDS_MAX_BYTES + (vmId === null ? 0 : vmId.length) + payloadBytes + sackBytes;
  // Room for the worst case; the view takes what was written and the slab keeps the rest for the next one.
  let buf: Uint8Array;
  if (max > SLAB_BYTES / 4) buf = new Uint8Array(max);
  else {
    if (slabUsed + max > SLAB_BYTES) {
      slab = new Uint8Array(SLAB_BYTES);
      slabUsed = 0;
    }
    buf = slab;
  }
  const start = buf === slab ? slabUsed : 0;
  let at = start;
  if (vmId !== null) {
    buf[at++] = 10;
    at = putVarint(buf, at, vmId.length);
    buf.set(vmId, at);
    at += vmId.length;
  }
  if (seg.term !== 0) at = putField(buf, at, 16, seg.term);
  if (seg.epoch !== 0) at = putField(buf, at, 24, seg.epoch);
  if (seg.connId !== 0) at = putField(buf, at, 32, seg.connId);
  if (seg.seq !== 0) at = putField(buf, at, 40, seg.seq);
  if (seg.ack !== 0) at = putField(buf, at, 48, seg.ack);
  if (seg.window !== 0) at = putField(buf, at, 56, seg.window);
  if (seg.flags !== 0) at = putField(buf, at, 64, seg.flags);
  if (payloadBytes !== 0) {
    buf[at++] = 74;
    at = putVarint(buf, at, payloadBytes);
    buf.set(seg.payload, at);
    at += payloadBytes;
  }
  if (seg.mss !== 0) at = putField(buf, at, 80, seg.mss);
  if (seg.wscale !== undefined) at = putField(buf, at, 88, seg.wscale);
  if (seg.tsValUs !== 0) at = putField(buf, at, 96, seg.tsValUs);
  if (seg.tsEcrUs !== 0) at = putField(buf, at, 104, seg.tsEcrUs);
  if (seg.speculative) {
    buf[at++] = 112;
    buf[at++] = 1;
  }
  if (seg.sackPermitted) {
    buf[at++] = 120;
    buf[at++] = 1;
  }
  if (sack.length !== 0) {
    buf[at++] = 130;
    buf[at++] = 1;
    at = putVarint(buf, at, sackBytes);
    for (let i = 0; i < sack.length; i++) at = putChecked(buf, at, sack[i]!, 0);
  }
  assert(at - start <= max, () => `segment encoding of ${at - start} B past its bound of ${max}`);
  if (buf === slab) slabUsed = at;
  return buf.subarray(start, at);
}
