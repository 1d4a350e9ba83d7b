import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteWriter } from '../../../lib/checkpoint/byte-writer.js';
import { decodeSpecDeltas, encodeSpecDeltaChunks, encodeSpecDeltas, type AckerConnectionState, type SpecDelta } from '../../../lib/checkpoint/spec-delta.js';
import { DecodeError, InvariantError } from '../../../lib/errors.js';
import { joinRun } from '../../../lib/checkpoint/byte-run.js';
import { splitBytes } from '../../../lib/checkpoint/chunks.js';

const connection = (connId: number, clientNxt = 100): AckerConnectionState => ({ connId, clientWscale: 7, clientSynWindow: 65535, guestOfferedWscale: true, clientNxt, guestHeader: { epoch: 3, ack: clientNxt, window: 512, tsValUs: 9, tsEcrUs: 8 } });

/** A part written by hand: each record's (startSeq 1, clientAckSeq 1) and header JSON, then the bytes that follow it. */
function records(list: readonly (readonly [unknown, Uint8Array])[]): Uint8Array {
  const w = new ByteWriter();
  for (const [header, after] of list) {
    const json = new TextEncoder().encode(JSON.stringify(header));
    w.varint(1);
    w.varint(1);
    w.varint(json.length);
    w.bytes(json);
    w.bytes(after);
  }
  return w.take();
}
const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('speculative-buffer part of a checkpoint', () => {
  it('encodes one connection as it always did: startSeq, client ACK, connection JSON, then the bytes to the end', () => {
    const delta: SpecDelta = { startSeq: 1001, clientAckSeq: 900, connection: connection(1), bytes: bytes(300, 1) };
    const json = new TextEncoder().encode(JSON.stringify(delta.connection));
    const legacy = new ByteWriter();
    legacy.varint(1001);
    legacy.varint(900);
    legacy.varint(json.length);
    legacy.bytes(json);
    legacy.bytes(joinRun(delta.bytes));
    expect(encodeSpecDeltas([delta])).toEqual(legacy.take());
  });

  it('round-trips one record per connection, and a part without a connection', () => {
    const records = (n: number) =>
      fc.array(
        fc.record({ startSeq: fc.nat({ max: 2 ** 40 }), clientAckSeq: fc.nat({ max: 2 ** 40 }), clientNxt: fc.nat({ max: 2 ** 32 }), length: fc.nat({ max: 3000 }) }),
        { minLength: n, maxLength: n },
      );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 }).chain(records), (rs) => {
        const deltas = rs.map((r, i): SpecDelta => ({ startSeq: r.startSeq, clientAckSeq: r.clientAckSeq, connection: connection(i + 1, r.clientNxt), bytes: bytes(r.length, i) }));
        expect(decodeSpecDeltas(encodeSpecDeltas(deltas))).toEqual(deltas);
      }),
    );
    const none: SpecDelta = { startSeq: 0, clientAckSeq: 0, connection: null, bytes: new Uint8Array(0) };
    expect(decodeSpecDeltas(encodeSpecDeltas([none]))).toEqual([none]);
  });

  it('writes the part straight into chunks, byte for byte the chunks that cutting the whole part gives', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ startSeq: fc.nat({ max: 2 ** 40 }), length: fc.nat({ max: 2000 }), cuts: fc.array(fc.nat({ max: 2000 }), { maxLength: 3 }) }), { minLength: 1, maxLength: 2 }),
        fc.integer({ min: 1, max: 700 }),
        (rs, chunkBytes) => {
          const deltas = rs.map((r, i): SpecDelta => {
            const data = bytes(r.length, i);
            // The buffer's bytes as pieces (a ring's two ends, or more): the chunks must not depend on where they are cut.
            const at = [...new Set(r.cuts.filter((c) => c < r.length))].sort((a, b) => a - b);
            const pieces = [0, ...at].map((from, k) => data.subarray(from, at[k] ?? r.length));
            return { startSeq: r.startSeq, clientAckSeq: r.startSeq, connection: connection(i + 1), bytes: { pieces } };
          });
          const part = encodeSpecDeltaChunks(deltas, chunkBytes);
          expect(part.pieces).toEqual(splitBytes(encodeSpecDeltas(deltas), chunkBytes));
          expect(part.pieces.every((c) => c.length <= chunkBytes)).toBe(true);
          // Each chunk's checksum was begun over that chunk, whole.
          expect(part.checksums?.map((c) => c.data)).toEqual(part.pieces);
          part.checksums?.forEach((c, i) => expect(c.data).toBe(part.pieces[i]));
        },
      ),
    );
  });

  it('refuses a connection the guest cannot have, or connection state of the wrong shape: the backup would keep a buffer for it', () => {
    const part = (header: unknown) => records([[header, bytes(10, 1)]]);
    expect(decodeSpecDeltas(part(connection(2)))[0]!.connection).toEqual(connection(2));
    expect(decodeSpecDeltas(part(null))[0]!.connection).toBeNull();
    for (const connId of [0, 3, 1.5, -1, '1', null, 2 ** 40]) expect(() => decodeSpecDeltas(part({ ...connection(1), connId }))).toThrow(DecodeError);
    for (const header of [7, 'x', [], { ...connection(1), clientNxt: 'a' }, { ...connection(1), clientWscale: -1 }, { ...connection(1), guestOfferedWscale: 1 }, { ...connection(1), guestHeader: { epoch: 1 } }, { ...connection(1), guestHeader: [] }, { ...connection(1), sackPermitted: false }, { ...connection(1), clientWindowBytes: -1 }, { ...connection(1), clientWindowBytes: 65535 * 2 ** 14 + 1 }]) {
      expect(() => decodeSpecDeltas(part(header))).toThrow(DecodeError);
    }
  });

  it("takes a connection that awaits its SYN-ACK without bytes, and refuses one with bytes or with the flag of another value", () => {
    const awaiting = { ...connection(1), guestHeader: null, awaitingSynAck: true as const };
    expect(decodeSpecDeltas(records([[awaiting, new Uint8Array(0)]]))[0]!.connection).toEqual(awaiting);
    expect(decodeSpecDeltas(records([[{ ...awaiting, bytes: 0 }, new Uint8Array(0)], [connection(2), bytes(10, 2)]])).map((d) => d.connection?.awaitingSynAck)).toEqual([true, undefined]);
    expect(() => decodeSpecDeltas(records([[awaiting, bytes(10, 1)]]))).toThrow(/awaits its SYN-ACK/);
    expect(() => decodeSpecDeltas(records([[{ ...awaiting, bytes: 10 }, bytes(10, 1)], [connection(2), bytes(1, 2)]]))).toThrow(DecodeError);
    for (const flag of [false, 1, 'yes']) expect(() => decodeSpecDeltas(records([[{ ...awaiting, awaitingSynAck: flag }, new Uint8Array(0)]]))).toThrow(DecodeError);
  });

  it('refuses a part that is empty, names more connections than a guest has, or whose record overruns it', () => {
    expect(() => decodeSpecDeltas(new Uint8Array(0))).toThrow(DecodeError);
    const two = encodeSpecDeltas([
      { startSeq: 1, clientAckSeq: 1, connection: connection(1), bytes: bytes(10, 1) },
      { startSeq: 1, clientAckSeq: 1, connection: connection(2), bytes: bytes(10, 2) },
    ]);
    // A first record that says it has more bytes than the part holds.
    expect(() => decodeSpecDeltas(records([[{ ...connection(1), bytes: 10_000 }, bytes(10, 1)]]))).toThrow(/overruns/);
    expect(() => decodeSpecDeltas(records([[{ ...connection(1), bytes: 10_000 }, bytes(10, 1)]]))).toThrow(DecodeError);
    // Three records: a guest has two connections at most.
    const three = records([[{ ...connection(1), bytes: 0 }, new Uint8Array(0)], [{ ...connection(2), bytes: 0 }, two]]);
    expect(() => decodeSpecDeltas(three)).toThrow(DecodeError);
    expect(() => decodeSpecDeltas(three)).toThrow(/more than 2 connections/);
    expect(() => encodeSpecDeltas([])).toThrow(InvariantError);
  });

  it('refuses sequence numbers whose bytes would end past 2^53: no buffer holds such a stream position', () => {
    const at = (startSeq: number, clientAckSeq: number, n: number) => encodeSpecDeltas([{ startSeq, clientAckSeq, connection: connection(1), bytes: bytes(n, 3) }]);
    expect(decodeSpecDeltas(at(2 ** 53 - 11, 5, 10))[0]!.startSeq).toBe(2 ** 53 - 11);
    expect(() => decodeSpecDeltas(at(2 ** 53 - 5, 5, 10))).toThrow(DecodeError);
    // An ACK past 2^53 no encoder writes: its varint by hand (7 bits a byte, least significant first).
    const varint = (v: bigint) => {
      const out: number[] = [];
      for (; v >= 0x80n; v >>= 7n) out.push(Number(v & 0x7fn) | 0x80);
      return [...out, Number(v)];
    };
    const json = new TextEncoder().encode(JSON.stringify(connection(1)));
    const forged = Uint8Array.from([...varint(1n), ...varint(2n ** 54n), ...varint(BigInt(json.length)), ...json, ...bytes(10, 3)]);
    expect(() => decodeSpecDeltas(forged)).toThrow(DecodeError);
    expect(() => decodeSpecDeltas(forged)).toThrow(/past 2\^53/);
  });
});
