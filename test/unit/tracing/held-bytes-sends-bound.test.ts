/**
 * The held-bytes tracer's memory of sends per sampled byte, at its bound
 * MAX_REMEMBERED_SENDS: the oldest goes, and a forgotten byte sent again is
 * taken for its first send in the term (a second replay, not a retransmit).
 */
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../../lib/runtime/types.js';
import { HeldBytesTracer, MAX_REMEMBERED_SENDS } from '../../../lib/tracing/held-bytes.js';
import type { SpanRecord } from '../../../lib/tracing/model.js';
import { sampler } from '../../../lib/tracing/sampling.js';

const STRIDE = 1_000;
const CONN = 1;
const spansOf = (out: Effect[]): SpanRecord[] => out.filter((e): e is Extract<Effect, { kind: 'span' }> => e.kind === 'span').map((e) => e.span);
const brief = (s: SpanRecord) => `${s.name}${s.instance ? `#${s.instance}` : ''}`;
const seg = (i: number): [number, number] => [i * STRIDE, (i + 1) * STRIDE];

describe('HeldBytesTracer at MAX_REMEMBERED_SENDS', () => {
  const s = sampler('vm1', STRIDE);

  /** First sends of `n` sampled bytes (segments 0 … n−1) in term 2: one held here and released, the rest replayed. */
  function sentOnce(n: number): HeldBytesTracer {
    const t = new HeldBytesTracer('vm1', s, 2, { name: 'replicate', term: 1, site: 'host-b' });
    const out: Effect[] = [];
    t.received(CONN, ...seg(0), false, 0, out);
    t.epochEnded(1, [STRIDE], 1, out);
    t.committed(1, 2, out);
    for (let i = 0; i < n; i++) t.sent(CONN, ...seg(i), null, 10 + i, out);
    const names = spansOf(out).map(brief);
    expect(names.filter((x) => x === 'wire.release')).toHaveLength(1);
    expect(names.filter((x) => x === 'replay')).toHaveLength(n - 1);
    return t;
  }

  function sendAgain(t: HeldBytesTracer, i: number): string[] {
    const out: Effect[] = [];
    t.sent(CONN, ...seg(i), 'rto', 1e9, out);
    return spansOf(out).map(brief);
  }

  it('still numbers a resend of the oldest of the last MAX_REMEMBERED_SENDS bytes', () => {
    const t = sentOnce(MAX_REMEMBERED_SENDS);
    expect(sendAgain(t, 0)).toEqual(['retransmit#1']);
    expect(sendAgain(t, 0)).toEqual(['retransmit#2']);
  });

  it('forgets the oldest past MAX_REMEMBERED_SENDS: sent again, it is a replay, not retransmit#1; the next oldest is still numbered', () => {
    const t = sentOnce(MAX_REMEMBERED_SENDS + 1);
    // Before the oldest comes back (its return would push out the next oldest).
    expect(sendAgain(t, 1)).toEqual(['retransmit#1']);
    expect(sendAgain(t, 0)).toEqual(['replay']);
    expect(sendAgain(t, MAX_REMEMBERED_SENDS)).toEqual(['retransmit#1']);
  });

  it('holds again a forgotten byte the guest resends (it is no longer known as sent)', () => {
    const t = sentOnce(MAX_REMEMBERED_SENDS + 1);
    const out: Effect[] = [];
    t.received(CONN, ...seg(1), true, 1e9, out); // still remembered as sent: nothing
    t.received(CONN, ...seg(0), true, 1e9, out); // forgotten: held afresh
    expect(spansOf(out).map((x) => `${x.name}:${x.trace.kind === 'segment' ? x.trace.offset : ''}`)).toEqual([`spec-ack:${s.sampledIn(CONN, ...seg(0))!}`]);
  });
});

describe('HeldBytesTracer, two connections sampling the same offsets', () => {
  const samePhase = { sampledIn: (_connId: number, start: number, end: number) => (start <= 500 && 500 < end ? 500 : null) };

  it("takes one connection's first send of a byte for a first send, whatever the other sent", () => {
    const t = new HeldBytesTracer('vm1', samePhase, 2, { name: 'replicate', term: 1, site: 'host-b' });
    const out: Effect[] = [];
    t.sent(1, 0, 1_000, null, 10, out);
    t.sent(2, 0, 1_000, null, 11, out);
    t.sent(2, 0, 1_000, 'rto', 12, out);
    expect(spansOf(out).map(brief)).toEqual(['replay', 'replay', 'retransmit#1']);
  });
});
