import { describe, expect, it } from 'vitest';
import type { Effect } from '../../../lib/runtime/types.js';
import { EmitTracer } from '../../../lib/tracing/endpoints.js';
import { HeldBytesTracer } from '../../../lib/tracing/held-bytes.js';
import { sampler } from '../../../lib/tracing/sampling.js';

const STRIDE = 1_000;
const s = sampler('vm1', STRIDE);
const sampledOffsets = (out: Effect[], name: string) => out.flatMap((e) => (e.kind === 'span' && e.span.name === name && e.span.trace.kind === 'segment' ? [e.span.trace.offset] : []));

/** A guest's TSO segment carries one sampled byte per stride: each is a traced packet of its own. */
describe('a TSO segment with several sampled bytes', () => {
  const first = s.sampledIn(1, 0, STRIDE)!;
  const expected = [first, first + STRIDE, first + 2 * STRIDE];

  it('gets an emit for each of them from the guest', () => {
    const out: Effect[] = [];
    new EmitTracer('vm1', s).sent(1, 1, 0, 3 * STRIDE, 7, null, 0, out);
    expect(sampledOffsets(out, 'emit')).toEqual(expected);
  });

  it('gets a spec-ack for each of them from the acker, and each is held and released on its own', () => {
    const t = new HeldBytesTracer('vm1', s, 1, null);
    const out: Effect[] = [];
    t.received(1, 0, 3 * STRIDE, true, 0, out);
    t.epochEnded(1, [3 * STRIDE], 10, out);
    t.committed(1, 20, out);
    // The wire side sends them in MSS-sized segments.
    for (let k = 0; k < 3; k++) t.sent(1, k * STRIDE, (k + 1) * STRIDE, null, 30, out);
    for (const name of ['spec-ack', 'buffer', 'hold', 'wire.release']) expect(sampledOffsets(out, name)).toEqual(expected);
  });
});
