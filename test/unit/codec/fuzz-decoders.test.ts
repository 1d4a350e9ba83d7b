/**
 * Hostile bytes for every decoder: random bytes, random lengths, and valid
 * encodings of another type, each either decoded or refused with a
 * DecodeError, never anything else (which a shell would take for a bug and
 * fail on). SPECULA_FUZZ_RUNS inputs per decoder: 1,000 in `npm test`,
 * 100,000 with `npm run fuzz`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBatch, encodeBatch } from '../../../lib/codec/batch.js';
import { decode, encode } from '../../../lib/codec/codec.js';
import type { WireMessage, WireMessageType } from '../../../lib/codec/messages.js';
import { DecodeError } from '../../../lib/errors.js';

const RUNS = Number(process.env.SPECULA_FUZZ_RUNS ?? 1_000);
const TYPES: WireMessageType[] = ['segment', 'epochBarrier', 'epochEnd', 'checkpointChunk', 'checkpointAck', 'epochCommit', 'outputIdle', 'heartbeat', 'roleChange', 'assignment', 'serviceStatus', 'releasePermit', 'handoverRequest', 'failoverStatus', 'serviceReport'];

/** One valid message of each type, whose encodings are fed to the other decoders. */
const SAMPLES: WireMessage[] = [
  { type: 'epochBarrier', vmId: 'vm1', term: 2, epoch: 9, base: true, stagedSources: 3, joinSeq: 4, local: false },
  { type: 'epochCommit', vmId: 'vm1', term: 2, epoch: 9 },
  { type: 'checkpointAck', vmId: 'vm1', term: 2, epoch: 9, ok: false, reason: 'chunks missing', host: 'host-b', needsBase: false },
  { type: 'releasePermit', vmId: 'vm1', host: 'host-a', term: 2, fromUs: 123_000_000, untilUs: 123_456_789, seq: 4 },
  { type: 'roleChange', vmId: 'vm1', term: 3, host: 'host-b', role: 'primary', peerHost: 'host-c', seq: 7, committedEpoch: 40, joinSeq: 6 },
];

function outcome(type: WireMessageType, bytes: Uint8Array): string {
  try {
    decode(type, bytes);
    return 'ok';
  } catch (e) {
    return e instanceof DecodeError ? 'decode-error' : `unexpected ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`;
  }
}

describe(`every decoder against hostile bytes (${RUNS} inputs each)`, () => {
  it.each(TYPES)('%s: random bytes are decoded or refused with a DecodeError', (type) => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
        expect(outcome(type, bytes)).toMatch(/^(ok|decode-error)$/);
      }),
      { numRuns: RUNS },
    );
  });

  it.each(TYPES)('%s: another type\'s encoding, cut and corrupted, is decoded or refused with a DecodeError', (type) => {
    const hostile = fc.tuple(fc.constantFrom(...SAMPLES), fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 })).map(([msg, cut, edits]) => {
      const bytes = encode(msg).slice();
      for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
      return bytes.subarray(0, cut % (bytes.length + 1));
    });
    fc.assert(
      fc.property(hostile, (bytes) => {
        expect(outcome(type, bytes)).toMatch(/^(ok|decode-error)$/);
      }),
      { numRuns: RUNS },
    );
  });

  it('a batch: random bytes and corrupted batches are split or refused with a DecodeError', () => {
    const corruptedBatch = fc.tuple(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 8 }), fc.nat(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 })).map(([parts, cut, edits]) => {
      const bytes = encodeBatch(parts).slice();
      for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
      return bytes.subarray(0, cut % (bytes.length + 1));
    });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }), corruptedBatch), (bytes) => {
        try {
          const parts = decodeBatch(bytes);
          // What splits never claims more bytes than there are.
          expect(parts.reduce((n, p) => n + p.length, 0)).toBeLessThanOrEqual(bytes.length);
        } catch (e) {
          expect(e).toBeInstanceOf(DecodeError);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
