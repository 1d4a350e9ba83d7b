import { describe, expect, it } from 'vitest';
import { checksum } from '../../../lib/checkpoint/checksum.js';
import { SplitWriter } from '../../../lib/checkpoint/split-writer.js';
import { InvariantError } from '../../../lib/errors.js';

describe('SplitWriter', () => {
  it('cuts writes that span chunks at the chunk size, the last chunk holding the rest', () => {
    const w = new SplitWriter(7, 3);
    w.bytes(Uint8Array.of(1, 2));
    w.varint(300); // two bytes: 0xac 0x02
    w.bytes(Uint8Array.of(9, 8, 7));
    expect(w.remaining).toBe(0);
    const { pieces, checksums } = w.take();
    expect(pieces).toEqual([Uint8Array.of(1, 2, 0xac), Uint8Array.of(0x02, 9, 8), Uint8Array.of(7)]);
    // A checksum begun per chunk, over the chunk as it ended up (begun once it filled): finished, it is the checksum of those bytes.
    expect(checksums).toHaveLength(3);
    checksums!.forEach((c, i) => {
      expect(c.data).toBe(pieces[i]);
      expect(c.finish()).toEqual(checksum(pieces[i]!));
    });
  });

  it('is one empty chunk for an empty part, as splitBytes gives', () => {
    const { pieces, checksums } = new SplitWriter(0, 4).take();
    expect(pieces).toEqual([new Uint8Array(0)]);
    expect(checksums?.[0]?.finish()).toEqual(checksum(new Uint8Array(0)));
  });

  it('refuses a write past the announced length and a part taken before it is whole', () => {
    const w = new SplitWriter(2, 4);
    expect(() => w.bytes(Uint8Array.of(1, 2, 3))).toThrow(InvariantError);
    w.bytes(Uint8Array.of(1));
    expect(() => w.take()).toThrow(InvariantError);
  });
});
