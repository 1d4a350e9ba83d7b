import { describe, expect, it } from 'vitest';
import { summarize } from '../../sim/run.js';
import { buildWorld, primaryHostOf, runWorld } from '../../sim/world.js';
import { config, sim } from '../support/run.js';

/** A bulk flow on connection 1 and a request/response flow on connection 2 of the same guest. */
const mixed = { kind: 'mixed', totalBytes: 0, requestBytes: 64, responseBytes: 16_384 } as const;
const link = { bandwidthBitsPerSec: 200e6, rttMs: 2 } as const;

describe('a mixed workload: bulk and request/response on two connections of one guest', () => {
  for (const mode of ['native', 'remus', 'spec', 'spec-racc'] as const) {
    it(`delivers both streams verified, each on its own connection (${mode})`, () => {
      const world = buildWorld(config({ link, epochMs: 20, durationS: 1, mode, workload: mixed }));
      runWorld(world); // the auditor throws on the first early byte of either connection
      const c = world.client;
      expect(c.connections.map((k) => k.workload.kind)).toEqual(['bulk', 'rr']);
      expect(c.connections.every((k) => k.verifier.ok && k.verifier.bytesVerified > 0)).toBe(true);
      const r = summarize(world);
      expect(r.streamVerified).toBe(true);
      expect(r.workload).toBe('mixed');
      expect(r.requestsCompleted).toBeGreaterThan(5);
      // The bulk flow's bytes are the bulk goodput; the responses add to the total only.
      expect(c.stats.bulkBytesDelivered).toBe(c.connections[0]!.verifier.bytesVerified);
      expect(c.stats.bytesDelivered).toBe(c.connections[0]!.verifier.bytesVerified + c.connections[1]!.verifier.bytesVerified);
      expect(r.bulkGoodputBitsPerSec).toBeGreaterThan(0.5 * r.goodputBitsPerSec);
      expect(r.bulkGoodputBitsPerSec).toBeLessThan(r.goodputBitsPerSec);
      if (mode !== 'native') expect(world.replication!.auditor.stats.segmentsChecked).toBeGreaterThan(100);
    });
  }

  it('holds every byte of both connections until its epoch commits under loss (spec, adaptive)', () => {
    const world = buildWorld(config({ link: { ...link, lossRate: 0.002 }, epochMs: 20, durationS: 1, mode: 'spec', workload: mixed, epochPolicy: { kind: 'adaptive' } }));
    runWorld(world);
    expect(world.client.connections.every((k) => k.verifier.ok)).toBe(true);
    expect(summarize(world).earlyEpochEnds).toBeGreaterThan(0);
  });

  it('a primary crash mid-transfer: one failover, both streams exactly-once, both flows going on, the spare protecting again (spec)', () => {
    const world = buildWorld(config({ link, epochMs: 20, durationS: 4, mode: 'spec', workload: mixed, faults: { crashPrimaryAtMs: 2000 } }));
    world.runtime.runUntil(2000 * 1000);
    const requestsAtCrash = world.client.stats.requestsCompleted;
    const bulkAtCrash = world.client.stats.bulkBytesDelivered;
    runWorld(world);
    const r = summarize(world);
    expect(r.failovers).toBe(1);
    expect(primaryHostOf(world)?.name).toBe('host-b');
    expect(r.streamVerified).toBe(true);
    expect(r.reprotections).toBe(1);
    expect(world.client.stats.requestsCompleted).toBeGreaterThan(requestsAtCrash + 10);
    expect(world.client.stats.bulkBytesDelivered).toBeGreaterThan(bulkAtCrash + 10e6);
  });

  it('adaptive epochs (25 ms at most) beat fixed 5 and 25 ms epochs in both the requests\' p99 and the bulk goodput, thanks to the interactive cap (spec, 1 Gbit/s)', () => {
    // Requests come at random, 5 ms apart on average (exponential think times).
    const point = { link: { bandwidthBitsPerSec: 1e9, rttMs: 1 }, epochMs: 25, durationS: 2, mode: 'spec', workload: { ...mixed, thinkTimeUs: 5000 } } as const;
    const adaptive = sim({ ...point, epochPolicy: { kind: 'adaptive' } });
    expect(adaptive.streamVerified).toBe(true);
    expect(adaptive.earlyEpochEnds + adaptive.interactiveEpochs).toBeGreaterThan(adaptive.checkpoints / 2);
    for (const epochMs of [5, 25]) {
      const fixed = sim({ ...point, epochMs });
      expect(adaptive.latencyMsP99!, `p99 against fixed ${epochMs} ms`).toBeLessThan(fixed.latencyMsP99!);
      expect(adaptive.bulkGoodputBitsPerSec!, `bulk goodput against fixed ${epochMs} ms`).toBeGreaterThanOrEqual(fixed.bulkGoodputBitsPerSec!);
    }
    // Without the cap, the epoch a response lands in carries more of the bulk flow, and the response waits for its transfer.
    const uncapped = sim({ ...point, epochPolicy: { kind: 'adaptive', interactiveMs: 0 } });
    expect(uncapped.interactiveEpochs).toBe(0);
    expect(adaptive.commitLatencyMsP50!).toBeLessThan(0.5 * uncapped.commitLatencyMsP50!);
    expect(adaptive.latencyMsP99!).toBeLessThan(uncapped.latencyMsP99!);
  });

  it('replays bit for bit', () => {
    const input = { link, epochMs: 20, durationS: 1, mode: 'spec', workload: mixed, epochPolicy: { kind: 'adaptive' } } as const;
    const { wallMs: _a, ...a } = sim(input);
    const { wallMs: _b, ...b } = sim(input);
    expect(a).toEqual(b);
  });
});
