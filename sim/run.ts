import { foldCounters } from '../lib/results/role-history.js';
import type { RunConfig } from '../lib/config/run-config.js';
import { recoveryFigures } from '../lib/results/recovery.js';
import { latencyMs, percentile, scenarioFields, slowStartExitSegments, type RunResult } from '../lib/results/run-result.js';
import type { SenderStats } from '../lib/tcp/sender.js';
import type { RunTimeline } from '../lib/results/timeline.js';
import { msToUs, US_PER_MS, US_PER_S } from '../lib/units.js';
import { CheckpointerCore } from '../services/checkpointer/core.js';
import type { PrimaryStats } from '../services/checkpointer/primary.js';
import { GuestCore, type VmTotals } from '../services/guest/core.js';
import { AckerCore } from '../services/acker/core.js';
import { NetbufferCore } from '../services/netbuffer/core.js';
import { TIMELINE_BIN_US } from '../services/client/options-from-config.js';
import type { FailoverStats } from '../services/failover/core.js';
import { buildWorld, goodputBitsPerSec, runWorld, type World, type WorldHooks } from './world.js';

const sum = (values: readonly number[]): number => values.reduce((a, b) => a + b, 0);

/**
 * Runs one configuration on the simulator. `wallMs` is filled by the caller,
 * which owns the wall clock.
 */
export function simulate(config: RunConfig, hooks: WorldHooks = {}, onProgress?: (simUs: number) => void): RunResult {
  const world = buildWorld(config, hooks);
  runWorld(world, onProgress);
  return summarize(world);
}

/** `simulate`, and the run's timeline for a picture of it. */
export function simulateWithTimeline(config: RunConfig, hooks: WorldHooks = {}, onProgress?: (simUs: number) => void): { result: RunResult; timeline: RunTimeline } {
  const world = buildWorld(config, hooks);
  runWorld(world, onProgress);
  return { result: summarize(world), timeline: timelineOf(world) };
}

/** When the client got its bytes, and when epochs committed, the primary crashed, a backup was promoted and the VM re-protected. */
export function timelineOf(world: World): RunTimeline {
  const f = failoverStatsOf(world);
  const crashAtMs = world.config.faults.crashPrimaryAtMs;
  return {
    durationUs: world.config.durationS * US_PER_S,
    binUs: TIMELINE_BIN_US,
    deliveredPerBin: world.client.stats.deliveredPerBin,
    committedAtUs: checkpointersOf(world)
      .flatMap((p) => p.stats.committedAtUs)
      .sort((a, b) => a - b),
    crashAtUs: crashAtMs === null ? null : msToUs(crashAtMs),
    promotedAtUs: f?.promotedAtUs ?? [],
    reprotectedAtUs: f?.reprotectedAtUs ?? [],
  };
}

/** Every guest VM that ran, on any host and in any role (a promotion runs the backup's image as a new one). */
export function guestVmsOf(world: World): readonly VmTotals[] {
  if (world.nativeGuest !== null) return world.nativeGuest.history.vms;
  return [...world.hosts.values()].flatMap((h) => [...h.retired.filter((c) => c instanceof GuestCore), h.services.guest].flatMap((g) => g.history.vms));
}

/** The numbers of every primary checkpointer that ran (one per host and term). */
export function checkpointersOf(world: World): { readonly stats: PrimaryStats }[] {
  return [...world.hosts.values()].flatMap((h) => [...h.retired.filter((c) => c instanceof CheckpointerCore), h.services.checkpointer].flatMap((c) => c.history));
}

/** The failover service's counters over every instance that ran (a restarted one starts from zero). */
export function failoverStatsOf(world: World): FailoverStats | null {
  const all = world.replication?.failovers ?? [];
  if (all.length === 0) return null;
  return all.slice(1).reduce((total, f) => foldCounters(total, f.stats), structuredClone(all[0]!.stats));
}

