import { assert } from '../assert.js';
import { PAGE_BYTES } from '../memory/paged-memory.js';

/** Owed base pages a checkpoint carries to a new backup besides its dirty ones (`checkpoint.seedBytesPerEpoch`, whole pages). */
export function seedPagesPerEpoch(seedBytesPerEpoch: number): number {
  const pages = Math.floor(seedBytesPerEpoch / PAGE_BYTES);
  assert(pages >= 1, () => `a seed of ${seedBytesPerEpoch} B an epoch holds no page`);
  return pages;
}

/**
 * Checkpoints, the base included, that a new backup takes at most to hold
 * every page: each carries the next `seedPagesPerEpoch` owed pages in page
 * order (a page dirtied meanwhile pays its debt sooner), so the last owed
 * page has gone by this many.
 */
export function seedEpochs(memoryBytes: number, seedBytesPerEpoch: number): number {
  return Math.ceil(memoryBytes / PAGE_BYTES / seedPagesPerEpoch(seedBytesPerEpoch));
}
