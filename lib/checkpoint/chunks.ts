import { assert } from '../assert.js';
import { ChunkSource, type CheckpointChunk } from '../codec/messages.js';
import { bytesEqual } from './hash.js';
import { CHECKSUM_BYTES, checksum } from './checksum.js';
import { MAX_GUEST_MEMORY_BYTES, PAGE_BYTES } from '../memory/paged-memory.js';

/** Chunks a promoted acker accepts in one handover of the speculative buffer; the configuration refuses a buffer that would need more. */
export const MAX_HANDOVER_CHUNKS = 4096;

/**
 * The most chunks one source sends for one epoch of a guest of `memoryBytes`:
 * a page part carries at least one page per chunk, the speculative part is
 * what a handover takes, the state is a few chunks. A chunk naming a larger
 * count (or an index past its count) is no part of any checkpoint: receivers
 * refuse it, which bounds their per-epoch maps.
 */
export function maxChunksPerSource(memoryBytes: number): number {
  return Math.ceil(memoryBytes / PAGE_BYTES) + MAX_HANDOVER_CHUNKS;
}

/** maxChunksPerSource of the largest guest the configuration allows. */
export const MAX_CHUNKS_PER_SOURCE_ANY = maxChunksPerSource(MAX_GUEST_MEMORY_BYTES);

/** Whether `chunk`'s index and count fit a source of at most `maxChunks` chunks. */
export function chunkCountFits(chunk: CheckpointChunk, maxChunks: number): boolean {
  return chunk.count >= 1 && chunk.count <= maxChunks && chunk.index < chunk.count;
}

export interface ChunkHeader {
  readonly vmId: string;
  readonly term: number;
  readonly epoch: number;
}

const EMPTY = new Uint8Array(0);

/** The fields a chunk's checksum covers: all but the checksum itself. */
export type ChecksummedChunk = Omit<CheckpointChunk, 'type' | 'hash'>;

/** term, epoch and rawBytes as float64 (integers below 2^53), source and base as a byte each, index and count as uint32, the vmId's length in bytes as uint32, joinSeq and primaryIncarnation as float64, then the vmId. */
const FIXED_HEAD_BYTES = 8 + 8 + 8 + 1 + 1 + 4 + 4 + 4 + 8 + 8;
/** Room for a configured vmId (1-64 ASCII characters) with margin; a longer one (only a decoded message can carry one) gets a head of its own. */
const SCRATCH_VM_ID_BYTES = 256;
const scratch = new Uint8Array(FIXED_HEAD_BYTES + SCRATCH_VM_ID_BYTES);
const utf8 = new TextEncoder();

function writeHead(head: Uint8Array, chunk: ChecksummedChunk, vmIdBytes: number): Uint8Array {
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  view.setFloat64(0, chunk.term);
  view.setFloat64(8, chunk.epoch);
  view.setFloat64(16, chunk.rawBytes);
  head[24] = chunk.source;
  head[25] = chunk.base ? 1 : 0;
  view.setUint32(26, chunk.index);
  view.setUint32(30, chunk.count);
  view.setUint32(34, vmIdBytes);
  view.setFloat64(38, chunk.joinSeq);
  view.setFloat64(46, chunk.primaryIncarnation);
  return head.subarray(0, FIXED_HEAD_BYTES + vmIdBytes);
}

/**
 * The checksum of a chunk: of its header fields and its data. A header
 * altered in transit (another epoch, term or VM, a flipped base flag or
 * join, another stream, a moved index) fails the check as altered data does: the header says what
 * the data is and where it goes. Synchronous, so one scratch head serves.
 */
export function chunkChecksum(chunk: ChecksummedChunk): Uint8Array {
  const { read, written } = utf8.encodeInto(chunk.vmId, scratch.subarray(FIXED_HEAD_BYTES));
  if (read === chunk.vmId.length) return checksum(chunk.data, writeHead(scratch, chunk, written));
  const vmId = utf8.encode(chunk.vmId);
  const head = new Uint8Array(FIXED_HEAD_BYTES + vmId.length);
  head.set(vmId, FIXED_HEAD_BYTES);
  return checksum(chunk.data, writeHead(head, chunk, vmId.length));
}

