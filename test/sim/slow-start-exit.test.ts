import { describe, expect, it } from 'vitest';
import { slowStartExitSegments } from '../../lib/results/run-result.js';
import type { SenderStats } from '../../lib/tcp/sender.js';
import { guestVmsOf, summarize } from '../../sim/run.js';
import { buildWorld, runWorld } from '../../sim/world.js';
import { config, sim } from '../support/run.js';

/** A short bulk run at 1 Gbit/s: CUBIC's HyStart ends slow start within a few round trips. */
const fast = { durationS: 1, link: { bandwidthBitsPerSec: 1e9, rttMs: 1 } } as const;

const total = (stats: readonly SenderStats[], key: 'slowStartExits' | 'slowStartExitCwndBytesTotal') => stats.reduce((n, s) => n + s[key], 0);

describe('slowStartExitSegments', () => {
  it('reports the window at which HyStart ended slow start, between its 16-segment floor and the window that fills the path', () => {
    const r = sim(fast);
    expect(r.slowStartExitSegments).not.toBeNull();
    // HyStart watches only from 16 segments; the path (1 ms of 1 Gbit/s and the queue) holds a few hundred.
    expect(r.slowStartExitSegments!).toBeGreaterThanOrEqual(16);
    expect(r.slowStartExitSegments!).toBeLessThan(2000);
  });

  it('is null when nothing ends slow start by itself: HyStart off, or NewReno (only losses end it)', () => {
    expect(sim({ ...fast, tcp: { hystart: false } }).slowStartExitSegments).toBeNull();
    expect(sim({ ...fast, tcp: { congestionControl: 'newreno' } }).slowStartExitSegments).toBeNull();
  });

  it('counts the acker\'s sender toward the client in speculative modes, where the guest talks to the acker alone', () => {
    const c = config({ ...fast, mode: 'spec', epochMs: 25 });
    const world = buildWorld(c);
    runWorld(world);
    const r = summarize(world);
    const guest = guestVmsOf(world).map((g) => g.tcp.stats);
    const wire = [...world.hosts.values()].flatMap((h) => h.services.acker.wireStats);
    // The acker's sender faces the client's path: HyStart ends its slow start there.
    expect(total(wire, 'slowStartExits')).toBeGreaterThan(0);
    // The mean over every exit of both senders.
    const both = [...guest, ...wire];
    expect(r.slowStartExitSegments).toBe(slowStartExitSegments(total(both, 'slowStartExits'), total(both, 'slowStartExitCwndBytesTotal'), c.tcp.mssBytes));
    // The guest's own sender (to the acker) ends its slow start too, at another window: the figure is not the guest's alone.
    const guestOnly = slowStartExitSegments(total(guest, 'slowStartExits'), total(guest, 'slowStartExitCwndBytesTotal'), c.tcp.mssBytes);
    expect(r.slowStartExitSegments).not.toBe(guestOnly);
  });
});
