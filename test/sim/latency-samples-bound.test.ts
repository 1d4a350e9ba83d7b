/**
 * `maxLatencySamples` bounds the latencies kept for percentiles (commit
 * latencies in the checkpointer, request latencies in the client): at the
 * bound later ones are counted, not kept, and the histogram still holds
 * every commit.
 */
import { describe, expect, it } from 'vitest';
import { checkpointersOf } from '../../sim/run.js';
import { buildWorld, runWorld } from '../../sim/world.js';
import { config } from '../support/run.js';

const BOUND = 5;
const mixed = { kind: 'mixed', totalBytes: 0, requestBytes: 64, responseBytes: 16_384 } as const;

describe('latency samples at their bound', () => {
  it('keeps the first maxLatencySamples, counts the rest', () => {
    const world = buildWorld(config({ link: { bandwidthBitsPerSec: 200e6, rttMs: 2 }, epochMs: 20, durationS: 1, mode: 'spec', workload: mixed, maxLatencySamples: BOUND }));
    runWorld(world);
    const [primary] = checkpointersOf(world);
    const s = primary!.stats;
    expect(s.checkpoints).toBeGreaterThan(4 * BOUND);
    expect(s.commitLatenciesUs).toHaveLength(BOUND);
    expect(s.committedAtUs).toHaveLength(BOUND);
    expect(Object.values(s.commitLatencyHistogram).reduce((a, b) => a + b, 0)).toBe(s.checkpoints + s.localCommits);
    const c = world.client.stats;
    expect(c.requestsCompleted).toBeGreaterThan(BOUND);
    expect(c.latenciesUs).toHaveLength(BOUND);
  });
});