/** Whether `chunk`'s checksum holds for its header and data. */
export function chunkIntact(chunk: CheckpointChunk): boolean {
  return bytesEqual(chunkChecksum(chunk), chunk.hash);
}

/** Splits `data` into pieces of at most `chunkBytes` (at least one piece). */
export function splitBytes(data: Uint8Array, chunkBytes: number): Uint8Array[] {
  if (data.length === 0) return [EMPTY];
  const out: Uint8Array[] = [];
  for (let i = 0; i < data.length; i += chunkBytes) out.push(data.subarray(i, Math.min(data.length, i + chunkBytes)));
  return out;
}

/** One source's part of a checkpoint as checksummed chunks; an empty part is one empty chunk. */
export function makeChunks(header: ChunkHeader, source: ChunkSource, pieces: readonly Uint8Array[], rawBytes?: readonly number[]): CheckpointChunk[] {
  const datas = pieces.length === 0 ? [EMPTY] : pieces;
  return datas.map((data, index) => {
    const fields: ChecksummedChunk = { vmId: header.vmId, term: header.term, epoch: header.epoch, source, index, count: datas.length, data, rawBytes: rawBytes?.[index] ?? data.length, base: false, joinSeq: 0, primaryIncarnation: 0 };
    return { type: 'checkpointChunk', ...fields, hash: chunkChecksum(fields) };
  });
}

/** What a manifest says of its epoch besides its chunks. */
export interface ManifestFields {
  /** It starts a new backup's image. */
  readonly base?: boolean;
  /** The join a base serves (0 when it is no base). */
  readonly joinSeq?: number;
  /** The incarnation of the primary checkpointer whose stream it belongs to (0: none, as a handover's). */
  readonly primaryIncarnation?: number;
}

/** The epoch manifest: the checksums of all its chunks, in transfer order. */
export function makeManifest(header: ChunkHeader, chunks: readonly CheckpointChunk[], fields: ManifestFields = {}): CheckpointChunk {
  const { base = false, joinSeq = 0, primaryIncarnation = 0 } = fields;
  assert(base || joinSeq === 0, () => `epoch ${header.epoch}'s manifest names join ${joinSeq} but is no base`);
  assert(Number.isSafeInteger(primaryIncarnation) && primaryIncarnation >= 0, () => `epoch ${header.epoch}'s manifest of incarnation ${primaryIncarnation}`);
  const data = new Uint8Array(chunks.length * CHECKSUM_BYTES);
  chunks.forEach((c, i) => data.set(c.hash, i * CHECKSUM_BYTES));
  const checksummed: ChecksummedChunk = { vmId: header.vmId, term: header.term, epoch: header.epoch, source: ChunkSource.MANIFEST, index: 0, count: 1, data, rawBytes: data.length, base, joinSeq, primaryIncarnation };
  return { type: 'checkpointChunk', ...checksummed, hash: chunkChecksum(checksummed) };
}

/** Orders chunks as the manifest lists them: by source, then index. */
export function chunkOrder(a: CheckpointChunk, b: CheckpointChunk): number {
  return a.source - b.source || a.index - b.index;
}

/** How many chunks a manifest lists. */
export function manifestLength(manifest: CheckpointChunk): number {
  return manifest.data.length / CHECKSUM_BYTES;
}

/** The checksum a manifest lists at place `i`. */
export function listedChecksum(manifest: CheckpointChunk, i: number): Uint8Array {
  return manifest.data.subarray(i * CHECKSUM_BYTES, (i + 1) * CHECKSUM_BYTES);
}

/**
 * Whether `chunks` (in manifest order) are exactly the ones the manifest
 * lists, each intact: its data has its checksum, and the checksum is the
 * one listed at its place.
 */
export function matchesManifest(manifest: CheckpointChunk, chunks: readonly CheckpointChunk[]): boolean {
  if (chunks.length !== manifestLength(manifest)) return false;
  return chunks.every((c, i) => bytesEqual(c.hash, listedChecksum(manifest, i)) && chunkIntact(c));
}
