/**
 * ByteEpochs: which epoch first emitted each byte of the guest's stream, and
 * the rollback a promotion makes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteEpochs, UNSEEN_EPOCH } from '../../../services/auditor/byte-epochs.js';

/** The guest's first data byte: the SYN takes sequence number 0 (lib/tcp/endpoint.ts, ISS = 0). */
const FIRST = 1;

describe('ByteEpochs', () => {
  it('knows no byte before any was emitted', () => {
    const b = new ByteEpochs();
    expect(b.epochOf(0)).toBeNull();
    expect(b.epochOf(FIRST)).toBeNull();
  });

  it('gives each byte the epoch of the range that emitted it, and none past the last', () => {
    const b = new ByteEpochs();
    b.emitted(FIRST, 101, 1);
    b.emitted(101, 251, 2);
    expect([FIRST, 100, 101, 250].map((s) => b.epochOf(s))).toEqual([1, 1, 2, 2]);
    expect(b.epochOf(251)).toBeNull();
    expect(b.epochOf(10_000)).toBeNull();
  });

  it('keeps a retransmitted byte’s first epoch; only bytes beyond everything seen are new', () => {
    const b = new ByteEpochs();
    b.emitted(FIRST, 101, 1);
    b.emitted(51, 151, 3); // [51, 101) again, [101, 151) new
    b.emitted(FIRST, 151, 4); // all again
    expect([50, 51, 100, 101, 150].map((s) => b.epochOf(s))).toEqual([1, 1, 1, 3, 3]);
    expect(b.epochOf(151)).toBeNull();
  });

  it('marks the bytes before a range that starts beyond everything seen as unseen (missed messages), and counts them', () => {
    const b = new ByteEpochs();
    b.emitted(FIRST, 101, 1);
    b.emitted(301, 401, 5); // [101, 301) was emitted in messages this observer never got
    expect([100, 101, 300, 301, 400].map((s) => b.epochOf(s))).toEqual([1, UNSEEN_EPOCH, UNSEEN_EPOCH, 5, 5]);
    expect(b.unseenBytes).toBe(200);
    // A retransmission of missed bytes, seen later, does not make them seen: their first epoch stays unknown.
    b.emitted(101, 201, 7);
    expect(b.epochOf(150)).toBe(UNSEEN_EPOCH);
    expect(b.unseenBytes).toBe(200);
    // Contiguous emission adds no hole.
    b.emitted(401, 501, 6);
    expect(b.unseenBytes).toBe(200);
    expect(b.epochOf(450)).toBe(6);
  });

  it("lowers the epoch of bytes the guest says it had sent by an epoch's end, and splits the range that straddles the end", () => {
    const b = new ByteEpochs();
    b.emitted(FIRST, 101, 1);
    b.emitted(101, 201, 5); // [101, 201) first seen in epoch 5: a retransmission of bytes lost on the bus
    b.emitted(201, 301, 6);
    b.sentBy(151, 3); // the guest had sent up to 151 by the end of epoch 3
    expect([100, 101, 150, 151, 200, 201].map((s) => b.epochOf(s))).toEqual([1, 3, 3, 5, 5, 6]);
    b.sentBy(301, 4);
    expect([100, 150, 151, 300].map((s) => b.epochOf(s))).toEqual([1, 3, 4, 4]);
    expect(b.entries).toBe(3); // [1, 101) e1, [101, 151) e3, [151, 301) e4
    // Never raises an epoch, and knows bytes beyond everything seen as of that epoch.
    b.sentBy(201, 9);
    expect(b.epochOf(200)).toBe(4);
    b.sentBy(401, 7);
    expect([300, 301, 400].map((s) => b.epochOf(s))).toEqual([4, 7, 7]);
    expect(b.epochOf(401)).toBeNull();
  });

  it('gives unseen bytes the epoch the guest says it had sent them by', () => {
    const b = new ByteEpochs();
    b.emitted(FIRST, 101, 1);
    b.emitted(301, 401, 5);
    b.sentBy(251, 2);
    expect([100, 101, 250, 251, 300, 301].map((s) => b.epochOf(s))).toEqual([1, 2, 2, UNSEEN_EPOCH, UNSEEN_EPOCH, 5]);
  });

  it('lowers a hole of unseen bytes that lies before a range of the reported epoch', () => {
    // Found by the model test below: [2, 3) was sent in a message the observer missed, [3, 4) came in the same epoch.
    const b = new ByteEpochs();
    b.emitted(FIRST, 2, 1);
    b.emitted(3, 4, 1);
    expect(b.epochOf(2)).toBe(UNSEEN_EPOCH);
    b.sentBy(4, 1);
    expect([1, 2, 3].map((s) => b.epochOf(s))).toEqual([1, 1, 1]);
    expect(b.entries).toBe(1);
  });

  it('agrees with a byte-by-byte model when the guest reports its ends, with sends lost to the observer', () => {
    type Op = { kind: 'emit'; from: number; length: number; lost: boolean } | { kind: 'report' } | { kind: 'next' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('emit' as const), from: fc.double({ min: 0, max: 1, noNaN: true }), length: fc.integer({ min: 0, max: 40 }), lost: fc.boolean() }),
      fc.record({ kind: fc.constant('report' as const) }),
      fc.record({ kind: fc.constant('next' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const b = new ByteEpochs();
        // The model: the earliest epoch known for each byte seen or reported (Infinity: a hole, unseen).
        const known = new Map<number, number>();
        let start: number | null = null;
        let maxSeen = 0;
        let sentEnd = FIRST; // the guest's stream: it sends in epochs 1, 2, …
        let epoch = 1;
        for (const o of ops) {
          if (o.kind === 'next') epoch++;
          else if (o.kind === 'emit') {
            // Anything from the start of the stream to one past what was sent: retransmissions and new bytes.
            const seq = FIRST + Math.floor(o.from * (sentEnd - FIRST + 1));
            const end = seq + o.length;
            sentEnd = Math.max(sentEnd, end);
            if (o.lost || end <= seq) continue;
            b.emitted(seq, end, epoch);
            if (start === null) start = maxSeen = seq;
            if (end <= maxSeen) continue;
            for (let x = maxSeen; x < end; x++) known.set(x, x < seq ? Infinity : epoch);
            maxSeen = end;
          } else {
            b.sentBy(sentEnd, epoch);
            if (start === null || sentEnd <= start) continue;
            for (let x = start; x < sentEnd; x++) known.set(x, Math.min(known.get(x) ?? Infinity, epoch));
            maxSeen = Math.max(maxSeen, sentEnd);
          }
          for (const [x, want] of known) expect(b.epochOf(x)).toBe(want === Infinity ? UNSEEN_EPOCH : want);
          if (start !== null) expect(b.epochOf(maxSeen)).toBeNull();
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('ignores an empty range', () => {
    const b = new ByteEpochs();
    b.emitted(FIRST, FIRST, 1);
    b.emitted(10, 5, 1);
    expect(b.epochOf(FIRST)).toBeNull();
  });

  it('rolls back from a byte inside a range: the part before stays, the rest is forgotten', () => {
    const b = new ByteEpochs();
    b.emitted(FIRST, 101, 1);
    b.emitted(101, 201, 2);
    b.emitted(201, 301, 3);
    b.rollbackTo(150);
    expect([100, 101, 149].map((s) => b.epochOf(s))).toEqual([1, 2, 2]);
    expect(b.epochOf(150)).toBeNull();
    expect(b.epochOf(250)).toBeNull();
    // The new guest emits from there under its own epochs.
    b.emitted(150, 220, 7);
    expect([149, 150, 219].map((s) => b.epochOf(s))).toEqual([2, 7, 7]);
    expect(b.epochOf(220)).toBeNull();
  });

  it('rolls back on a range boundary, and to the start of the stream', () => {
    const b = new ByteEpochs();
    b.emitted(FIRST, 101, 1);
    b.emitted(101, 201, 2);
    b.rollbackTo(101);
    expect(b.epochOf(100)).toBe(1);
    expect(b.epochOf(101)).toBeNull();
    b.rollbackTo(FIRST);
    expect(b.epochOf(FIRST)).toBeNull();
    b.emitted(FIRST, 31, 5);
    expect(b.epochOf(FIRST)).toBe(5);
    expect(b.epochOf(30)).toBe(5);
  });

  it('a rollback past everything emitted changes nothing', () => {
    const b = new ByteEpochs();
    b.emitted(FIRST, 101, 1);
    b.rollbackTo(500);
    expect(b.epochOf(100)).toBe(1);
    expect(b.epochOf(101)).toBeNull();
    // Nothing was forgotten, so [50, 101) is still old and [101, 121) new.
    b.emitted(50, 121, 2);
    expect([60, 110].map((s) => b.epochOf(s))).toEqual([1, 2]);
  });

  it('agrees with a byte-by-byte model for any contiguous emission with retransmissions and rollbacks', () => {
    type Op = { kind: 'emit'; from: number; length: number; epoch: number } | { kind: 'rollback'; to: number };
    // Positions are fractions of what has been emitted so far: a guest's stream never skips bytes.
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('emit' as const), from: fc.double({ min: 0, max: 1, noNaN: true }), length: fc.integer({ min: 0, max: 40 }), epoch: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ kind: fc.constant('rollback' as const), to: fc.double({ min: 0, max: 1.2, noNaN: true }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
        const b = new ByteEpochs();
        const model: number[] = []; // model[i]: the epoch of byte FIRST + i
        for (const o of ops) {
          const end = FIRST + model.length;
          if (o.kind === 'emit') {
            const seq = FIRST + Math.floor(o.from * model.length);
            b.emitted(seq, seq + o.length, o.epoch);
            while (FIRST + model.length < seq + o.length) model.push(o.epoch);
          } else {
            const to = FIRST + Math.floor(o.to * model.length);
            b.rollbackTo(to);
            if (to < end) model.length = to - FIRST;
          }
          for (let i = 0; i <= model.length + 2; i++) expect(b.epochOf(FIRST + i)).toBe(model[i] ?? null);
        }
      }),
    );
  });

  it('forgets bytes nothing can send again, in runs, and gives a forgotten byte an epoch no older than its own', () => {
    const b = new ByteEpochs();
    for (let epoch = 1; epoch <= 1000; epoch++) b.emitted(FIRST + (epoch - 1) * 10, FIRST + epoch * 10, epoch);
    expect(b.entries).toBe(1000);
    b.forgetBelow(FIRST + 100 * 10); // 100 entries: fewer than a run, kept
    expect(b.entries).toBe(1000);
    b.forgetBelow(FIRST + 600 * 10);
    expect(b.entries).toBe(400);
    expect(b.epochOf(FIRST)).toBe(600); // forgotten: the newest forgotten epoch stands for all
    expect(b.epochOf(FIRST + 600 * 10 - 1)).toBe(600);
    expect(b.epochOf(FIRST + 600 * 10)).toBe(601); // kept: exact
    expect(b.epochOf(FIRST + 1000 * 10)).toBeNull();
    b.rollbackTo(FIRST + 700 * 10 + 5); // a promotion still rolls back exactly
    expect(b.epochOf(FIRST + 700 * 10 + 4)).toBe(701);
    expect(b.epochOf(FIRST + 700 * 10 + 5)).toBeNull();
  });
});
