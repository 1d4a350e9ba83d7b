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
  const rep = world.replication;
  const wire = rep?.acker.wireStats ?? null;
  const ms = (us: number | null) => (us === null ? null : us / US_PER_MS);
  const p = (q: number) => ms(percentile(c.latenciesUs, q));
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
    // In speculative modes the acker, not the guest, recovers losses on the wire.
    retransmits: g.retransmits + (wire?.retransmits ?? 0),
    fastRetransmits: g.fastRetransmits + (wire?.fastRetransmits ?? 0),
    timeouts: g.timeouts + (wire?.timeouts ?? 0),
    linkQueueDrops: world.linkDown.stats.queueDrops + world.linkUp.stats.queueDrops,
    linkRandomLosses: world.linkDown.stats.randomLosses + world.linkUp.stats.randomLosses,
    requestsCompleted: c.requestsCompleted,
    latencyMsP50: p(50),
    latencyMsP99: p(99),
    checkpoints: rep?.primary.stats.checkpoints ?? 0,
    checkpointBytesTotal: rep?.primary.stats.checkpointBytesTotal ?? 0,
    commitLatencyMsP50: ms(percentile(rep?.primary.stats.commitLatenciesUs ?? [], 50)),
    commitLatencyMsP99: ms(percentile(rep?.primary.stats.commitLatenciesUs ?? [], 99)),
    heldBytesMax: rep?.netbuffer.stats.heldBytesMax ?? 0,
    specBufferBytesMax: rep?.acker.stats.specBufferBytesMax ?? 0,
    pauseMsTotal: world.guest.stats.pausedUsTotal / US_PER_MS,
    simEvents: world.runtime.eventsProcessed,
    wallMs: 0,
  };
}
