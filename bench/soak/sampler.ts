import type { ReportCollector } from '../../cli/launcher/reports.js';
import type { ProcessReading } from '../../lib/runtime/nats/process-stats.js';

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
    const readings = live.map((e) => ({ key: `${e.report.host || '-'} ${e.report.service} ${e.report.incarnation}`, reading: e.stats.process as ProcessReading | undefined })).filter((r) => r.reading !== undefined);
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
    const n = window.length;
    const meanT = window.reduce((a, [t]) => a + t, 0) / n;
    const meanM = window.reduce((a, [, m]) => a + m, 0) / n;
    let num = 0;
    let den = 0;
    for (const [t, m] of window) {
      num += (t - meanT) * (m - meanM);
      den += (t - meanT) ** 2;
    }
    slopes.set(key, den === 0 ? 0 : (num / den) * 60);
  }
  return slopes;
}
