import { DecodeError } from '../../lib/errors.js';
import { ByteWriter } from '../../lib/checkpoint/byte-writer.js';
import { readVarint } from '../../lib/checkpoint/page-delta.js';

/**
 * The speculative-buffer part of a checkpoint: the bytes the guest emitted in
 * the epoch ([startSeq, startSeq + bytes.length)) and the client's cumulative
 * ACK when the epoch ended. The backup rebuilds the buffer from these alone.
 */
export interface SpecDelta {
  readonly startSeq: number;
  readonly clientAckSeq: number;
  readonly bytes: Uint8Array;
}

export function encodeSpecDelta(delta: SpecDelta): Uint8Array {
  const w = new ByteWriter(16 + delta.bytes.length);
  w.varint(delta.startSeq);
  w.varint(delta.clientAckSeq);
  w.bytes(delta.bytes);
  return w.take();
}

export function decodeSpecDelta(data: Uint8Array): SpecDelta {
  if (data.length === 0) throw new DecodeError('empty speculative-buffer delta');
  const [startSeq, p1] = readVarint(data, 0);
  const [clientAckSeq, p2] = readVarint(data, p1);
  return { startSeq, clientAckSeq, bytes: data.subarray(p2) };
}
