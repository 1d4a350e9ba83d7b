import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** A service process's CPU time, memory and event-loop lag, as its reports carry them. */
export interface ProcessReading {
  /** This OS process (pid and start time): the services of one process (`specula service guest checkpointer …`) report one CPU time. */
  readonly processId: string;
  /** The services this process runs, in the order given. */
  readonly services: readonly string[];
  /** CPU time (user + system) since the process started, µs: the difference of two readings is what it spent between them. */
  readonly cpuUs: number;
  readonly rssBytes: number;
  readonly heapUsedBytes: number;
  /** Event-loop delay since the previous reading: p99 and max, ms (0 when nothing was sampled). */
  readonly eventLoopLagMsP99: number;
  readonly eventLoopLagMsMax: number;
}

/** A process's CPU time as a report carries it, and which process it is. */
export interface ReportedCpu {
  readonly cpuUs: number;
  /** One key per OS process on its host: its services' reports carry the same reading, counted once. */
  readonly processKey: string;
  /** Its services, joined by '+' ("guest+checkpointer+netbuffer+acker"), or the reporting service. */
  readonly label: string;
}

/**
 * The process's CPU time (µs) in a report's stats, as `runServiceProcess`
 * puts its reading under `process`; null when the report has none. A report
 * without a process id (an older service) is its service's incarnation.
 */
export function reportedCpu(stats: Record<string, unknown>, report: { readonly service: string; readonly incarnation: number }): ReportedCpu | null {
  const reading = stats.process as { cpuUs?: unknown; processId?: unknown; services?: unknown } | undefined;
  const cpuUs = reading?.cpuUs;
  if (typeof cpuUs !== 'number' || !Number.isFinite(cpuUs)) return null;
  const services = Array.isArray(reading?.services) && reading.services.length > 0 && reading.services.every((s) => typeof s === 'string') ? (reading.services as string[]) : null;
  const processKey = typeof reading?.processId === 'string' ? reading.processId : `${report.service}/${report.incarnation}`;
  return { cpuUs, processKey, label: services === null ? report.service : services.join('+') };
}

/** This process: its pid, and when it started (µs since the epoch), since a pid is reused (a container's is 1). */
export const PROCESS_ID = `${process.pid}@${Math.round(performance.timeOrigin * 1000)}`;

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

  constructor(readonly services: readonly string[]) {
    this.#lag.enable();
  }

  read(): ProcessReading {
    const memory = process.memoryUsage();
    const sampled = this.#lag.count > 0;
    const cpu = process.cpuUsage();
    const reading = {
      processId: PROCESS_ID,
      services: this.services,
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
