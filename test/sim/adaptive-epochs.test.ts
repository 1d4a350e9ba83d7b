import { describe, expect, it } from 'vitest';
import { summarize } from '../../sim/run.js';
import { buildWorld, primaryHostOf, runWorld } from '../../sim/world.js';
import { config, sim } from '../support/run.js';

/** The paper point with a 25 ms longest epoch. */
const point = { link: { bandwidthBitsPerSec: 1e9, rttMs: 1 }, epochMs: 25 } as const;
const adaptive = { kind: 'adaptive' } as const;
const rr = { kind: 'rr', requestBytes: 64, responseBytes: 16_384 } as const;

describe('adaptive epochs at 1 Gbit/s, 1 ms RTT, 25 ms at most', () => {
  for (const mode of ['remus', 'spec', 'spec-racc'] as const) {
    it(`cut request/response latency to p50 ≤ 3 ms and p99 ≤ 6 ms (${mode}; a full epoch with fixed ones)`, () => {
      const fixed = sim({ ...point, mode, workload: rr, durationS: 1 });
      const r = sim({ ...point, mode, workload: rr, durationS: 1, epochPolicy: adaptive });
      expect(fixed.latencyMsP50).toBeGreaterThan(25);
      expect(fixed.earlyEpochEnds).toBe(0);
      expect(r.earlyEpochEnds).toBeGreaterThan(r.checkpoints / 2);
      expect(r.latencyMsP50).toBeLessThanOrEqual(3);
      expect(r.latencyMsP99).toBeLessThanOrEqual(6);
      expect(r.streamVerified).toBe(true);
      expect(r.requestsCompleted).toBeGreaterThan(10 * fixed.requestsCompleted);
    });
  }

  it('keep at least 95% of the bulk goodput of fixed 25 ms epochs (spec)', () => {
    const fixed = sim({ ...point, mode: 'spec', durationS: 2 });
    const r = sim({ ...point, mode: 'spec', durationS: 2, epochPolicy: adaptive });
    expect(r.streamVerified).toBe(true);
    expect(r.goodputBitsPerSec).toBeGreaterThanOrEqual(0.95 * fixed.goodputBitsPerSec);
  });

  it('never end an epoch before the minimum: at most one checkpoint per minEpochMs', () => {
    const minEpochMs = 4;
    const world = buildWorld(config({ ...point, mode: 'spec', workload: rr, durationS: 1, epochPolicy: { kind: 'adaptive', minEpochMs } }));
    runWorld(world);
    const r = summarize(world);
    expect(r.checkpoints).toBeLessThanOrEqual(1000 / minEpochMs);
    expect(r.latencyMsP50).toBeGreaterThan(minEpochMs / 2); // the minimum is what a request now waits for
  });
});

describe('adaptive epochs keep output commit and failover', () => {
  const lossy = { link: { bandwidthBitsPerSec: 200e6, rttMs: 2, lossRate: 0.002 }, epochMs: 20, durationS: 1, epochPolicy: adaptive } as const;
  for (const mode of ['remus', 'spec', 'spec-racc'] as const) {
    for (const workload of [{ kind: 'bulk', totalBytes: 0 }, rr] as const) {
      it(`holds every segment until its epoch commits (${mode}, ${workload.kind}, 0.2% loss)`, () => {
        const world = buildWorld(config({ ...lossy, mode, workload }));
        runWorld(world); // the auditor throws on the first early byte
        expect(world.replication!.auditor.stats.segmentsChecked).toBeGreaterThan(100);
        expect(world.client.stats.streamVerified).toBe(true);
      });
    }
  }

  it('a primary crash mid-transfer: one failover, the stream exactly-once, the spare protecting again (spec, rr)', () => {
    const world = buildWorld(config({ link: { bandwidthBitsPerSec: 200e6, rttMs: 2 }, epochMs: 20, durationS: 4, mode: 'spec', workload: rr, epochPolicy: adaptive, faults: { crashPrimaryAtMs: 2000 } }));
    runWorld(world);
    const r = summarize(world);
    expect(r.failovers).toBe(1);
    expect(primaryHostOf(world)?.name).toBe('host-b');
    expect(r.streamVerified).toBe(true);
    expect(r.reprotections).toBe(1);
    expect(r.requestsCompleted).toBeGreaterThan(500);
  });
});
