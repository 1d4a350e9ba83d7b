import type { BytePieces } from './byte-run.js';
import { hex, sha256 } from './hash.js';

/** A speculative buffer as a digest reads it: the acker's ring or a backup's view queue. */
export interface SpecBytes {
  readonly startSeq: number;
  views(seq: number, len: number): BytePieces;
}

/** What a checkpoint's image holds of one connection's speculative buffer: [startSeq, endSeq). */
export interface SpecRange {
  readonly buffer: SpecBytes;
  readonly startSeq: number;
  readonly endSeq: number;
}

/**
 * The digest of the speculative buffers a checkpoint holds, in connection-id
 * order: each non-empty range as "<startSeq>:" and its bytes. The acker
 * records it as an epoch ends and the backup as it applies the epoch; tests
 * prove the two equal.
 */
export function specBuffersDigest(ranges: readonly SpecRange[]): string {
  const parts: Uint8Array[] = [];
  for (const r of ranges) {
    const start = Math.max(r.startSeq, r.buffer.startSeq);
    if (r.endSeq <= start) continue;
    parts.push(new TextEncoder().encode(`${start}:`), ...r.buffer.views(start, r.endSeq - start).pieces);
  }
  return hex(sha256(...parts));
}
