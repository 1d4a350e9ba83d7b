import { assert } from '../assert.js';
import { ChunkSource, type CheckpointChunk } from '../codec/messages.js';
import { bytesEqual } from './hash.js';
import { BegunChecksum, CHECKSUM_BYTES } from './checksum.js';
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

/**
 * The header as it follows the data: the vmId, then term, epoch and rawBytes
 * as float64 (integers below 2^53), source and base as a byte each, index
 * and count as uint32, joinSeq, primaryIncarnation and
 * primaryAgentIncarnation as float64, and last
 * the vmId's length in bytes as uint32. Read from the end, the fixed fields
 * give the vmId's length, and the data are what comes before the vmId: no
 * two chunks share the checksummed bytes.
 */
const FIXED_TAIL_BYTES = 8 + 8 + 8 + 1 + 1 + 4 + 4 + 8 + 8 + 8 + 4;
/** Room for a configured vmId (1-64 ASCII characters) with margin; a longer one (only a decoded message can carry one) gets a tail of its own. */
const SCRATCH_VM_ID_BYTES = 256;
const scratch = new Uint8Array(SCRATCH_VM_ID_BYTES + FIXED_TAIL_BYTES);
const utf8 = new TextEncoder();

/** Writes the fixed fields after the `vmIdBytes` of vmId already at the front of `tail`; returns the tail. */
function writeTail(tail: Uint8Array, chunk: ChecksummedChunk, vmIdBytes: number): Uint8Array {
  const view = new DataView(tail.buffer, tail.byteOffset + vmIdBytes, FIXED_TAIL_BYTES);
  view.setFloat64(0, chunk.term);
  view.setFloat64(8, chunk.epoch);
  view.setFloat64(16, chunk.rawBytes);
  view.setUint8(24, chunk.source);
  view.setUint8(25, chunk.base ? 1 : 0);
  view.setUint32(26, chunk.index);
  view.setUint32(30, chunk.count);
  view.setFloat64(34, chunk.joinSeq);
  view.setFloat64(42, chunk.primaryIncarnation);
  view.setFloat64(50, chunk.primaryAgentIncarnation);
  view.setUint32(58, vmIdBytes);
  return tail.subarray(0, vmIdBytes + FIXED_TAIL_BYTES);
}

/**
 * The checksum of a chunk: of its data and then its header fields (so a
 * writer can begin it over the data as it writes them, before it knows the
 * count: `begun`). A header altered in transit (another epoch, term or VM,
 * a flipped base flag or join, another stream, a moved index) fails the
 * check as altered data does: the header says what the data is and where
 * it goes. Synchronous, so one scratch tail serves.
 */
export function chunkChecksum(chunk: ChecksummedChunk, begun: BegunChecksum = new BegunChecksum(chunk.data)): Uint8Array {
  assert(begun.data === chunk.data, () => `a checksum begun over other data than chunk ${chunk.index}'s`);
  const { read, written } = utf8.encodeInto(chunk.vmId, scratch.subarray(0, SCRATCH_VM_ID_BYTES));
  if (read === chunk.vmId.length) return begun.finish(writeTail(scratch, chunk, written));
  const vmId = utf8.encode(chunk.vmId);
  const tail = new Uint8Array(vmId.length + FIXED_TAIL_BYTES);
  tail.set(vmId);
  return begun.finish(writeTail(tail, chunk, vmId.length));
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

/** A part as its writer cut it: the pieces, and optionally each one's checksum begun while it was written. */
export interface WrittenPart {
  readonly pieces: readonly Uint8Array[];
  /** Page bytes each piece stands for before encoding (the piece's length when absent). */
  readonly rawBytes?: readonly number[];
  /** checksums[i] is begun over pieces[i]. */
  readonly checksums?: readonly BegunChecksum[];
}

/** One source's part of a checkpoint as checksummed chunks; an empty part is one empty chunk. */
export function makeChunks(header: ChunkHeader, source: ChunkSource, part: WrittenPart): CheckpointChunk[] {
  const { pieces, rawBytes, checksums } = part;
  assert(checksums === undefined || checksums.length === pieces.length, () => `${checksums?.length} checksums begun for ${pieces.length} pieces`);
  assert(rawBytes === undefined || rawBytes.length === pieces.length, () => `${rawBytes?.length} raw sizes for ${pieces.length} pieces`);
  const datas = pieces.length === 0 ? [EMPTY] : pieces;
  return datas.map((data, index) => {
    const fields: ChecksummedChunk = { vmId: header.vmId, term: header.term, epoch: header.epoch, source, index, count: datas.length, data, rawBytes: rawBytes?.[index] ?? data.length, base: false, joinSeq: 0, primaryIncarnation: 0, primaryAgentIncarnation: 0 };
    return { type: 'checkpointChunk', ...fields, hash: chunkChecksum(fields, checksums?.[index]) };
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
  /** The incarnation of the host agent that assigned that checkpointer (0 with none). */
  readonly primaryAgentIncarnation?: number;
}

/** The epoch manifest: the checksums of all its chunks, in transfer order. */
export function makeManifest(header: ChunkHeader, chunks: readonly CheckpointChunk[], fields: ManifestFields = {}): CheckpointChunk {
  const { base = false, joinSeq = 0, primaryIncarnation = 0, primaryAgentIncarnation = 0 } = fields;
  assert(base || joinSeq === 0, () => `epoch ${header.epoch}'s manifest names join ${joinSeq} but is no base`);
  assert(Number.isSafeInteger(primaryIncarnation) && primaryIncarnation >= 0, () => `epoch ${header.epoch}'s manifest of incarnation ${primaryIncarnation}`);
  assert(Number.isSafeInteger(primaryAgentIncarnation) && primaryAgentIncarnation >= 0 && (primaryAgentIncarnation === 0) === (primaryIncarnation === 0), () => `epoch ${header.epoch}'s manifest of checkpointer ${primaryIncarnation} under agent ${primaryAgentIncarnation}: a stream names both or neither`);
  const data = new Uint8Array(chunks.length * CHECKSUM_BYTES);
  chunks.forEach((c, i) => data.set(c.hash, i * CHECKSUM_BYTES));
  const checksummed: ChecksummedChunk = { vmId: header.vmId, term: header.term, epoch: header.epoch, source: ChunkSource.MANIFEST, index: 0, count: 1, data, rawBytes: data.length, base, joinSeq, primaryIncarnation, primaryAgentIncarnation };
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
