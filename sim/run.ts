import type { RunConfig } from '../lib/config/run-config.js';
import { percentile, type RunResult } from '../lib/results/run-result.js';
import { US_PER_MS } from '../lib/units.js';
import { buildWorld, goodputBitsPerSec, runWorld, type WorldHooks } from './world.js';

/**
 * Runs one configuration on the simulator. `wallMs` is filled by the caller,
 * which owns the wall clock.
 */
export function simulate(config: RunConfig, hooks: WorldHooks = {}, onProgress?: (simUs: number) => void): RunResult {
  const world = buildWorld(config, hooks);
  runWorld(world, onProgress);
  const g = world.guest.tcp.stats;
  const c = world.client.stats;
  const lat = c.latenciesUs;
  const p = (q: number) => {
    const v = percentile(lat, q);
    return v === null ? null : v / US_PER_MS;
  };
  return {
    mode: config.mode,
    workload: config.workload.kind,
    runtime: 'sim',
    epochMs: config.mode === 'native' ? null : config.epochMs,
    rttMs: config.link.rttMs,
    bandwidthBitsPerSec: config.link.bandwidthBitsPerSec,
    lossRate: config.link.lossRate,
    durationS: config.durationS,
    seed: config.seed,
    congestionControl: config.tcp.congestionControl,
    goodputBitsPerSec: Math.round(goodputBitsPerSec(world)),
    bytesDelivered: c.bytesDelivered,
    streamVerified: c.streamVerified && world.guest.stats.requestStreamVerified,
    retransmits: g.retransmits,
    fastRetransmits: g.fastRetransmits,
    timeouts: g.timeouts,
    linkQueueDrops: world.linkDown.stats.queueDrops + world.linkUp.stats.queueDrops,
    linkRandomLosses: world.linkDown.stats.randomLosses + world.linkUp.stats.randomLosses,
    requestsCompleted: c.requestsCompleted,
    latencyMsP50: p(50),
    latencyMsP99: p(99),
    checkpoints: 0,
    checkpointBytesTotal: 0,
    commitLatencyMsP50: null,
    commitLatencyMsP99: null,
    heldBytesMax: 0,
    specBufferBytesMax: 0,
    pauseMsTotal: 0,
    simEvents: world.runtime.eventsProcessed,
    wallMs: 0,
  };
}
