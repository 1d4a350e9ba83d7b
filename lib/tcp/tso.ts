import { MAX_SEGMENT_PAYLOAD_BYTES } from './header.js';

/**
 * The largest segment a sender with TSO hands its NIC: whole MSS multiples
 * up to `tsoBytes` (and a segment's largest payload); one MSS when TSO is
 * off (absent, or below two MSS).
 */
export function tsoSegmentBytes(tsoBytes: number | undefined, mssBytes: number): number {
  const tso = Math.min(tsoBytes ?? 0, MAX_SEGMENT_PAYLOAD_BYTES);
  return tso >= 2 * mssBytes ? tso - (tso % mssBytes) : mssBytes;
}
