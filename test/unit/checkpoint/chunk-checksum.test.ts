import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkChecksum, chunkIntact, makeChunks, makeManifest, type ChecksummedChunk } from '../../../lib/checkpoint/chunks.js';
import { bytesEqual } from '../../../lib/checkpoint/hash.js';
import { BegunChecksum } from '../../../lib/checkpoint/checksum.js';
import { InvariantError } from '../../../lib/errors.js';
import { ChunkSource } from '../../../lib/codec/messages.js';

const fields: fc.Arbitrary<ChecksummedChunk> = fc.record({
  vmId: fc.string({ minLength: 1, maxLength: 300 }),
  term: fc.nat(),
  epoch: fc.nat(),
  source: fc.constantFrom(ChunkSource.PAGES, ChunkSource.STATE, ChunkSource.SPEC, ChunkSource.MANIFEST),
  index: fc.nat({ max: 0xffff_ffff }),
  count: fc.nat({ max: 0xffff_ffff }),
  data: fc.uint8Array({ maxLength: 300 }),
  rawBytes: fc.nat(),
  base: fc.boolean(),
  joinSeq: fc.nat(),
  primaryIncarnation: fc.nat(),
  primaryAgentIncarnation: fc.nat(),
});

/** One field of a chunk changed to another value of its kind. */
const altered = (c: ChecksummedChunk): fc.Arbitrary<ChecksummedChunk> =>
  fc.oneof(
    fc.string({ maxLength: 300 }).filter((v) => v !== c.vmId).map((vmId) => ({ ...c, vmId })),
    fc.nat().filter((v) => v !== c.term).map((term) => ({ ...c, term })),
    fc.nat().filter((v) => v !== c.epoch).map((epoch) => ({ ...c, epoch })),
    fc.constantFrom(ChunkSource.PAGES, ChunkSource.STATE, ChunkSource.SPEC, ChunkSource.MANIFEST).filter((v) => v !== c.source).map((source) => ({ ...c, source })),
    fc.nat({ max: 0xffff_ffff }).filter((v) => v !== c.index).map((index) => ({ ...c, index })),
    fc.nat({ max: 0xffff_ffff }).filter((v) => v !== c.count).map((count) => ({ ...c, count })),
    fc.nat().filter((v) => v !== c.rawBytes).map((rawBytes) => ({ ...c, rawBytes })),
    fc.constant({ ...c, base: !c.base }),
    fc.nat().filter((v) => v !== c.joinSeq).map((joinSeq) => ({ ...c, joinSeq })),
    fc.nat().filter((v) => v !== c.primaryIncarnation).map((primaryIncarnation) => ({ ...c, primaryIncarnation })),
    fc.nat().filter((v) => v !== c.primaryAgentIncarnation).map((primaryAgentIncarnation) => ({ ...c, primaryAgentIncarnation })),
    fc.uint8Array({ maxLength: 300 }).filter((d) => !bytesEqual(d, c.data)).map((data) => ({ ...c, data })),
  );

describe('chunk checksum: header fields and data', () => {
  it('differs when any one field differs, the vmId and the data moving their boundary included', () => {
    fc.assert(
      fc.property(
        fields.chain((c) => fc.tuple(fc.constant(c), altered(c))),
        ([c, other]) => {
          expect(bytesEqual(chunkChecksum(c), chunkChecksum(other))).toBe(false);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('is a function of the fields alone: the same for copies, also of a vmId longer than the scratch head', () => {
    fc.assert(
      fc.property(fields, (c) => {
        expect(bytesEqual(chunkChecksum(c), chunkChecksum({ ...c, vmId: String(c.vmId), data: Uint8Array.from(c.data) }))).toBe(true);
      }),
    );
  });

  it('tells a vmId and the data apart where they meet ("ab" + "c…" is not "abc" + "…")', () => {
    const c = { term: 1, epoch: 2, source: ChunkSource.PAGES, index: 0, count: 1, rawBytes: 3, base: false, joinSeq: 0, primaryIncarnation: 0, primaryAgentIncarnation: 0 };
    expect(bytesEqual(chunkChecksum({ ...c, vmId: 'ab', data: new TextEncoder().encode('cde') }), chunkChecksum({ ...c, vmId: 'abc', data: new TextEncoder().encode('de') }))).toBe(false);
  });

  it('makeChunks and makeManifest make intact chunks; any header change breaks them', () => {
    const header = { vmId: 'vm1', term: 3, epoch: 7 };
    const chunks = makeChunks(header, ChunkSource.PAGES, { pieces: [Uint8Array.of(1, 2), Uint8Array.of(3)], rawBytes: [4096, 4096] });
    const manifest = makeManifest(header, chunks, { base: true, primaryIncarnation: 5, primaryAgentIncarnation: 4 });
    for (const c of [...chunks, manifest]) expect(chunkIntact(c)).toBe(true);
    expect(chunkIntact({ ...manifest, base: false })).toBe(false);
    expect(chunkIntact({ ...manifest, primaryIncarnation: 6 })).toBe(false);
    expect(chunkIntact({ ...manifest, primaryAgentIncarnation: 3 })).toBe(false);
    expect(chunkIntact({ ...chunks[0]!, epoch: 8 })).toBe(false);
    expect(chunkIntact({ ...chunks[0]!, term: 4 })).toBe(false);
    expect(chunkIntact({ ...chunks[0]!, vmId: 'vm2' })).toBe(false);
    expect(chunkIntact({ ...chunks[1]!, rawBytes: 1 })).toBe(false);
  });

  it('is the same begun over the data as the chunk was written as computed afterwards, and refuses one begun over other data', () => {
    fc.assert(
      fc.property(fields, (c) => {
        expect(bytesEqual(chunkChecksum(c, new BegunChecksum(c.data)), chunkChecksum(c))).toBe(true);
      }),
    );
    const c = { vmId: 'vm1', term: 1, epoch: 2, source: ChunkSource.PAGES, index: 0, count: 1, rawBytes: 3, base: false, joinSeq: 0, primaryIncarnation: 0, primaryAgentIncarnation: 0, data: Uint8Array.of(1, 2, 3) };
    expect(() => chunkChecksum(c, new BegunChecksum(Uint8Array.of(1, 2, 3)))).toThrow(InvariantError);
  });
});
