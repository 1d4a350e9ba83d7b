import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** A service process's CPU time, memory and event-loop lag, as its reports carry them. */
export interface ProcessReading {
  /** CPU time (user + system) since the process started, µs: the difference of two readings is what it spent between them. */
  readonly cpuUs: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  /** Event-loop delay since the previous reading: p99 and max, ms (0 when nothing was sampled). */
  readonly eventLoopLagMsP99: number;
  readonly eventLoopLagMsMax: number;
}

/** The process's CPU time (µs) in a report's stats, as `runServiceProcess` puts its reading under `process`; null when the report has none. */
export function reportedCpuUs(stats: Record<string, unknown>): number | null {
  const cpuUs = (stats.process as { cpuUs?: unknown } | undefined)?.cpuUs;
  return typeof cpuUs === 'number' && Number.isFinite(cpuUs) ? cpuUs : null;
}

const NS_PER_MS = 1e6;
/** Sampling resolution of the event-loop delay histogram, ms. */
const LAG_RESOLUTION_MS = 10;

/**
 * Reads this process's CPU time, resident memory and event-loop lag for its reports,
 * so an operator (`specula status`) and a soak see them over time. Each
 * reading covers the time since the previous one.
 */
export class ProcessStats {
  readonly #lag: IntervalHistogram = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS });

  constructor() {
    this.#lag.enable();
  }

  read(): ProcessReading {
    const memory = process.memoryUsage();
    const sampled = this.#lag.count > 0;
    const cpu = process.cpuUsage();
    const reading = {
      cpuUs: cpu.user + cpu.system,
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      eventLoopLagMsP99: sampled ? this.#lag.percentile(99) / NS_PER_MS : 0,
      eventLoopLagMsMax: sampled ? this.#lag.max / NS_PER_MS : 0,
    };
    this.#lag.reset();
    return reading;
  }

  stop(): void {
    this.#lag.disable();
  }
}
