import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesEqual } from '../../../lib/checkpoint/hash.js';
import { packPages, unpackPages } from '../../../lib/checkpoint/page-chunks.js';
import { DecodeError } from '../../../lib/errors.js';
import { PageShadow } from '../../../lib/checkpoint/page-shadow.js';
import { checksum } from '../../../lib/checkpoint/checksum.js';
import { PAGE_BYTES, PagedMemory } from '../../../lib/memory/paged-memory.js';

const PAGES = 16;
const MEMORY_BYTES = PAGES * PAGE_BYTES;
/** Page index varint + encoding byte + length varint, as packPages budgets them. */
const RECORD_HEADER_MAX_BYTES = 9;

type Write = { readonly addr: number; readonly len: number; readonly value: number; readonly pattern: number };
const write: fc.Arbitrary<Write> = fc.record({
  addr: fc.integer({ min: 0, max: MEMORY_BYTES - 1 }),
  len: fc.integer({ min: 1, max: 2 * PAGE_BYTES }),
  value: fc.integer({ min: 0, max: 255 }),
  // 0: a constant run; 1: a slow ramp; 2: noise (a page no delta helps).
  pattern: fc.integer({ min: 0, max: 2 }),
});

function apply(memory: PagedMemory, w: Write): void {
  const len = Math.min(w.len, MEMORY_BYTES - w.addr);
  const bytes = new Uint8Array(len);
  for (let k = 0; k < len; k++) bytes[k] = w.pattern === 0 ? w.value : w.pattern === 1 ? (w.value + (k >> 6)) & 0xff : (w.value * 131 + k * k * 17 + (k >> 3)) & 0xff;
  memory.write(w.addr, bytes);
}

const chunkBytes = fc.integer({ min: PAGE_BYTES + RECORD_HEADER_MAX_BYTES, max: 5 * PAGE_BYTES });

function decodeOrDecodeError(run: () => unknown): void {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DecodeError);
  }
}

