import { assert } from '../assert.js';
import { zeroedMemory } from './backing.js';

export const PAGE_BYTES = 4096;
/** The largest guest the configuration allows. */
export const MAX_GUEST_MEMORY_BYTES = 4 * 1024 * 1024 * 1024;

/**
 * Guest memory: 4 KiB pages with dirty tracking, like a hypervisor's
 * log-dirty mode. Every write must go through `write` or `markDirty` so the
 * next checkpoint carries it.
 */
export class PagedMemory {
  readonly bytes: Uint8Array;
  readonly pageCount: number;
  readonly #dirtyFlags: Uint8Array;
  #dirtyPages: number[] = [];

  constructor(readonly sizeBytes: number) {
    assert(sizeBytes > 0 && sizeBytes % PAGE_BYTES === 0, () => `memory size ${sizeBytes} is not a positive multiple of ${PAGE_BYTES}`);
    this.bytes = zeroedMemory(sizeBytes);
    this.pageCount = sizeBytes / PAGE_BYTES;
    this.#dirtyFlags = new Uint8Array(this.pageCount);
  }

  get dirtyPageCount(): number {
    return this.#dirtyPages.length;
  }

  page(index: number): Uint8Array {
    return this.bytes.subarray(index * PAGE_BYTES, (index + 1) * PAGE_BYTES);
  }

  /** A view for a buffer that lives in guest memory; writes through it must call markDirty. */
  region(addr: number, lengthBytes: number): Uint8Array {
    assert(addr >= 0 && addr + lengthBytes <= this.sizeBytes, () => `region [${addr}, ${addr + lengthBytes}) outside memory`);
    return this.bytes.subarray(addr, addr + lengthBytes);
  }

  write(addr: number, src: Uint8Array): void {
    this.bytes.set(src, addr);
    this.markDirty(addr, src.length);
  }

  markDirty(addr: number, lengthBytes: number): void {
    if (lengthBytes <= 0) return;
    const last = Math.floor((addr + lengthBytes - 1) / PAGE_BYTES);
    for (let p = Math.floor(addr / PAGE_BYTES); p <= last; p++) {
      if (this.#dirtyFlags[p] === 0) {
        this.#dirtyFlags[p] = 1;
        this.#dirtyPages.push(p);
      }
    }
  }

  /** The pages dirtied since the last call, ascending; tracking restarts. */
  takeDirtyPages(): number[] {
    const pages = this.#dirtyPages.sort((a, b) => a - b);
    for (const p of pages) this.#dirtyFlags[p] = 0;
    this.#dirtyPages = [];
    return pages;
  }
}
