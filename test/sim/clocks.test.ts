import { describe, expect, it } from 'vitest';
import type { ClockSkew } from '../../lib/config/failover-config.js';
import { InvariantViolationError } from '../../lib/errors.js';
import { summarize } from '../../sim/run.js';
import { buildWorld, primaryHostOf, runWorld } from '../../sim/world.js';
import type { Fault } from '../../sim/faults.js';
import { config, sim } from '../support/run.js';

/**
 * A small VM (a promotion restores in about 3 ms, so a promoted primary
 * releases soon after it is chosen) and a client with a small receive
 * window: the acker holds a backlog of committed output that it sends as
 * the window opens, ACK by ACK, so an old primary that has not stopped
 * shows on the wire.
 */
const scenario = {
  mode: 'spec',
  durationS: 2,
  epochMs: 10,
  link: { bandwidthBitsPerSec: 1e9, rttMs: 2 },
  guest: { memoryBytes: 4 * 1024 * 1024 },
  tcp: { sndBufBytes: 512 * 1024, rcvBufBytes: 16 * 1024 },
  buffers: { specBufferBytes: 1024 * 1024, heldBytesMax: 2 * 1024 * 1024 },
  checkpoint: { chunkBytes: 64 * 1024 },
} as const;

/**
 * The primary's heartbeats are lost while it keeps renewing its lease: the
 * failover service suspects a live primary, takes the lease over from it and
 * promotes the backup once the old lease has expired on its own clock.
 */
const MUTE: Fault = { kind: 'mute-heartbeats', role: 'primary', fromMs: 800, toMs: 1100 };

const runMuted = (clocks: ClockSkew[]) => {
  const world = buildWorld(config({ ...scenario, faults: { clocks } }));
  let violation: InvariantViolationError | null = null;
  try {
    runWorld(world, undefined, [MUTE]);
  } catch (err) {
    if (!(err instanceof InvariantViolationError)) throw err;
    violation = err;
  }
  return { world, violation };
};

describe('per-host clocks', () => {
  it('change nothing when every clock is exact', () => {
    const exact = ['host-a', 'host-b', 'host-c', 'failover', 'client'].map((node) => ({ node, offsetUs: 0, driftPpm: 0 }));
    expect(sim({ ...scenario, faults: { clocks: exact } })).toEqual(sim(scenario));
  });

  it('move a run off the exact one when a host clock drifts (every core on it reads that clock)', () => {
    expect(sim({ ...scenario, faults: { clocks: [{ node: 'host-a', offsetUs: 300, driftPpm: 40 }] } })).not.toEqual(sim(scenario));
  });

  it('keep a take-over from a live primary safe when they stay within the skew bound: the old primary stops before the new one starts', () => {
    const bound = config(scenario).failover.clockSkewMs * 1000;
    // The failover service's clock runs ahead of the primary's by the whole bound: the most it may.
    const { world, violation } = runMuted([{ node: 'failover', offsetUs: bound, driftPpm: 0 }]);
    expect(violation).toBeNull();
    expect(summarize(world).failovers).toBe(1);
    expect(primaryHostOf(world)?.name).toBe('host-b');
    expect(world.hosts.get('host-a')!.services.agent.state).toBe('deposed');
    expect(world.client.stats.streamVerified).toBe(true);
  });

  it('are the bound the design relies on: beyond it, the old primary still releases after its successor began, and the auditor says so', () => {
    // The failover service's clock 60 ms ahead: it thinks the old lease expired long before the old primary stopped.
    const { violation } = runMuted([{ node: 'failover', offsetUs: 60_000, driftPpm: 0 }]);
    expect(violation).not.toBeNull();
    expect(violation!.violation).toMatchObject({ invariant: 'one-primary', rule: 'older-term-after-newer', host: 'host-a' });
  });
});
