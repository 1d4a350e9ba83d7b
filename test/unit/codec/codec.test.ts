import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decode, decodeSegment, encode, encodeSegment, MAX_WSCALE } from '../../../lib/codec/codec.js';
import { specula } from '../../../lib/codec/gen/specula.js';
import { TCP_FLAGS_MASK, type Segment, type WireMessageType } from '../../../lib/codec/messages.js';
import { messageTypeOf, subjects } from '../../../lib/codec/subjects.js';
import { DecodeError, UnknownSubjectError } from '../../../lib/errors.js';
import { segment } from '../support/segments.js';

const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });

const validSegment: fc.Arbitrary<Segment> = fc.record({
  type: fc.constant('segment' as const),
  vmId: fc.string({ unit: 'grapheme', maxLength: 64 }),
  term: u64,
  epoch: u64,
  connId: u32,
  seq: u64,
  ack: u64,
  window: fc.integer({ min: 0, max: 0xffff }),
  flags: fc.integer({ min: 0, max: TCP_FLAGS_MASK }),
  payload: fc.uint8Array({ maxLength: 2000 }),
  mss: u32,
  wscale: fc.option(fc.integer({ min: 0, max: MAX_WSCALE }), { nil: undefined }),
  tsValUs: u64,
  tsEcrUs: u64,
  speculative: fc.boolean(),
});

/** Segments compared field by field, payload as plain bytes. */
const plain = (s: Segment) => ({ ...s, payload: Array.from(s.payload) });

/** Decodes, reporting how it ended: a Segment, a DecodeError, or anything else (a bug). */
function outcome(bytes: Uint8Array): 'ok' | 'decode-error' | string {
  try {
    decodeSegment(bytes);
    return 'ok';
  } catch (e) {
    return e instanceof DecodeError ? 'decode-error' : `unexpected ${String(e)}`;
  }
}

describe('codec', () => {
  it('decodes what it encodes, for any valid Segment', () => {
    fc.assert(
      fc.property(validSegment, (s) => {
        expect(plain(decodeSegment(encodeSegment(s)))).toEqual(plain(s));
      }),
    );
  });

  it('round-trips through the type-dispatching encode and decode', () => {
    fc.assert(
      fc.property(validSegment, (s) => {
        expect(plain(decode('segment', encode(s)) as Segment)).toEqual(plain(s));
      }),
      { numRuns: 20 },
    );
  });

  it('keeps an absent window scale apart from a window scale of 0', () => {
    expect(decodeSegment(encodeSegment(segment({ wscale: undefined }))).wscale).toBeUndefined();
    expect(decodeSegment(encodeSegment(segment({ wscale: 0 }))).wscale).toBe(0);
  });

  it('either decodes arbitrary bytes or throws DecodeError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(outcome(bytes)).toMatch(/^(ok|decode-error)$/);
      }),
      { numRuns: 2000 },
    );
  });

  it('either decodes a corrupted valid encoding or throws DecodeError, never anything else', () => {
    const corrupted = fc
      .tuple(validSegment, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat())
      .map(([s, edits, cut]) => {
        const bytes = encodeSegment(s).slice();
        for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
        return bytes.subarray(0, bytes.length === 0 ? 0 : cut % (bytes.length + 1));
      });
    fc.assert(
      fc.property(corrupted, (bytes) => {
        expect(outcome(bytes)).toMatch(/^(ok|decode-error)$/);
      }),
      { numRuns: 2000 },
    );
  });

  it('either decodes arbitrary bytes as any message type or throws DecodeError, never anything else', () => {
    const types: WireMessageType[] = ['segment', 'epochBarrier', 'epochEnd', 'checkpointChunk', 'checkpointAck', 'epochCommit'];
    fc.assert(
      fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 300 }), (type, bytes) => {
        try {
          decode(type, bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('throws DecodeError for a truncated encoding', () => {
    const bytes = encodeSegment(segment({ vmId: 'vm1', payload: new Uint8Array(100) }));
    expect(() => decodeSegment(bytes.subarray(0, bytes.length - 1))).toThrow(DecodeError);
  });

  it('rejects a window field above 65 535 and accepts 65 535', () => {
    expect(() => decodeSegment(encodeSegment(segment({ window: 0x10000 })))).toThrow(DecodeError);
    expect(decodeSegment(encodeSegment(segment({ window: 0xffff }))).window).toBe(0xffff);
  });

  it('rejects flag bits outside FIN|SYN|RST|PSH|ACK', () => {
    for (const flags of [32, 64, 0x80 | 16, 0x8000_0000]) {
      expect(() => decodeSegment(encodeSegment(segment({ flags })))).toThrow(DecodeError);
    }
  });

  it('rejects a window scale above 14 and accepts 14', () => {
    expect(() => decodeSegment(encodeSegment(segment({ wscale: 15 })))).toThrow(DecodeError);
    expect(decodeSegment(encodeSegment(segment({ wscale: 14 }))).wscale).toBe(14);
  });

  it('rejects a sequence number beyond the safe-integer range', () => {
    const bytes = specula.v1.Segment.encode({ seq: 2 ** 60 }).finish();
    expect(() => decodeSegment(bytes)).toThrow(DecodeError);
  });

  it('gives the decoded payload its own length, not the whole input buffer', () => {
    const bytes = encodeSegment(segment({ payload: new Uint8Array([9, 8, 7]), vmId: 'a-long-vm-id' }));
    expect(Array.from(decodeSegment(bytes).payload)).toEqual([9, 8, 7]);
  });
});

describe('messageTypeOf', () => {
  it('maps both wire subjects of a VM to segment', () => {
    const s = subjects('vm-7');
    expect(messageTypeOf(s.wireOut)).toBe('segment');
    expect(messageTypeOf(s.wireIn)).toBe('segment');
  });

  it('maps every subject of a VM to the type it carries', () => {
    const s = subjects('vm_1');
    // Every subject has a type (none throws); the known ones have these.
    const types = Object.fromEntries(Object.entries(s).map(([name, subject]) => [name, messageTypeOf(typeof subject === 'string' ? subject : subject('host-a'))]));
    expect(types).toMatchObject({
      wireOut: 'segment',
      wireIn: 'segment',
      tx: 'segment',
      txEpoch: 'epochEnd',
      rx: 'segment',
      epoch: 'epochBarrier',
      heartbeat: 'heartbeat',
      control: 'roleChange',
      ckptStage: 'checkpointChunk',
      ckptData: 'checkpointChunk',
      ckptAck: 'checkpointAck',
      commit: 'epochCommit',
    });
  });

  it('throws UnknownSubjectError for an unknown subject', () => {
    for (const subject of ['', 'specula.vm1.ack', 'specula.vm1.wire', 'specula.vm1.wire.out.extra', 'other.vm1.wire.out', 'specula..wire.out']) {
      expect(() => messageTypeOf(subject), subject).toThrow(UnknownSubjectError);
    }
  });

  it('throws UnknownSubjectError when the VM token contains a dot', () => {
    expect(() => messageTypeOf('specula.a.b.wire.out')).toThrow(UnknownSubjectError);
  });
});
