import { assert } from '../assert.js';
import { MAX_CONNECTIONS } from '../codec/messages.js';
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
 * One connection's share of the speculative-buffer part of a checkpoint: the
 * bytes the guest emitted on it in the epoch ([startSeq, startSeq +
 * bytes.length)), the client's cumulative ACK when the epoch ended, and the
 * acker's connection state. The backup rebuilds each buffer from these alone.
 */
export interface SpecDelta {
  readonly startSeq: number;
  readonly clientAckSeq: number;
  /** Null only in the one record of a part whose acker had no connection yet. */
  readonly connection: AckerConnectionState | null;
  readonly bytes: Uint8Array;
}

/** Records a part holds at most: one per connection. */
const MAX_RECORDS = MAX_CONNECTIONS;

/**
 * A part: its records one after the other, each (startSeq, clientAckSeq,
 * connection JSON, bytes). The last record's bytes run to the end of the
 * part; an earlier one's JSON says how many it has (`bytes`). So a part of
 * one connection is byte for byte what it was before connections were many.
 */
export function encodeSpecDeltas(deltas: readonly SpecDelta[]): Uint8Array {
  assert(deltas.length >= 1 && deltas.length <= MAX_RECORDS, () => `a speculative part of ${deltas.length} records`);
  const encoder = new TextEncoder();
  const headers = deltas.map((d, i) => encoder.encode(JSON.stringify(i < deltas.length - 1 ? { ...d.connection, bytes: d.bytes.length } : d.connection)));
  const w = new ByteWriter(deltas.reduce((n, d, i) => n + 32 + headers[i]!.length + d.bytes.length, 0));
  deltas.forEach((d, i) => {
    w.varint(d.startSeq);
    w.varint(d.clientAckSeq);
    w.varint(headers[i]!.length);
    w.bytes(headers[i]!);
    w.bytes(d.bytes);
  });
  return w.take();
}

export function decodeSpecDeltas(data: Uint8Array): SpecDelta[] {
  if (data.length === 0) throw new DecodeError('empty speculative-buffer delta');
  const deltas: SpecDelta[] = [];
  for (let pos = 0; ; ) {
    if (deltas.length === MAX_RECORDS) throw new DecodeError(`speculative delta: more than ${MAX_RECORDS} connections`);
    const [startSeq, p1] = readVarint(data, pos);
    const [clientAckSeq, p2] = readVarint(data, p1);
    const [connectionBytes, p3] = readVarint(data, p2);
    if (p3 + connectionBytes > data.length) throw new DecodeError('speculative delta: connection state overruns the chunk');
    let header: (AckerConnectionState & { bytes?: number }) | null;
    try {
      header = JSON.parse(new TextDecoder().decode(data.subarray(p3, p3 + connectionBytes))) as (AckerConnectionState & { bytes?: number }) | null;
    } catch (cause) {
      throw new DecodeError('speculative delta: connection state is not JSON', { cause });
    }
    if (header !== null) checkConnection(header);
    const start = p3 + connectionBytes;
    if (header === null || header.bytes === undefined) {
      deltas.push({ startSeq, clientAckSeq, connection: header, bytes: data.subarray(start) });
      return deltas;
    }
    const { bytes: length, ...connection } = header;
    if (!Number.isSafeInteger(length) || length < 0 || start + length > data.length) throw new DecodeError(`speculative delta: a record of ${length} B overruns the chunk`);
    deltas.push({ startSeq, clientAckSeq, connection, bytes: data.subarray(start, start + length) });
    pos = start + length;
  }
}

const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/**
 * A record's connection state, as the backup keeps it and a promotion uses
 * it: a connection the guest can have (an id in 1..MAX_CONNECTIONS; any other
 * id would be a buffer of specBufferBytes no guest fills), and fields of
 * their types. DecodeError otherwise.
 */
function checkConnection(header: unknown): void {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new DecodeError('speculative delta: connection state is not an object');
  const c = header as Record<string, unknown>;
  if (!Number.isInteger(c['connId']) || (c['connId'] as number) < 1 || (c['connId'] as number) > MAX_CONNECTIONS) throw new DecodeError(`speculative delta: connection ${String(c['connId'])} is none of the guest's 1..${MAX_CONNECTIONS}`);
  const scalarsOk = (c['clientWscale'] === null || isCount(c['clientWscale'])) && isCount(c['clientSynWindow']) && typeof c['guestOfferedWscale'] === 'boolean' && isCount(c['clientNxt']);
  const h = c['guestHeader'];
  const headerOk = h === null || (typeof h === 'object' && !Array.isArray(h) && ['epoch', 'ack', 'window', 'tsValUs', 'tsEcrUs'].every((k) => isCount((h as Record<string, unknown>)[k])));
  if (!scalarsOk || !headerOk) throw new DecodeError(`speculative delta: connection ${String(c['connId'])} has fields of the wrong type`);
}
