export { PagedMemory, PAGE_BYTES } from './paged-memory.js';
export { PageDigest } from './page-digest.js';
