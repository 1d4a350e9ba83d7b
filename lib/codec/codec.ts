import { DecodeError } from '../errors.js';
import './protobuf-numbers.js';
import { specula } from './gen/specula.js';
import { TCP_FLAGS_MASK, type Segment, type WireMessage, type WireMessageType } from './messages.js';

const pb = specula.v1;
const EMPTY = new Uint8Array(0);
export const MAX_WINDOW_FIELD = 0xffff;
export const MAX_WSCALE = 14;

export function encodeSegment(seg: Segment): Uint8Array {
  return pb.Segment.encode({
    vmId: seg.vmId,
    term: seg.term,
    epoch: seg.epoch,
    connId: seg.connId,
    seq: seg.seq,
    ack: seg.ack,
    window: seg.window,
    flags: seg.flags,
    payload: seg.payload,
    mss: seg.mss,
    ...(seg.wscale === undefined ? {} : { wscale: seg.wscale }),
    tsValUs: seg.tsValUs,
    tsEcrUs: seg.tsEcrUs,
    speculative: seg.speculative,
  }).finish();
}

/** Decodes and validates; anything malformed throws DecodeError. */
export function decodeSegment(bytes: Uint8Array): Segment {
  let m: specula.v1.Segment;
  try {
    m = pb.Segment.decode(bytes);
  } catch (cause) {
    throw new DecodeError(`malformed Segment (${bytes.length} bytes): ${String(cause)}`, { cause });
  }
  if (m.window > MAX_WINDOW_FIELD) throw new DecodeError(`Segment.window ${m.window} exceeds 16 bits`);
  if ((m.flags & ~TCP_FLAGS_MASK) !== 0) throw new DecodeError(`Segment.flags ${m.flags} has unknown bits`);
  const wscale = m.wscale ?? undefined;
  if (wscale !== undefined && wscale > MAX_WSCALE) throw new DecodeError(`Segment.wscale ${wscale} exceeds ${MAX_WSCALE}`);
  for (const [name, value] of [['seq', m.seq], ['ack', m.ack], ['term', m.term], ['epoch', m.epoch]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) throw new DecodeError(`Segment.${name} ${value} is not a safe non-negative integer`);
  }
  return {
    type: 'segment',
    vmId: m.vmId,
    term: m.term,
    epoch: m.epoch,
    connId: m.connId,
    seq: m.seq,
    ack: m.ack,
    window: m.window,
    flags: m.flags,
    payload: m.payload.length === 0 ? EMPTY : m.payload,
    mss: m.mss,
    wscale,
    tsValUs: m.tsValUs,
    tsEcrUs: m.tsEcrUs,
    speculative: m.speculative,
  };
}

export function encode(msg: WireMessage): Uint8Array {
  switch (msg.type) {
    case 'segment':
      return encodeSegment(msg);
  }
}

export function decode(type: WireMessageType, bytes: Uint8Array): WireMessage {
  switch (type) {
    case 'segment':
      return decodeSegment(bytes);
  }
}
