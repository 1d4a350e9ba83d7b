import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSegment, encodeSegment } from '../../../lib/codec/codec.js';
import { specula } from '../../../lib/codec/gen/specula.js';
import '../../../lib/codec/protobuf-numbers.js';
import { NO_SACK_BLOCKS, type Segment } from '../../../lib/codec/messages.js';
import { DecodeError, InvariantError } from '../../../lib/errors.js';
import { MAX_STREAM_POSITION } from '../../../lib/tcp/header.js';

/** What protobufjs writes for the segment (as a plain Uint8Array: it gives large ones as Buffers): the reference the hand-written encoder must equal byte for byte. */
function generated(seg: Segment): Uint8Array {
  const { type: _type, wscale, sackBlocks, ...fields } = seg;
  return new Uint8Array(specula.v1.Segment.encode({ ...fields, sackBlocks: sackBlocks as number[], ...(wscale === undefined ? {} : { wscale }) }).finish());
}

const u64 = fc.oneof(fc.constant(0), fc.nat({ max: 127 }), fc.nat({ max: 2 ** 32 }), fc.maxSafeNat());
const u16 = fc.oneof(fc.constant(0), fc.nat({ max: 0xffff }));
const segment: fc.Arbitrary<Segment> = fc.record({
  type: fc.constant('segment' as const),
  vmId: fc.oneof(fc.constant(''), fc.constant('vm1'), fc.string({ maxLength: 70 }), fc.string({ unit: 'grapheme', maxLength: 20 })),
  term: u64,
  epoch: u64,
  connId: fc.nat({ max: 4 }),
  seq: u64,
  ack: u64,
  window: u16,
  flags: fc.nat({ max: 0x3f }),
  payload: fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ minLength: 1448, maxLength: 1448 }), fc.uint8Array({ minLength: 20_000, maxLength: 20_000 })),
  mss: u16,
  wscale: fc.option(fc.nat({ max: 14 }), { nil: undefined }),
  sackPermitted: fc.boolean(),
  sackBlocks: fc.oneof(fc.constant(NO_SACK_BLOCKS), fc.array(u64, { minLength: 1, maxLength: 8 })),
  tsValUs: u64,
  tsEcrUs: u64,
  speculative: fc.boolean(),
});

describe('the hand-written Segment encoder', () => {
  it('writes byte for byte what protobufjs writes, for any segment', () => {
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 40 }), (segments) => {
        // Many in a row: encodings share slabs, and an earlier one must not change when a later one is written.
        const encoded = segments.map((s) => encodeSegment(s));
        segments.forEach((s, i) => {
          const [ours, theirs] = [Buffer.from(encoded[i]!), Buffer.from(generated(s))];
          expect(ours.equals(theirs), `segment ${i}: ${ours.toString('hex').slice(0, 200)} against ${theirs.toString('hex').slice(0, 200)}`).toBe(true);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips through the decoder', () => {
    const seg: Segment = { type: 'segment', vmId: 'vm1', term: 3, epoch: 2 ** 40, connId: 1, seq: MAX_STREAM_POSITION, ack: 7, window: 512, flags: 0x10, payload: Uint8Array.from([1, 2, 3]), mss: 0, wscale: 0, sackPermitted: false, sackBlocks: [10, 20, 30, 40], tsValUs: 1, tsEcrUs: 0, speculative: true };
    expect(decodeSegment(encodeSegment(seg))).toEqual(seg);
  });

  it('the decoder refuses a sequence number, ACK or SACK edge past any stream\'s positions: a receiver adds lengths and windows to them', () => {
    const base: Segment = { type: 'segment', vmId: 'vm1', term: 1, epoch: 1, connId: 1, seq: 1, ack: 1, window: 1, flags: 0x02, payload: new Uint8Array(0), mss: 0, wscale: undefined, sackPermitted: false, sackBlocks: NO_SACK_BLOCKS, tsValUs: 1, tsEcrUs: 1, speculative: false };
    expect(decodeSegment(encodeSegment({ ...base, seq: MAX_STREAM_POSITION, ack: MAX_STREAM_POSITION })).seq).toBe(MAX_STREAM_POSITION);
    expect(() => decodeSegment(encodeSegment({ ...base, seq: 2 ** 53 - 1 }))).toThrow(DecodeError);
    expect(() => decodeSegment(encodeSegment({ ...base, ack: MAX_STREAM_POSITION + 1 }))).toThrow(DecodeError);
    expect(() => decodeSegment(encodeSegment({ ...base, sackBlocks: [MAX_STREAM_POSITION, MAX_STREAM_POSITION + 1] }))).toThrow(DecodeError);
  });

  it('refuses a field no sender builds: negative or beyond 2^53', () => {
    const base: Segment = { type: 'segment', vmId: 'vm1', term: 1, epoch: 1, connId: 1, seq: 1, ack: 1, window: 1, flags: 0, payload: new Uint8Array(0), mss: 0, wscale: undefined, sackPermitted: false, sackBlocks: NO_SACK_BLOCKS, tsValUs: 1, tsEcrUs: 1, speculative: false };
    expect(() => encodeSegment({ ...base, seq: -1 })).toThrow(InvariantError);
    expect(() => encodeSegment({ ...base, ack: 2 ** 53 })).toThrow(InvariantError);
    expect(() => encodeSegment({ ...base, sackBlocks: [1.5, 2] })).toThrow(InvariantError);
  });
});
