import { DecodeError } from '../errors.js';
import { putVarint, varintLength } from '../varint.js';

/** A batch holds at most this many messages; a longer one is malformed input. */
export const MAX_BATCH_MESSAGES = 4096;

/**
 * Several encoded messages of one subject in one bus message, as GSO sends
 * several segments in one write: each as [varint length][bytes]. Which
 * message type they are is the subject's, as for a single message.
 */
export function encodeBatch(parts: readonly Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += varintLength(p.length) + p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    at = putVarint(out, at, p.length);
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The messages of a batch, as views into `bytes`; a malformed batch is a DecodeError. */
export function decodeBatch(bytes: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    if (parts.length >= MAX_BATCH_MESSAGES) throw new DecodeError(`batch of more than ${MAX_BATCH_MESSAGES} messages`);
    let len = 0;
    let shift = 1;
    for (let i = 0; ; i++) {
      if (at >= bytes.length || i > 4) throw new DecodeError('batch: truncated or oversized length');
      const b = bytes[at++]!;
      len += (b & 0x7f) * shift;
      shift *= 0x80;
      if ((b & 0x80) === 0) break;
    }
    if (at + len > bytes.length) throw new DecodeError(`batch: a message of ${len} bytes overruns the batch`);
    parts.push(bytes.subarray(at, at + len));
    at += len;
  }
  return parts;
}
