import { ChunkSource, type CheckpointChunk } from '../codec/messages.js';
import { bytesEqual, sha256 } from './hash.js';

/** Chunks a promoted acker accepts in one handover of the speculative buffer; the configuration refuses a buffer that would need more. */
export const MAX_HANDOVER_CHUNKS = 4096;

export interface ChunkHeader {
  readonly vmId: string;
  readonly term: number;
  readonly epoch: number;
}

const EMPTY = new Uint8Array(0);

/** Splits `data` into pieces of at most `chunkBytes` (at least one piece). */
export function splitBytes(data: Uint8Array, chunkBytes: number): Uint8Array[] {
  if (data.length === 0) return [EMPTY];
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += chunkBytes) out.push(data.subarray(i, Math.min(data.length, i + chunkBytes)));
  return out;
}

/** One source's part of a checkpoint as hashed chunks; an empty part is one empty chunk. */
export function makeChunks(header: ChunkHeader, source: ChunkSource, pieces: readonly Uint8Array[], rawBytes?: readonly number[]): CheckpointChunk[] {
  const datas = pieces.length === 0 ? [EMPTY] : pieces;
  return datas.map((data, index) => ({
    type: 'checkpointChunk',
    ...header,
    source,
    index,
    count: datas.length,
    data,
    hash: sha256(data),
    rawBytes: rawBytes?.[index] ?? data.length,
    base: false,
  }));
}

/** The epoch manifest: the hashes of all its chunks, in transfer order; `base` when it starts a new backup's image. */
export function makeManifest(header: ChunkHeader, chunks: readonly CheckpointChunk[], base = false): CheckpointChunk {
  const data = new Uint8Array(chunks.length * 32);
  chunks.forEach((c, i) => data.set(c.hash, i * 32));
  return { type: 'checkpointChunk', ...header, source: ChunkSource.MANIFEST, index: 0, count: 1, data, hash: sha256(data), rawBytes: data.length, base };
}

/** Orders chunks as the manifest lists them: by source, then index. */
export function chunkOrder(a: CheckpointChunk, b: CheckpointChunk): number {
  return a.source - b.source || a.index - b.index;
}

/** How many chunks a manifest lists. */
export function manifestLength(manifest: CheckpointChunk): number {
  return manifest.data.length / 32;
}

/**
 * Whether `chunks` (in manifest order) are exactly the ones the manifest
 * lists, each intact: its data hashes to its hash, and the hash is the one
 * listed at its place.
 */
export function matchesManifest(manifest: CheckpointChunk, chunks: readonly CheckpointChunk[]): boolean {
  if (chunks.length !== manifestLength(manifest)) return false;
  return chunks.every((c, i) => bytesEqual(c.hash, manifest.data.subarray(i * 32, (i + 1) * 32)) && bytesEqual(sha256(c.data), c.hash));
}
