import { describe, expect, it } from 'vitest';
import type { Effect } from '../../../lib/runtime/types.js';
import { HeldBytesTracer } from '../../../lib/tracing/held-bytes.js';
import type { SpanRecord } from '../../../lib/tracing/model.js';
import { sampler } from '../../../lib/tracing/sampling.js';

const STRIDE = 1_000;
const spansOf = (out: Effect[]) => out.filter((e): e is Extract<Effect, { kind: 'span' }> => e.kind === 'span').map((e) => e.span);
const brief = (s: SpanRecord) => `${s.name}${s.instance ? `#${s.instance}` : ''}:${s.trace.kind === 'segment' ? s.trace.offset : ''}:${s.startUs}-${s.endUs}`;

describe('held bytes: buffer, hold, release', () => {
  const s = sampler('vm1', STRIDE);
  const first = s.sampledIn(1, 0, STRIDE)!;

  it('reports buffer until the epoch ends, hold until it commits (linked to the commit), release when it leaves, once each', () => {
    const t = new HeldBytesTracer('vm1', s, 2, { name: 'replicate', term: 1, site: 'host-b' });
    const out: Effect[] = [];
    t.received(1, 0, STRIDE, true, 100, out);
    t.received(1, 0, STRIDE, true, 110, out); // a copy on the bus: nothing new
    t.epochEnded(4, [STRIDE], 200, out);
    t.epochEnded(5, [STRIDE], 250, out); // its epoch ended already
    t.committed(3, 300, out); // an earlier epoch: not yet
    t.committed(4, 400, out);
    t.committed(4, 410, out);
    t.sent(1, 0, STRIDE, null, 500, out);
    expect(spansOf(out).map(brief)).toEqual([`spec-ack:${first}:100-100`, `buffer:${first}:100-200`, `hold:${first}:200-400`, `wire.release:${first}:500-500`]);
    const hold = spansOf(out).find((x) => x.name === 'hold')!;
    expect(hold.parent).toEqual({ name: 'buffer', term: 2 });
    expect(hold.links).toEqual([{ trace: { kind: 'epoch', vmId: 'vm1', epoch: 4 }, span: { name: 'commit', term: 2 } }]);
    expect(spansOf(out).every((x) => x.term === 2)).toBe(true);
  });

  it('numbers retransmissions with their cause, and calls a byte it never received a replay', () => {
    const t = new HeldBytesTracer('vm1', s, 2, { name: 'replicate', term: 1, site: 'host-b' });
    const out: Effect[] = [];
    t.received(1, 0, STRIDE, false, 0, out);
    t.sent(1, 0, STRIDE, null, 10, out);
    t.sent(1, 0, STRIDE, 'rto', 20, out);
    t.sent(1, 0, STRIDE, 'fast', 30, out);
    t.received(1, 0, STRIDE, false, 40, out); // the guest's retransmission held again (remus): shows when it leaves
    t.sent(1, STRIDE, 2 * STRIDE, null, 50, out); // a byte this service never got from its guest
    expect(spansOf(out).map((x) => `${x.name}${x.instance ? `#${x.instance}` : ''}${x.attributes?.reason ? `(${String(x.attributes.reason)})` : ''}`)).toEqual(['wire.release', 'retransmit#1(rto)', 'retransmit#2(fast)', 'replay(failover)']);
    const [release, rto, , replay] = spansOf(out);
    expect(rto!.parent).toEqual({ name: 'wire.release', term: 2 });
    expect(release!.parent).toEqual({ name: 'hold', term: 2 });
    // The step that brought it here: its host's backup replicated it in the term before.
    expect(replay!.parent).toEqual({ name: 'replicate', term: 1, site: 'host-b' });
  });

  it('numbers a replayed byte\'s later sends from its replay', () => {
    const t = new HeldBytesTracer('vm1', s, 2, { name: 'replicate', term: 1, site: 'host-b' });
    const out: Effect[] = [];
    t.sent(1, 0, STRIDE, 'rto', 10, out); // its first send in this term, though its TCP calls it a retransmission
    t.sent(1, 0, STRIDE, 'rto', 20, out);
    expect(spansOf(out).map((x) => `${x.name}${x.instance ? `#${x.instance}` : ''}`)).toEqual(['replay', 'retransmit#1']);
    expect(spansOf(out)[0]!.attributes).toMatchObject({ reason: 'failover', cause: 'rto' });
  });

  it('forgets the oldest byte beyond its bound, and counts it', () => {
    const t = new HeldBytesTracer('vm1', s, 1, null, 3);
    const out: Effect[] = [];
    for (let i = 0; i < 5; i++) t.received(1, i * STRIDE, (i + 1) * STRIDE, false, i, out);
    expect(t.forgotten).toBe(2);
    t.epochEnded(1, [5 * STRIDE], 100, out);
    expect(spansOf(out).filter((x) => x.name === 'buffer')).toHaveLength(3);
  });

  it('reports nothing when nothing is sampled', () => {
    const t = new HeldBytesTracer('vm1', { sampledIn: () => null }, 1, null);
    const out: Effect[] = [];
    t.received(1, 0, 10_000, true, 0, out);
    t.epochEnded(1, [10_000], 1, out);
    t.committed(1, 2, out);
    t.sent(1, 0, 10_000, null, 3, out);
    expect(out).toEqual([]);
  });
});
