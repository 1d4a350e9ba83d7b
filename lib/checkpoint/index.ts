export { ByteWriter } from './byte-writer.js';
export { splitBytes, makeChunks, makeManifest, chunkOrder, type ChunkHeader } from './chunks.js';
export { sha256, hex, bytesEqual } from './hash.js';
export { packPages, unpackPages, PAGE_RECORD_HEADER_MAX_BYTES, type PackedPages } from './page-chunks.js';
export { encodeXorRleInto, applyXorRle, writeVarint, readVarint } from './page-delta.js';
export { encodeSpecDeltas, encodeSpecDeltaChunks, decodeSpecDeltas, type SpecDelta, type AckerConnectionState } from './spec-delta.js';
export { specBuffersDigest, type SpecRange, type SpecBytes } from './spec-digest.js';
export { ViewQueue } from './view-queue.js';
export { RepeatGate } from './repeat-gate.js';