describe('packPages / unpackPages', () => {
  it('restore identical memory over many epochs, with and without a shadow, in chunks of at most chunkBytes', () => {
    fc.assert(
      fc.property(fc.boolean(), chunkBytes, fc.array(fc.array(write, { maxLength: 6 }), { minLength: 1, maxLength: 5 }), (withShadow, limit, epochs) => {
        const memory = new PagedMemory(MEMORY_BYTES);
        const shadow = withShadow ? new PageShadow(MEMORY_BYTES) : null;
        const image = new PagedMemory(MEMORY_BYTES);
        for (const writes of epochs) {
          for (const w of writes) apply(memory, w);
          const pages = memory.takeDirtyPages();
          const packed = packPages(memory, shadow, pages, limit);
          expect(packed.rawBytes).toHaveLength(packed.pieces.length);
          // A checksum begun over each piece as it was taken, of the bytes it holds in the end.
          packed.checksums.forEach((c, i) => {
            expect(c.data).toBe(packed.pieces[i]);
            expect(bytesEqual(c.finish(), checksum(packed.pieces[i]!))).toBe(true);
          });
          expect(packed.rawBytes.reduce((a, b) => a + b, 0)).toBe(pages.length * PAGE_BYTES);
          const written: number[] = [];
          for (const chunk of packed.pieces) {
            expect(chunk.length).toBeGreaterThan(0);
            expect(chunk.length).toBeLessThanOrEqual(limit);
            written.push(...unpackPages(chunk, image));
          }
          expect(written).toEqual(pages);
          expect(bytesEqual(image.bytes, memory.bytes)).toBe(true);
          // The shadow follows the backup's copy.
          if (shadow !== null) expect(bytesEqual(shadow.bytes, memory.bytes)).toBe(true);
        }
      }),
      { numRuns: 80 },
    );
  });

  it('sends a lightly changed page as a delta and a rewritten page raw, within the same bound', () => {
    const memory = new PagedMemory(2 * PAGE_BYTES);
    const shadow = new PageShadow(2 * PAGE_BYTES);
    packPages(memory, shadow, [], PAGE_BYTES + RECORD_HEADER_MAX_BYTES);
    memory.write(10, new Uint8Array([1, 2, 3]));
    memory.write(PAGE_BYTES, Uint8Array.from({ length: PAGE_BYTES }, (_, k) => (k * 7 + 1) & 0xff));
    const packed = packPages(memory, shadow, memory.takeDirtyPages(), PAGE_BYTES + RECORD_HEADER_MAX_BYTES);
    expect(packed.pieces).toHaveLength(2); // a raw page fills a chunk
    expect(packed.pieces[0]!.length).toBeLessThan(16);
    expect(packed.pieces[1]!.length).toBeGreaterThan(PAGE_BYTES);
    expect(packed.rawBytes).toEqual([PAGE_BYTES, PAGE_BYTES]);
  });

  /** One page packed once (the shadow then holds it), rewritten by `rewrite`, and packed again: the one chunk of that second packing. */
  const packAfterRewrite = (rewrite: (memory: PagedMemory) => void): Uint8Array => {
    const limit = 2 * (PAGE_BYTES + RECORD_HEADER_MAX_BYTES);
    const memory = new PagedMemory(PAGE_BYTES);
    const shadow = new PageShadow(PAGE_BYTES);
    memory.write(0, Uint8Array.from({ length: PAGE_BYTES }, (_, k) => (k * 13 + 5) & 0xff));
    packPages(memory, shadow, memory.takeDirtyPages(), limit);
    rewrite(memory);
    const packed = packPages(memory, shadow, memory.takeDirtyPages(), limit);
    expect(packed.pieces).toHaveLength(1);
    return packed.pieces[0]!;
  };

  it('tries a delta on a page half rewritten all over, and sends a page raw when too little of it is unchanged', () => {
    // Every 64-byte line keeps its last `unchangedOfEvery64` bytes and gets new ones before them.
    const everyLine = (unchangedOfEvery64: number) => (memory: PagedMemory) => {
      for (let line = 0; line < PAGE_BYTES; line += 64) memory.write(line, new Uint8Array(64 - unchangedOfEvery64).fill(0xee));
    };
    expect(packAfterRewrite(everyLine(32)).length).toBeLessThan(0.6 * PAGE_BYTES); // half the page unchanged: a delta
    expect(packAfterRewrite(everyLine(4)).length).toBeGreaterThanOrEqual(PAGE_BYTES); // 1/16 unchanged: raw
  });

  it('sends a page rewritten over its first half and more raw, and one rewritten over less than half as a delta', () => {
    // A send ring's page at an epoch's end: new bytes up to where the writer stopped.
    const prefix = (rewrittenBytes: number) => (memory: PagedMemory) => memory.write(0, Uint8Array.from({ length: rewrittenBytes }, (_, k) => (k * 29 + 3) & 0xff));
    // Its first line and its middle one both new: raw, without reading further (the delta would save a quarter).
    expect(packAfterRewrite(prefix((3 * PAGE_BYTES) / 4)).length).toBeGreaterThanOrEqual(PAGE_BYTES);
    // The middle line unchanged: the sample goes on, and most of the page is unchanged: a delta.
    expect(packAfterRewrite(prefix(PAGE_BYTES / 4)).length).toBeLessThan(0.4 * PAGE_BYTES);
  });

  it('packs nothing for no dirty pages', () => {
    expect(packPages(new PagedMemory(PAGE_BYTES), null, [], 1 << 16)).toEqual({ pieces: [], rawBytes: [], checksums: [] });
  });

  it('throws DecodeError for each way a chunk can be malformed', () => {
    const image = () => new PagedMemory(2 * PAGE_BYTES);
    const raw = (index: number, length: number, encoding = 0) => {
      const body = new Uint8Array(length);
      return Uint8Array.from([index, encoding, ...(length < 128 ? [length] : [(length & 0x7f) | 0x80, length >> 7]), ...body]);
    };
    const cases: Record<string, Uint8Array> = {
      'page outside the image': raw(2, PAGE_BYTES),
      'raw page of the wrong size': raw(0, 100),
      'unknown encoding': raw(0, 4, 9),
      'record overruns the chunk': raw(0, PAGE_BYTES).subarray(0, 50),
      'missing encoding and length': Uint8Array.from([0]),
      'delta shorter than its record': Uint8Array.from([0, 1, 5, 0x80, 0x20, 0, 0, 0]),
      'delta ends early': Uint8Array.from([0, 1, 2, 2, 0]),
    };
    for (const [name, chunk] of Object.entries(cases)) expect(() => unpackPages(chunk, image()), name).toThrow(DecodeError);
  });

  it('throws DecodeError, never another error, for any bytes, and any corruption of a valid chunk', () => {
    const memory = new PagedMemory(4 * PAGE_BYTES);
    const shadow = new PageShadow(4 * PAGE_BYTES);
    memory.write(0, Uint8Array.from({ length: 3 * PAGE_BYTES }, (_, k) => (k >> 5) & 0xff));
    packPages(memory, shadow, memory.takeDirtyPages(), 1 << 16);
    memory.write(PAGE_BYTES + 5, new Uint8Array(600).fill(9));
    const [valid] = packPages(memory, shadow, memory.takeDirtyPages(), 1 << 16).pieces;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => decodeOrDecodeError(() => unpackPages(bytes, new PagedMemory(4 * PAGE_BYTES)))),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: valid!.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat({ max: valid!.length }), (flips, cut) => {
        const corrupt = valid!.slice(0, cut);
        for (const [at, value] of flips) if (at < corrupt.length) corrupt[at] = value;
        decodeOrDecodeError(() => unpackPages(corrupt, new PagedMemory(4 * PAGE_BYTES)));
      }),
      { numRuns: 300 },
    );
  });
});
