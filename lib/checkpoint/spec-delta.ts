import { assert } from '../assert.js';
import { isConnectionId, MAX_CONNECTIONS } from '../codec/messages.js';
import { MAX_WINDOW_FIELD, MAX_WSCALE } from '../tcp/receiver.js';
import { DecodeError } from '../errors.js';
import { RunReader, joinRun, piecesOf, runLength, type ByteRun } from './byte-run.js';
import { SplitWriter } from './split-writer.js';
import type { WrittenPart } from './chunks.js';
import { varintLength } from '../varint.js';

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
  /**
   * The acker has the client's SYN and not yet the guest's SYN-ACK: no buffer, only the SYN's options (absent
   * otherwise, so a part of open connections is what it was). A promoted acker keeps them for the SYN-ACK the
   * restored guest repeats; without them it read the client's windows unscaled.
   */
  readonly awaitingSynAck?: true;
  /**
   * The acker's wire side took the client's SACK blocks (its SYN offered
   * SACK, the guest's SYN-ACK agreed, and the acker's TCP options allow it;
   * absent otherwise): a promoted acker's wire side takes them as the first
   * one did. Without it the connection lost SACK at every failover.
   */
  readonly sackPermitted?: true;
  /**
   * The client's window as the acker's wire side last had it, in bytes
   * (scaled; absent before the wire side exists): a promoted acker starts
   * from it, where the SYN's window scaled could be wider than the client
   * has room for.
   */
  readonly clientWindowBytes?: number;
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
  /** Encoded from views of the buffer itself; decoded as views of the chunks that carried them. */
  readonly bytes: ByteRun;
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
  return joinRun({ pieces: encodeSpecDeltaChunks(deltas, Number.MAX_SAFE_INTEGER).pieces });
}

/** The part as `splitBytes(encodeSpecDeltas(deltas), chunkBytes)` cuts it, written straight into its chunks, each one's checksum begun. */
export function encodeSpecDeltaChunks(deltas: readonly SpecDelta[], chunkBytes: number): WrittenPart {
  assert(deltas.length >= 1 && deltas.length <= MAX_RECORDS, () => `a speculative part of ${deltas.length} records`);
  const encoder = new TextEncoder();
  const lengths = deltas.map((d) => runLength(d.bytes));
  const headers = deltas.map((d, i) => encoder.encode(JSON.stringify(i < deltas.length - 1 ? { ...d.connection, bytes: lengths[i] } : d.connection)));
  const totalBytes = deltas.reduce((n, d, i) => n + varintLength(d.startSeq) + varintLength(d.clientAckSeq) + varintLength(headers[i]!.length) + headers[i]!.length + lengths[i]!, 0);
  const w = new SplitWriter(totalBytes, chunkBytes);
  deltas.forEach((d, i) => {
    w.varint(d.startSeq);
    w.varint(d.clientAckSeq);
    w.varint(headers[i]!.length);
    w.bytes(headers[i]!);
    for (const piece of piecesOf(d.bytes)) w.bytes(piece);
  });
  return w.take();
}

/** A part, whole or as the chunks that carried it (decoded where they lie: the bytes are views of them). */
export function decodeSpecDeltas(data: ByteRun): SpecDelta[] {
  const r = new RunReader(data);
  if (r.remaining === 0) throw new DecodeError('empty speculative-buffer delta');
  const deltas: SpecDelta[] = [];
  for (;;) {
    if (deltas.length === MAX_RECORDS) throw new DecodeError(`speculative delta: more than ${MAX_RECORDS} connections`);
    const startSeq = r.varint();
    const clientAckSeq = r.varint();
    const connectionBytes = r.varint();
    if (connectionBytes > r.remaining) throw new DecodeError('speculative delta: connection state overruns the chunk');
    let header: (AckerConnectionState & { bytes?: number }) | null;
    try {
      header = JSON.parse(new TextDecoder().decode(joinRun(r.take(connectionBytes)))) as (AckerConnectionState & { bytes?: number }) | null;
    } catch (cause) {
      throw new DecodeError('speculative delta: connection state is not JSON', { cause });
    }
    if (header !== null) checkConnection(header);
    if (header === null || header.bytes === undefined) {
      checkSeqs(startSeq, clientAckSeq, r.remaining);
      checkAwaiting(header, r.remaining);
      deltas.push({ startSeq, clientAckSeq, connection: header, bytes: r.take(r.remaining) });
      return deltas;
    }
    const { bytes: length, ...connection } = header;
    if (!Number.isSafeInteger(length) || length < 0 || length > r.remaining) throw new DecodeError(`speculative delta: a record of ${length} B overruns the chunk`);
    checkSeqs(startSeq, clientAckSeq, length);
    checkAwaiting(connection, length);
    deltas.push({ startSeq, clientAckSeq, connection, bytes: r.take(length) });
  }
}

/** A connection that awaits its SYN-ACK has no buffer, so no bytes. */
function checkAwaiting(connection: AckerConnectionState | null, lengthBytes: number): void {
  if (connection?.awaitingSynAck === true && lengthBytes > 0) throw new DecodeError(`speculative delta: ${lengthBytes} B for connection ${connection.connId}, which awaits its SYN-ACK`);
}

/** The widest window TCP can advertise (RFC 7323: a 16-bit field scaled by 2^14 at most). */
const MAX_CLIENT_WINDOW_BYTES = MAX_WINDOW_FIELD * 2 ** MAX_WSCALE;

const isCount = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;

/** A record's sequence numbers, and the end of its bytes, are stream positions a buffer can hold: safe integers. */
function checkSeqs(startSeq: number, clientAckSeq: number, lengthBytes: number): void {
  if (!Number.isSafeInteger(startSeq + lengthBytes) || !Number.isSafeInteger(clientAckSeq)) throw new DecodeError(`speculative delta: sequence numbers past 2^53 (${startSeq} + ${lengthBytes} B, ACK ${clientAckSeq})`);
}

/**
 * A record's connection state, as the backup keeps it and a promotion uses
 * it: a connection the guest can have (an id in 1..MAX_CONNECTIONS; any other
 * id would be a buffer of specBufferBytes no guest fills), and fields of
 * their types. DecodeError otherwise.
 */
function checkConnection(header: unknown): void {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new DecodeError('speculative delta: connection state is not an object');
  const c = header as Record<string, unknown>;
  if (!isConnectionId(c['connId'])) throw new DecodeError(`speculative delta: connection ${String(c['connId'])} is none of the guest's 1..${MAX_CONNECTIONS}`);
  const scalarsOk = (c['clientWscale'] === null || isCount(c['clientWscale'])) && isCount(c['clientSynWindow']) && typeof c['guestOfferedWscale'] === 'boolean' && isCount(c['clientNxt']) && (c['awaitingSynAck'] === undefined || c['awaitingSynAck'] === true) && (c['sackPermitted'] === undefined || c['sackPermitted'] === true) && (c['clientWindowBytes'] === undefined || (isCount(c['clientWindowBytes']) && (c['clientWindowBytes'] as number) <= MAX_CLIENT_WINDOW_BYTES));
  const h = c['guestHeader'];
  const headerOk = h === null || (typeof h === 'object' && !Array.isArray(h) && ['epoch', 'ack', 'window', 'tsValUs', 'tsEcrUs'].every((k) => isCount((h as Record<string, unknown>)[k])));
  if (!scalarsOk || !headerOk) throw new DecodeError(`speculative delta: connection ${String(c['connId'])} has fields of the wrong type`);
}