/** The result of a finished run; totals span every guest and primary that ran (a failover replaces them). */
export function summarize(world: World): RunResult {
  const { config } = world;
  const c = world.client.stats;
  const vms = guestVmsOf(world);
  const hosts = [...world.hosts.values()];
  const checkpointers = checkpointersOf(world);
  const guestTcp = vms.map((g) => g.tcp.stats);
  const ackers = hosts.flatMap((h) => [...h.retired.filter((c) => c instanceof AckerCore), h.services.acker]);
  const netbuffers = hosts.flatMap((h) => [...h.retired.filter((c) => c instanceof NetbufferCore), h.services.netbuffer]);
  const wire: SenderStats[] = ackers.flatMap((a) => a.wireStats);
  // The senders that carry the stream: in speculative modes the acker, not the guest, recovers losses on the wire.
  const senders = [...guestTcp, ...wire];
  const senderSum = (key: keyof SenderStats) => sum(senders.map((t) => t[key]));
  const commitLatenciesUs = checkpointers.flatMap((p) => p.stats.commitLatenciesUs);
  const ms = (us: number | null) => (us === null ? null : us / US_PER_MS);
  const f = failoverStatsOf(world);
  return {
    ...scenarioFields(config, 'sim'),
    goodputBitsPerSec: Math.round(goodputBitsPerSec(world)),
    bulkGoodputBitsPerSec: config.workload.kind === 'rr' ? null : Math.round(goodputBitsPerSec(world, true)),
    bytesDelivered: c.bytesDelivered,
    streamVerified: c.streamVerified && vms.every((g) => g.stats.requestStreamVerified),
    retransmits: senderSum('retransmits'),
    fastRetransmits: senderSum('fastRetransmits'),
    timeouts: senderSum('timeouts'),
    lossProbes: senderSum('lossProbes'),
    slowStartExitSegments: slowStartExitSegments(senderSum('slowStartExits'), senderSum('slowStartExitCwndBytesTotal'), config.tcp.mssBytes),
    linkQueueDrops: world.linkDown.stats.queueDrops + world.linkUp.stats.queueDrops,
    linkRandomLosses: world.linkDown.stats.randomLosses + world.linkUp.stats.randomLosses,
    plugDrops: sum(netbuffers.map((n) => n.stats.segmentsRefused)),
    requestsCompleted: c.requestsCompleted,
    latencyMsP50: latencyMs(c.latenciesUs, 50),
    latencyMsP99: latencyMs(c.latenciesUs, 99),
    checkpoints: sum(checkpointers.map((p) => p.stats.checkpoints)),
    checkpointBytesTotal: sum(checkpointers.map((p) => p.stats.checkpointBytesTotal)),
    commitLatencyMsP50: ms(percentile(commitLatenciesUs, 50)),
    commitLatencyMsP99: ms(percentile(commitLatenciesUs, 99)),
    heldBytesMax: Math.max(0, ...netbuffers.map((n) => n.stats.heldBytesMax)),
    specBufferBytesMax: Math.max(0, ...ackers.map((a) => a.stats.specBufferBytesMax)),
    pauseMsTotal: sum(vms.map((g) => g.stats.pausedUsTotal)) / US_PER_MS,
    earlyEpochEnds: sum(checkpointers.map((p) => p.stats.earlyEpochEnds)),
    interactiveEpochs: sum(checkpointers.map((p) => p.stats.interactiveEpochs)),
    ...failoverFigures(world, f),
    reprotections: f?.reprotections ?? 0,
    reprotectMs: ms(f?.reprotectDurationsUs[0] ?? null),
    simEvents: world.runtime.eventsProcessed,
    wallMs: 0,
  };
}

/** Backups promoted during the run, as the agents' assignments showed (a restarted failover service may not have counted one it finished). */
export function promotionsOf(world: World): number {
  return world.replication?.auditor.stats.promotionsSeen ?? 0;
}

/** Failover time, and how fast delivery came back compared with the second before the crash. */
function failoverFigures(world: World, f: FailoverStats | null): Pick<RunResult, 'failovers' | 'failoverMs' | 'preFailureGoodputBitsPerSec' | 'recoveryMs'> {
  const crashAtMs = world.config.faults.crashPrimaryAtMs;
  if (crashAtMs === null || f === null) {
    const failoverMs = f && f.failoverDurationsUs.length > 0 ? f.failoverDurationsUs[0]! / US_PER_MS : null;
    return { failovers: promotionsOf(world), failoverMs, preFailureGoodputBitsPerSec: null, recoveryMs: null };
  }
  // With a scheduled crash, failover time runs from the crash to the promoted primary's first heartbeat.
  // In µs first: whole numbers subtract exactly, where ms fractions left 50.827999999999975 for 50.828.
  const failoverMs = f.promotedAtUs.length > 0 ? (f.promotedAtUs[0]! - msToUs(crashAtMs)) / US_PER_MS : null;
  const { preBitsPerSec, recoveryMs } = recoveryFigures(world.client.stats.deliveredPerBin, TIMELINE_BIN_US, msToUs(crashAtMs));
  return { failovers: promotionsOf(world), failoverMs, preFailureGoodputBitsPerSec: preBitsPerSec, recoveryMs };
}
