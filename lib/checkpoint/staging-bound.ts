import { assert } from '../assert.js';
import { PAGE_BYTES } from '../memory/paged-memory.js';
import { PAGE_RECORD_HEADER_MAX_BYTES } from './page-chunks.js';

/** Room per connection for what the state parts carry of it: its TCP snapshot in the guest's state, its acker state in the speculative part. */
export const STATE_BYTES_PER_CONNECTION = 64 * 1024;

export interface EpochBytesInputs {
  readonly memoryBytes: number;
  readonly connections: number;
  readonly specBufferBytes: number;
  readonly chunkBytes: number;
}

/**
 * The most chunk data one epoch's checkpoint carries: every page of the
 * guest once as a raw record (a base epoch's owed pages and its dirty ones
 * are disjoint), each connection's whole speculative buffer (the first
 * delta a new backup gets) and its state, and two chunks more for the
 * guest's own state and the manifest.
 */
export function epochBytesMax(inputs: EpochBytesInputs): number {
  const { memoryBytes, connections, specBufferBytes, chunkBytes } = inputs;
  assert(connections >= 1, () => `a checkpoint of ${connections} connections`);
  const pages = Math.ceil(memoryBytes / PAGE_BYTES);
  return pages * (PAGE_BYTES + PAGE_RECORD_HEADER_MAX_BYTES) + connections * (specBufferBytes + STATE_BYTES_PER_CONNECTION) + 2 * chunkBytes;
}

/** A backup's bound on the bytes of all its pending epochs: each of them could be a whole checkpoint. */
export function stagedBytesMax(inputs: EpochBytesInputs & { readonly maxPendingEpochs: number }): number {
  return inputs.maxPendingEpochs * epochBytesMax(inputs);
}
