/** A service process's cumulative CPU time, as one of its reports carries it. */
export interface CpuReading {
  /** The OS process on its host (`reportedCpu`): a restarted service is another process, and the services of one process share one. */
  readonly processKey: string;
  /** What the process runs: a service, or several joined by '+'. */
  readonly service: string;
  /** Wall clock at the report, µs. */
  readonly atUs: number;
  /** CPU time (user + system) since the process started, µs. */
  readonly cpuUs: number;
}

/** Processes a run's CPU is kept for: far more than any fleet, with restarts (a soak's: tens). */
export const MAX_PROCESSES_KEPT = 4096;

/**
 * The CPU time each service process spent during a run, from the cumulative
 * CPU time its reports carry: from its newest report when the run started
 * (its first one, for a process that starts later) to its newest report.
 * Each end is at most one report interval off, and what a process did
 * before the run (loading its code, a backup's first image) is left out.
 * Bounded: two readings per process that ever reported, MAX_PROCESSES_KEPT
 * processes at most.
 */
export class CpuWindow {
  readonly #newest = new Map<string, CpuReading>();
  readonly #baseline = new Map<string, CpuReading>();
  #started = false;
  /** Readings whose CPU time went backwards for their process (counted, ignored). */
  malformed = 0;
  /** Readings of a new process past MAX_PROCESSES_KEPT (only forged process ids get there): counted, ignored. */
  dropped = 0;

  observe(reading: CpuReading): void {
    if (!Number.isFinite(reading.cpuUs) || reading.cpuUs < 0) {
      this.malformed++;
      return;
    }
    const known = this.#newest.get(reading.processKey);
    if (known === undefined && this.#newest.size >= MAX_PROCESSES_KEPT) {
      this.dropped++;
      return;
    }
    // An older report that the bus delivered late says nothing new.
    if (known !== undefined && known.atUs > reading.atUs) return;
    if (known !== undefined && reading.cpuUs < known.cpuUs) {
      this.malformed++;
      return;
    }
    this.#newest.set(reading.processKey, reading);
    if (this.#started && !this.#baseline.has(reading.processKey)) this.#baseline.set(reading.processKey, reading);
  }

  /** The run starts now: each process's newest reading is where its share begins. */
  start(): void {
    this.#started = true;
    for (const [key, reading] of this.#newest) this.#baseline.set(key, reading);
  }

  /** CPU seconds each service's processes spent since start(), summed per service. */
  secondsByService(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, last] of this.#newest) {
      const first = this.#baseline.get(key);
      if (first === undefined) continue;
      out[last.service] = (out[last.service] ?? 0) + (last.cpuUs - first.cpuUs) / 1e6;
    }
    return out;
  }
}
