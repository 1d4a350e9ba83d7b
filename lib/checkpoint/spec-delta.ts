import { DecodeError } from '../errors.js';
import { ByteWriter } from './byte-writer.js';
import { readVarint } from './page-delta.js';

/**
 * What a promoted acker needs besides the bytes: the connection as it saw it
 * (the client's SYN options and next sequence number) and the header of the
 * newest guest segment of the epoch, whose ACK and window fields go out with
 * committed data.
 */
export interface AckerConnectionState {
  readonly connId: number;
  readonly clientWscale: number | null;
  readonly clientSynWindow: number;
  readonly guestOfferedWscale: boolean;
  readonly clientNxt: number;
  readonly guestHeader: { epoch: number; ack: number; window: number; tsValUs: number; tsEcrUs: number } | null;
}

/**
 * The speculative-buffer part of a checkpoint: the bytes the guest emitted in
 * the epoch ([startSeq, startSeq + bytes.length)), the client's cumulative
 * ACK when the epoch ended, and the acker's connection state. The backup
 * rebuilds the buffer from these alone.
 */
export interface SpecDelta {
  readonly startSeq: number;
  readonly clientAckSeq: number;
  readonly connection: AckerConnectionState | null;
  readonly bytes: Uint8Array;
}

export function encodeSpecDelta(delta: SpecDelta): Uint8Array {
  const connection = new TextEncoder().encode(JSON.stringify(delta.connection));
  const w = new ByteWriter(32 + connection.length + delta.bytes.length);
  w.varint(delta.startSeq);
  w.varint(delta.clientAckSeq);
  w.varint(connection.length);
  w.bytes(connection);
  w.bytes(delta.bytes);
  return w.take();
}

export function decodeSpecDelta(data: Uint8Array): SpecDelta {
  if (data.length === 0) throw new DecodeError('empty speculative-buffer delta');
  const [startSeq, p1] = readVarint(data, 0);
  const [clientAckSeq, p2] = readVarint(data, p1);
  const [connectionBytes, p3] = readVarint(data, p2);
  if (p3 + connectionBytes > data.length) throw new DecodeError('speculative delta: connection state overruns the chunk');
  let connection: AckerConnectionState | null;
  try {
    connection = JSON.parse(new TextDecoder().decode(data.subarray(p3, p3 + connectionBytes))) as AckerConnectionState | null;
  } catch (cause) {
    throw new DecodeError('speculative delta: connection state is not JSON', { cause });
  }
  return { startSeq, clientAckSeq, connection, bytes: data.subarray(p3 + connectionBytes) };
}
