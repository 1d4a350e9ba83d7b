import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { spanIdOf, traceIdOf } from '../../../lib/tracing/ids.js';
import { InvariantError } from '../../../lib/errors.js';
import { sampler, strideBytesFor } from '../../../lib/tracing/sampling.js';

describe('trace and span ids from the protocol\'s identity', () => {
  it('are W3C-sized lowercase hex, never all zero, and the same every time', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), fc.integer({ min: 1, max: 9 }), (offset, connId) => {
        const key = { kind: 'segment' as const, vmId: 'vm1', connId, offset };
        const t = traceIdOf(key);
        expect(t).toMatch(/^[0-9a-f]{32}$/);
        expect(t).not.toBe('0'.repeat(32));
        expect(spanIdOf(key, { name: 'hold', term: 1 })).toMatch(/^[0-9a-f]{16}$/);
        expect(traceIdOf({ ...key })).toBe(t);
      }),
      { numRuns: 200 },
    );
  });

  it('tell apart traces, steps and instances', () => {
    const ids = new Set<string>();
    for (let offset = 0; offset < 2_000; offset++) ids.add(traceIdOf({ kind: 'segment', vmId: 'vm1', connId: 1, offset }));
    for (let epoch = 0; epoch < 2_000; epoch++) ids.add(traceIdOf({ kind: 'epoch', vmId: 'vm1', epoch }));
    expect(ids.size).toBe(4_000);
    const key = { kind: 'epoch' as const, vmId: 'vm1', epoch: 7 };
    const spans = new Set(['epoch', 'pause', 'copy', 'transfer', 'apply', 'commit'].map((n) => spanIdOf(key, { name: n as 'epoch', term: 1 })));
    expect(spans.size).toBe(6);
    expect(spanIdOf(key, { name: 'commit', term: 1, instance: 1 })).not.toBe(spanIdOf(key, { name: 'commit', term: 1 }));
  });

  it('tell apart one step in different terms and on different hosts, and make a replay its term\'s release', () => {
    const key = { kind: 'segment' as const, vmId: 'vm1', connId: 1, offset: 99 };
    const ids = [spanIdOf(key, { name: 'emit', term: 1 }), spanIdOf(key, { name: 'emit', term: 2 }), spanIdOf(key, { name: 'replicate', term: 2, site: 'host-b' }), spanIdOf(key, { name: 'replicate', term: 2, site: 'host-c' })];
    expect(new Set(ids).size).toBe(4);
    expect(spanIdOf(key, { name: 'replay', term: 3 })).toBe(spanIdOf(key, { name: 'wire.release', term: 3 }));
    expect(spanIdOf(key, { name: 'replay', term: 3 })).not.toBe(spanIdOf(key, { name: 'wire.release', term: 2 }));
  });
});

describe('sampling by stream offset', () => {
  it('picks one byte per stride, the same whichever way the stream is cut into segments', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 3_000 }), { minLength: 1, maxLength: 200 }), fc.array(fc.integer({ min: 1, max: 9_000 }), { minLength: 1, maxLength: 100 }), (cutsA, cutsB) => {
        const s = sampler('vm1', strideBytesFor(0.1, 1448));
        const picked = (cuts: number[]) => {
          const out: number[] = [];
          let at = 0;
          for (const len of cuts) {
            // Every sampled byte of [at, at + len): a segment carries at most one when len ≤ stride.
            let from = at;
            for (let picks = 0; ; picks++) {
              // At most one a byte, and each past the last: more than len picks is a runaway.
              if (picks > len) throw new Error('runaway: sampledIn did not move on');
              const o = s.sampledIn(1, from, at + len);
              if (o === null) break;
              out.push(o);
              from = o + 1;
            }
            at += len;
          }
          return { out, end: at };
        };
        const a = picked(cutsA);
        const b = picked(cutsB);
        const end = Math.min(a.end, b.end);
        expect(a.out.filter((o) => o < end)).toEqual(b.out.filter((o) => o < end));
        for (let i = 1; i < a.out.length; i++) expect(a.out[i]! - a.out[i - 1]!).toBe(strideBytesFor(0.1, 1448));
      }),
      { numRuns: 100 },
    );
  });

  it('samples about `rate` of full-sized segments', () => {
    const s = sampler('vm1', strideBytesFor(0.01, 1448));
    let sampled = 0;
    const segments = 100_000;
    for (let i = 0; i < segments; i++) if (s.sampledIn(1, i * 1448, (i + 1) * 1448) !== null) sampled++;
    expect(sampled / segments).toBeCloseTo(0.01, 3);
  });

  it('refuses a rate outside (0, 1]', () => {
    expect(() => strideBytesFor(0, 1448)).toThrow(InvariantError);
    expect(() => strideBytesFor(1.5, 1448)).toThrow(InvariantError);
    expect(strideBytesFor(1, 1448)).toBe(1448);
  });
});
