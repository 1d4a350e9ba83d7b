/**
 * The guest's and the client's memories of sampled bytes, at their bound
 * MAX_REMEMBERED: the oldest goes. A forgotten byte sent again is a second
 * `emit`; a forgotten byte's delivery names the newest term seen.
 */
import { describe, expect, it } from 'vitest';
import type { Effect } from '../../../lib/runtime/types.js';
import { DeliveryTracer, EmitTracer, MAX_REMEMBERED } from '../../../lib/tracing/endpoints.js';
import type { SpanRecord } from '../../../lib/tracing/model.js';
import { sampler } from '../../../lib/tracing/sampling.js';

const STRIDE = 1_000;
const CONN = 1;
const spansOf = (out: Effect[]): SpanRecord[] => out.filter((e): e is Extract<Effect, { kind: 'span' }> => e.kind === 'span').map((e) => e.span);
const brief = (s: SpanRecord) => `${s.name}${s.instance ? `#${s.instance}` : ''}@${s.term}`;
/** Segment i carries exactly one sampled byte: [i·STRIDE, (i+1)·STRIDE). */
const seg = (i: number): [number, number] => [i * STRIDE, (i + 1) * STRIDE];

describe('EmitTracer at MAX_REMEMBERED', () => {
  const s = sampler('vm1', STRIDE);

  /** First sends of `n` sampled bytes (segments 0 … n−1), all in term 3. */
  function sentFirst(n: number): EmitTracer {
    const t = new EmitTracer('vm1', s);
    const out: Effect[] = [];
    for (let i = 0; i < n; i++) t.sent(3, CONN, ...seg(i), 1, null, i, out);
    expect(spansOf(out).every((x) => x.name === 'emit')).toBe(true);
    expect(out).toHaveLength(n);
    return t;
  }

  function resend(t: EmitTracer, i: number): string[] {
    const out: Effect[] = [];
    t.sent(3, CONN, ...seg(i), 1, 'rto', 1e9, out);
    return spansOf(out).map(brief);
  }

  it('still numbers a resend of the oldest of the last MAX_REMEMBERED bytes', () => {
    const t = sentFirst(MAX_REMEMBERED);
    expect(resend(t, 0)).toEqual(['guest.retransmit#1@3']);
  });

  it('forgets the oldest past MAX_REMEMBERED: sent again, it is a second emit; the next oldest is still a retransmission', () => {
    const t = sentFirst(MAX_REMEMBERED + 1);
    // Before the oldest comes back (its return would push out the next oldest).
    expect(resend(t, 1)).toEqual(['guest.retransmit#1@3']);
    const out: Effect[] = [];
    t.sent(3, CONN, ...seg(0), 1, 'rto', 1e9, out);
    expect(spansOf(out).map(brief)).toEqual(['emit@3']);
    expect(spansOf(out)[0]!.attributes).toMatchObject({ reason: 'rto' });
    expect(resend(t, MAX_REMEMBERED)).toEqual(['guest.retransmit#1@3']);
  });
});

describe('DeliveryTracer at MAX_REMEMBERED', () => {
  const s = sampler('vm1', STRIDE);

  /** Byte 0 arrives in term 1, byte 1 in term 2, bytes 2 … n−1 in term 3. */
  function arrived(n: number): DeliveryTracer {
    const t = new DeliveryTracer('vm1', s, CONN);
    t.arrived(1, ...seg(0));
    t.arrived(2, ...seg(1));
    for (let i = 2; i < n; i++) t.arrived(3, ...seg(i));
    return t;
  }

  function deliver(t: DeliveryTracer, i: number): SpanRecord {
    const out: Effect[] = [];
    t.delivered(...seg(i), 1e9, out);
    expect(out).toHaveLength(1);
    return spansOf(out)[0]!;
  }

  it('keeps the term of each of the last MAX_REMEMBERED bytes until its delivery', () => {
    const t = arrived(MAX_REMEMBERED);
    expect(deliver(t, 0)).toMatchObject({ name: 'deliver', term: 1, parent: { name: 'wire.release', term: 1 } });
    expect(deliver(t, 1)).toMatchObject({ term: 2, parent: { name: 'wire.release', term: 2 } });
  });

  it('forgets the oldest past MAX_REMEMBERED: its delivery names the newest term seen; the next oldest keeps its own', () => {
    const t = arrived(MAX_REMEMBERED + 1);
    expect(deliver(t, 0)).toMatchObject({ name: 'deliver', term: 3, parent: { name: 'wire.release', term: 3 } });
    expect(deliver(t, 1)).toMatchObject({ term: 2, parent: { name: 'wire.release', term: 2 } });
    expect(deliver(t, MAX_REMEMBERED)).toMatchObject({ term: 3 });
  });

  it('frees a byte\'s slot when it is delivered: in-order delivery never forgets a term', () => {
    const t = new DeliveryTracer('vm1', s, CONN);
    // Far more bytes than the bound in all, never more than a few undelivered.
    const terms: number[] = [];
    const out: Effect[] = [];
    for (let i = 0; i < 3 * MAX_REMEMBERED; i++) {
      t.arrived(i === 0 ? 1 : 2, ...seg(i));
      if (i >= 4) t.delivered(...seg(i - 4), i, out);
    }
    for (const x of spansOf(out)) terms.push(x.term);
    expect(terms).toHaveLength(3 * MAX_REMEMBERED - 4);
    expect(terms[0]).toBe(1);
    expect(terms.slice(1).every((x) => x === 2)).toBe(true);
  });
});

describe('sampled bytes of two connections', () => {
  /** Both connections sample the same offsets (their phases can be equal): the bytes are still not the same. */
  const samePhase = { sampledIn: (_connId: number, start: number, end: number) => (start <= 500 && 500 < end ? 500 : null) };

  it("are told apart by the guest: one connection's first send of a byte is no retransmission of the other's", () => {
    const t = new EmitTracer('vm1', samePhase);
    const out: Effect[] = [];
    t.sent(3, 1, 0, 1_000, 1, null, 0, out);
    t.sent(3, 2, 0, 1_000, 1, null, 1, out);
    t.sent(3, 2, 0, 1_000, 1, 'rto', 2, out);
    expect(spansOf(out).map((x) => `${brief(x)}/${x.trace.kind === 'segment' ? x.trace.connId : '?'}`)).toEqual(['emit@3/1', 'emit@3/2', 'guest.retransmit#1@3/2']);
  });
});
