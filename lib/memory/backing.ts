import { assert } from '../assert.js';
import { PAGE_BYTES } from './paged-memory.js';

/**
 * Where guest-sized memories (guest RAM, a backup's image, the primary's
 * shadow of it) get their bytes. Outside `recycling` each is a fresh zeroed
 * array, as `new Uint8Array` gives.
 *
 * Inside `recycling(run)`, arrays that earlier runs of this thread gave back
 * are reused, zeroed page by page where a page is not zero already. The first
 * write to a page of fresh memory is a page fault, and on a virtual machine
 * whose host reclaims idle guest memory one costs tens of microseconds: a
 * replicated run touches three 64 MiB memories, so a sweep of many runs on
 * one worker paid that in every run. Results do not change: a recycled array
 * reads exactly as a fresh one.
 */

/** Arrays kept for reuse, at most (bytes); beyond it a given-back array is left to the collector. */
export const RECYCLED_BYTES_MAX = 512 * 1024 * 1024;

interface Scope {
  readonly lent: Uint8Array[];
}

const free = new Map<number, Uint8Array[]>();
let freeBytes = 0;
let scope: Scope | null = null;

/** A zeroed array of `sizeBytes` (a multiple of the page size). */
export function zeroedMemory(sizeBytes: number): Uint8Array {
  assert(sizeBytes > 0 && sizeBytes % PAGE_BYTES === 0, () => `memory of ${sizeBytes} B is not a positive multiple of ${PAGE_BYTES}`);
  if (scope === null) return new Uint8Array(sizeBytes);
  const reused = free.get(sizeBytes)?.pop();
  let bytes: Uint8Array;
  if (reused === undefined) {
    bytes = new Uint8Array(sizeBytes);
  } else {
    freeBytes -= sizeBytes;
    zeroPages(reused);
    bytes = reused;
  }
  scope.lent.push(bytes);
  return bytes;
}

/**
 * Runs `run` with recycled memories: what it allocates is given back when it
 * returns, for the next run. If it throws, nothing is given back (something
 * may still hold the arrays). Scopes do not nest.
 */
export function recycling<T>(run: () => T): T {
  assert(scope === null, 'recycling scopes do not nest');
  const current: Scope = { lent: [] };
  scope = current;
  let result: T;
  try {
    result = run();
  } finally {
    scope = null;
  }
  for (const bytes of current.lent) {
    if (freeBytes + bytes.length > RECYCLED_BYTES_MAX) continue;
    const list = free.get(bytes.length) ?? [];
    list.push(bytes);
    free.set(bytes.length, list);
    freeBytes += bytes.length;
  }
  return result;
}

/** Zeroes the pages that are not zero: reading a page never touched maps the shared zero page, writing it would fault one in. */
function zeroPages(bytes: Uint8Array): void {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
  const pageWords = PAGE_BYTES >>> 2;
  for (let start = 0; start < words.length; start += pageWords) {
    const end = start + pageWords;
    for (let w = start; w < end; w++) {
      if (words[w] !== 0) {
        words.fill(0, w, end);
        break;
      }
    }
  }
}
