import { describe, expect, it } from 'vitest';
import { buildWorld, runWorld } from '../../sim/world.js';
import { summarize } from '../../sim/run.js';
import { config } from '../support/run.js';

const scenario = { link: { bandwidthBitsPerSec: 200e6, rttMs: 2 }, epochMs: 20, durationS: 4, faults: { crashPrimaryAtMs: 2000 } } as const;

describe('failover after a primary crash', () => {
  for (const mode of ['remus', 'spec', 'spec-racc'] as const) {
    for (const workload of [{ kind: 'bulk', totalBytes: 0 }, { kind: 'rr', requestBytes: 100, responseBytes: 20_000 }] as const) {
      it(`keeps the client's ${workload.kind} stream exactly-once and in order across the promotion (${mode})`, () => {
        const world = buildWorld(config({ ...scenario, mode, workload }));
        runWorld(world); // the output-commit oracle checks every packet, before and after
        const r = summarize(world);
        expect(r.failovers).toBe(1);
        expect(world.replication!.primaryHost).toBe('host-b');
        expect(r.streamVerified).toBe(true);
        // The connection survived: far more was delivered after the crash than before the last checkpoint.
        const timeline = world.client.stats.deliveredPerBin;
        const after = timeline.slice(300).reduce((a, b) => a + b, 0);
        expect(after).toBeGreaterThan(0);
        if (workload.kind === 'rr') expect(r.requestsCompleted).toBeGreaterThan(50);
      });
    }
  }

  it('takes at most miss-count × heartbeat interval + clock-skew bound + restore time + four lease-store round trips', () => {
    const c = config({ ...scenario, mode: 'spec' });
    const world = buildWorld(c);
    runWorld(world);
    const r = summarize(world);
    const f = c.failover;
    const restoreMs = f.restoreFixedMs + (c.guest.memoryBytes / f.restoreBytesPerSec) * 1000;
    // Detection ends miss-count intervals after the last heartbeat, which came before the crash. Taking the
    // lease costs one compare-and-set, or two when the primary renewed after we last read it; the promoted
    // host renews it itself before its services start (one or two more). The promotion waits out the old
    // lease, which ran from the last renewal, plus the clock-skew bound. Bus hops are microseconds.
    const boundMs = f.missCount * f.heartbeatIntervalMs + f.clockSkewMs + restoreMs + 4 * f.leaseStoreLatencyMs + 0.1;
    expect(r.failoverMs).not.toBeNull();
    expect(r.failoverMs!).toBeLessThanOrEqual(boundMs);
  });

  it('returns to at least 90% of the pre-failure goodput within one second', () => {
    const r = summarize((() => {
      const world = buildWorld(config({ ...scenario, mode: 'spec', link: { bandwidthBitsPerSec: 200e6, rttMs: 2 } }));
      runWorld(world);
      return world;
    })());
    expect(r.preFailureGoodputBitsPerSec!).toBeGreaterThan(100e6);
    expect(r.recoveryMs).not.toBeNull();
    expect(r.recoveryMs!).toBeLessThanOrEqual(1000);
  });
});
