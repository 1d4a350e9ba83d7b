import type { RunConfig } from '../../lib/config/run-config.js';
import type { LinkStats } from '../../lib/link/index.js';
import { histogramPercentile, mergeHistograms, type Histogram } from '../../lib/results/histogram.js';
import { recoveryFigures, type RecoveryFigures } from '../../lib/results/recovery.js';
import { scenarioFields, slowStartExitSegments, type RunResult } from '../../lib/results/run-result.js';
import type { RunTimeline } from '../../lib/results/timeline.js';
import type { ShellCounters } from '../../lib/runtime/nats/shell.js';
import { US_PER_MS } from '../../lib/units.js';
import { TIMELINE_BIN_US } from '../../services/client/options-from-config.js';
import type { ClientReport } from '../../services/client/main.js';
import { ServiceProcessError } from './child.js';
import type { ReportCollector, ReportEntry } from './reports.js';

/** A host killed during a run. */
export interface CrashRecord {
  readonly host: string;
  /** Wall clock, µs. */
  readonly atUs: number;
  /** After the client started, ms. */
  readonly sinceStartMs: number;
  readonly processes: number;
}

interface RunFacts {
  /** Wall clock when the client was ready, µs. */
  readonly startedUs: number;
  readonly crashes: readonly CrashRecord[];
  readonly wallMs: number;
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const sum = (entries: readonly ReportEntry[], key: string): number => entries.reduce((n, e) => n + num(e.stats[key]), 0);
const max = (entries: readonly ReportEntry[], key: string): number => entries.reduce((n, e) => Math.max(n, num(e.stats[key])), 0);
const shellOf = (e: ReportEntry): Partial<ShellCounters> => (e.stats.shell ?? {}) as Partial<ShellCounters>;
const linkOf = (e: ReportEntry, key: 'linkUp' | 'linkDown'): Partial<LinkStats> => (e.stats[key] ?? {}) as Partial<LinkStats>;
const ms = (us: number | null): number | null => (us === null ? null : us / US_PER_MS);

/**
 * One VM's result of a NATS run, with the simulator's keys, from what every
 * process of the run reported on the bus (a killed process counts with its
 * last report). Latency percentiles come from merged histograms (within 2%).
 */
export function natsRunResult(config: RunConfig, collector: ReportCollector, facts: RunFacts): RunResult {
  const vm = config.vmId;
  const clientEntry = collector.reports(vm, 'client')[0];
  if (clientEntry === undefined) throw new ServiceProcessError(`no report from the client of ${vm}: the run measured nothing`);
  const c = clientEntry.stats as unknown as ClientReport;
  const guests = collector.reports(vm, 'guest');
  const ackers = collector.reports(vm, 'acker');
  const checkpointers = collector.reports(vm, 'checkpointer');
  const netbuffers = collector.reports(vm, 'netbuffer');
  const failovers = collector.reports(vm, 'failover');
  const all = collector.reports(vm);
  const commitLatency = mergeHistograms(checkpointers.map((e) => (e.stats.commitLatencyUs ?? {}) as Histogram));
  const promotedAtUs = failovers.flatMap((e) => (e.stats.promotedAtUs ?? []) as number[]).sort((a, b) => a - b);
  const failoverDurationsUs = failovers.flatMap((e) => (e.stats.failoverDurationsUs ?? []) as number[]);
  const reprotectDurationsUs = failovers.flatMap((e) => (e.stats.reprotectDurationsUs ?? []) as number[]);
  const crash = facts.crashes[0];
  const failoverMs = crash !== undefined ? (promotedAtUs.find((t) => t >= crash.atUs) ?? null) : null;
  const recovery = crash === undefined ? null : clientRecovery(c, crash.atUs);
  // The senders that carry the stream: the guests' TCP and, in speculative modes, the ackers' toward the client.
  const senderSum = (key: string) => sum(guests, key) + sum(ackers, key);
  const busBytesByService = new Map<string, number>();
  for (const e of all) busBytesByService.set(e.report.service, (busBytesByService.get(e.report.service) ?? 0) + num(shellOf(e).bytesOut));
  const busBytes = [...busBytesByService.values()].reduce((a, b) => a + b, 0);
  const perGoodputByte = (bytes: number): number => (c.bytesDelivered > 0 ? Math.round((bytes / c.bytesDelivered) * 1000) / 1000 : 0);
  const busHop = mergeHistograms(all.map((e) => (e.stats.busHopUs ?? {}) as Histogram));
  const linkLate = mergeHistograms(all.map((e) => (e.stats.linkLateUs ?? {}) as Histogram));
  const cpu = runCpu(collector);
  return {
    ...scenarioFields(config, 'nats'),
    goodputBitsPerSec: c.goodputBitsPerSec,
    bulkGoodputBitsPerSec: config.workload.kind === 'rr' ? null : num(c.bulkGoodputBitsPerSec),
    bytesDelivered: c.bytesDelivered,
    streamVerified: c.connected && c.streamVerified && guests.every((e) => e.stats.requestStreamVerified !== false),
    retransmits: senderSum('retransmits'),
    fastRetransmits: senderSum('fastRetransmits'),
    timeouts: senderSum('timeouts'),
    lossProbes: senderSum('lossProbes'),
    slowStartExitSegments: slowStartExitSegments(senderSum('slowStartExits'), senderSum('slowStartExitCwndBytesTotal'), config.tcp.mssBytes),
    linkQueueDrops: num(c.linkDown.queueDrops) + [...ackers, ...guests].reduce((n, e) => n + num(linkOf(e, 'linkUp').queueDrops), 0),
    linkRandomLosses: num(c.linkDown.randomLosses) + [...ackers, ...guests].reduce((n, e) => n + num(linkOf(e, 'linkUp').randomLosses), 0),
    plugDrops: sum(netbuffers, 'segmentsRefused'),
    requestsCompleted: c.requestsCompleted,
    latencyMsP50: ms(histogramPercentile(c.latencyUs, 50)),
    latencyMsP99: ms(histogramPercentile(c.latencyUs, 99)),
    checkpoints: sum(checkpointers, 'checkpoints'),
    checkpointBytesTotal: sum(checkpointers, 'checkpointBytesTotal'),
    commitLatencyMsP50: ms(histogramPercentile(commitLatency, 50)),
    commitLatencyMsP99: ms(histogramPercentile(commitLatency, 99)),
    heldBytesMax: max(netbuffers, 'heldBytesMax'),
    specBufferBytesMax: max(ackers, 'specBufferBytesMax'),
    pauseMsTotal: sum(guests, 'pausedUsTotal') / US_PER_MS,
    earlyEpochEnds: sum(checkpointers, 'earlyEpochEnds'),
    interactiveEpochs: sum(checkpointers, 'interactiveEpochs'),
    failovers: sum(failovers, 'failovers'),
    failoverMs: crash !== undefined ? (failoverMs === null ? null : (failoverMs - crash.atUs) / US_PER_MS) : ms(failoverDurationsUs[0] ?? null),
    preFailureGoodputBitsPerSec: recovery?.preBitsPerSec ?? null,
    recoveryMs: recovery?.recoveryMs ?? null,
    reprotections: sum(failovers, 'reprotections'),
    reprotectMs: ms(reprotectDurationsUs[0] ?? null),
    simEvents: all.reduce((n, e) => n + num(shellOf(e).inputsHandled), 0),
    wallMs: facts.wallMs,
    busBytesPerGoodputByte: perGoodputByte(busBytes),
    busBytesPerGoodputByteByService: Object.fromEntries([...busBytesByService].map(([service, bytes]) => [service, perGoodputByte(bytes)])),
    busHopMsP50: ms(histogramPercentile(busHop, 50)),
    busHopMsP90: ms(histogramPercentile(busHop, 90)),
    linkLateMsP50: ms(histogramPercentile(linkLate, 50)),
    linkLateMsP99: ms(histogramPercentile(linkLate, 99)),
    ...cpu,
  };
}

/** The run's CPU figures: per service, and the protection's (every service but the client) per MB all its clients received. */
function runCpu(collector: ReportCollector): Pick<RunResult, 'cpuSecondsByService' | 'cpuMsPerGoodputMB'> {
  const byService = collector.cpu.secondsByService();
  const protectionS = Object.entries(byService).reduce((n, [service, s]) => (service === 'client' ? n : n + s), 0);
  const deliveredBytes = collector.vmIds.reduce((n, vm) => n + num(collector.reports(vm, 'client')[0]?.stats.bytesDelivered), 0);
  const rounded = Object.fromEntries(Object.entries(byService).map(([service, s]) => [service, Math.round(s * 1000) / 1000]));
  return { cpuSecondsByService: rounded, cpuMsPerGoodputMB: deliveredBytes > 0 ? Math.round((protectionS * 1e3) / (deliveredBytes / 1e6)) : null };
}

/**
 * A NATS run's timeline on the client's clock (0 when the client started):
 * its delivery, the crash, promotions and re-protections. Commit times stay
 * in the checkpointers (their reports carry a histogram, not every commit).
 */
export function natsRunTimeline(config: RunConfig, collector: ReportCollector, facts: RunFacts): RunTimeline {
  const c = collector.reports(config.vmId, 'client')[0]?.stats as unknown as ClientReport | undefined;
  if (c === undefined) throw new ServiceProcessError(`no report from the client of ${config.vmId}: the run measured nothing`);
  const failovers = collector.reports(config.vmId, 'failover');
  const onClientClock = (key: string) =>
    failovers
      .flatMap((e) => (e.stats[key] ?? []) as number[])
      .map((t) => t - c.clockOriginWallUs)
      .sort((a, b) => a - b);
  const crash = facts.crashes[0];
  return {
    durationUs: config.durationS * 1e6,
    binUs: TIMELINE_BIN_US,
    deliveredPerBin: c.deliveredPerBin ?? [],
    committedAtUs: [],
    crashAtUs: crash === undefined ? null : crash.atUs - c.clockOriginWallUs,
    promotedAtUs: onClientClock('promotedAtUs'),
    reprotectedAtUs: onClientClock('reprotectedAtUs'),
  };
}

/** Recovery as the simulator computes it, on the client's timeline (its clock origin is a wall time). */
function clientRecovery(c: ClientReport, crashAtWallUs: number): RecoveryFigures {
  return recoveryFigures(c.deliveredPerBin ?? [], TIMELINE_BIN_US, crashAtWallUs - c.clockOriginWallUs);
}
