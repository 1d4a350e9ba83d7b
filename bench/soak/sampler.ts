import type { ReportCollector } from '../../cli/launcher/reports.js';
import { reportedCpu, type ProcessReading } from '../../lib/runtime/nats/process-stats.js';

/** One second of the soak, across every VM and process. */
export interface SoakSample {
  readonly tS: number;
  /** Summed over the VMs, from the clients' delivered bytes since the previous sample. */
  readonly goodputMbps: number;
  /** VMs whose failover service says `protected`. */
  readonly protectedVms: number;
  /** Resident memory of the service processes reporting now (summed, and the largest), MiB. */
  readonly rssMiBTotal: number;
  readonly rssMiBMax: number;
  /** The worst event-loop lag of any process over its last report interval, ms. */
  readonly lagMsMax: number;
  readonly lagMsP99Max: number;
}

/** A process's memory over its life: (tS, MiB) points, one per sample in which it reported. */
export type RssSeries = Map<string, [number, number][]>;

const MIB = 1024 * 1024;
const BITS_PER_BYTE = 8;

/**
 * Reads the services' newest reports once a second. Every process reports
 * the same process reading for each VM, so the first VM's reports name every
 * process; a report older than `staleAfterMs` is a process that is gone.
 */
export class SoakSampler {
  readonly samples: SoakSample[] = [];
  readonly rss: RssSeries = new Map();
  /** The same for the JS heap in use: RSS that grows while this does not is buffers, guest memory or the allocator. */
  readonly heap: RssSeries = new Map();
  #lastDeliveredBytes = 0;
  #lastTS = 0;

  constructor(
    readonly collector: ReportCollector,
    readonly vmIds: readonly string[],
    readonly staleAfterMs: number,
  ) {}

  sample(tS: number, wallNowUs: number): SoakSample {
    const delivered = this.vmIds.reduce((n, vm) => n + Number(this.collector.reports(vm, 'client')[0]?.stats.bytesDelivered ?? 0), 0);
    const intervalS = tS - this.#lastTS;
    const goodputMbps = intervalS > 0 ? ((delivered - this.#lastDeliveredBytes) * BITS_PER_BYTE) / intervalS / 1e6 : 0;
    this.#lastDeliveredBytes = delivered;
    this.#lastTS = tS;
    const live = this.collector.reports(this.vmIds[0]!).filter((e) => e.report.service !== 'client' && wallNowUs - e.report.atUs <= this.staleAfterMs * 1000 && !e.report.final);
    // One entry per OS process: the services of one process (--layout host) each carry its reading.
    const byProcess = new Map<string, ProcessReading>();
    for (const e of live) {
      const which = reportedCpu(e.stats, e.report);
      if (which === null) continue;
      const key = `${e.report.host || '-'} ${which.label} ${which.processKey}`;
      if (!byProcess.has(key)) byProcess.set(key, e.stats.process as ProcessReading);
    }
    const readings = [...byProcess].map(([key, reading]) => ({ key, reading }));
    for (const { key, reading } of readings) {
      const series = this.rss.get(key) ?? [];
      series.push([tS, reading!.rssBytes / MIB]);
      this.rss.set(key, series);
      const heap = this.heap.get(key) ?? [];
      heap.push([tS, reading!.heapUsedBytes / MIB]);
      this.heap.set(key, heap);
    }
    const mib = readings.map((r) => r.reading!.rssBytes / MIB);
    const sample: SoakSample = {
      tS,
      goodputMbps,
      protectedVms: this.vmIds.filter((vm) => this.collector.view(vm)?.state === 'protected').length,
      rssMiBTotal: mib.reduce((a, b) => a + b, 0),
      rssMiBMax: Math.max(0, ...mib),
      lagMsMax: Math.max(0, ...readings.map((r) => r.reading!.eventLoopLagMsMax)),
      lagMsP99Max: Math.max(0, ...readings.map((r) => r.reading!.eventLoopLagMsP99)),
    };
    this.samples.push(sample);
    return sample;
  }
}

/**
 * Memory growth of each process from `fromS` on, MiB per minute: the
 * least-squares slope of its RSS there. Only processes with `minPoints`
 * samples there count (a host restarted within the window has too few: its
 * memory is still filling). Roles move between hosts at every kill, and a
 * process that takes a role allocates its memory (guest memory, images,
 * buffers): the soak measures in a quiet tail after the last fault.
 */
export function rssSlopesMiBPerMin(rss: RssSeries, fromS: number, minPoints: number): Map<string, number> {
  const slopes = new Map<string, number>();
  for (const [key, points] of rss) {
    const window = points.filter(([t]) => t >= fromS);
    if (window.length < minPoints) continue;
    slopes.set(key, leastSquaresSlope(window) * 60);
  }
  return slopes;
}

/**
 * Memory growth of each process from `fromS` on, judged on its troughs, MiB
 * per minute: the window is cut into stretches of `stretchS`, each gives its
 * lowest reading (memory right after a major collection), and the slope is
 * the least-squares line through those. A process's RSS is a sawtooth (it
 * climbs by 30 MiB and falls back every 100 s or so); a line through a
 * stretch of it reads anything from −13 to +17 MiB/min depending on where
 * the window falls, while the troughs of a leak-free process stay level.
 * `stretchS` must hold a whole tooth. A process is judged only from
 * `warmUpS` after its first reading (a process that took a role fills its
 * heap for minutes before it levels off), and only if it has
 * `minStretches` full stretches left.
 */
export function troughSlopesMiBPerMin(rss: RssSeries, fromS: number, stretchS: number, minStretches: number, warmUpS = 0): Map<string, number> {
  const slopes = new Map<string, number>();
  for (const [key, points] of rss) {
    if (points.length === 0) continue;
    const startS = Math.max(fromS, points[0]![0] + warmUpS);
    const window = points.filter(([t]) => t >= startS);
    if (window.length === 0) continue;
    const troughs: [number, number][] = [];
    const lastS = window[window.length - 1]![0];
    for (let start = startS; start + stretchS <= lastS + 1e-9; start += stretchS) {
      const stretch = window.filter(([t]) => t >= start && t < start + stretchS);
      // Only a stretch the process lived through (most of it): a started one has not reached its first trough.
      if (stretch.length === 0 || stretch[stretch.length - 1]![0] - stretch[0]![0] < FULL_STRETCH_SHARE * stretchS) continue;
      troughs.push(stretch.reduce((low, p) => (p[1] < low[1] ? p : low)));
    }
    if (troughs.length < minStretches) continue;
    slopes.set(key, leastSquaresSlope(troughs) * 60);
  }
  return slopes;
}

/** A stretch counts when the readings in it span this share of it. */
const FULL_STRETCH_SHARE = 0.8;

/** The slope of the least-squares line through (t, y) points, per unit of t. */
function leastSquaresSlope(points: readonly [number, number][]): number {
  const n = points.length;
  const meanT = points.reduce((a, [t]) => a + t, 0) / n;
  const meanY = points.reduce((a, [, y]) => a + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, y] of points) {
    num += (t - meanT) * (y - meanY);
    den += (t - meanT) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
