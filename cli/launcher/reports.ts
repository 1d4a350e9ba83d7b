import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { decode } from '../../lib/codec/codec.js';
import { DecodeError } from '../../lib/errors.js';
import type { FailoverStatus, ServiceReport } from '../../lib/codec/messages.js';
import { subjects } from '../../lib/codec/subjects.js';
import { reportedCpu } from '../../lib/runtime/nats/process-stats.js';
import { CpuWindow } from './cpu-window.js';
import { subscribeCounted } from '../../lib/runtime/nats/subscribe.js';

/** The newest report of one process (by incarnation) for one VM. */
export interface ReportEntry {
  readonly report: ServiceReport;
  readonly stats: Record<string, unknown>;
}

/**
 * Incarnations kept per VM, host and service: far more restarts than a run
 * or a soak makes. Past it a new incarnation's reports are dropped (counted
 * in `dropped`): only a publisher forging incarnations gets there.
 */
export const MAX_INCARNATIONS_KEPT = 256;

/**
 * Service processes (VM, host, service) kept: a host name is free text in a
 * report, so past this a report of a new one is dropped (counted in
 * `dropped`); 256 VMs on 8 hosts of 6 services stay far below it.
 */
export const MAX_PROCESSES_KEPT = 16_384;

/**
 * Collects what services say on the bus: the newest report of each process
 * of each service of each VM (a restarted process is a new incarnation, and
 * its predecessor's last report stays: a killed process's counters count),
 * and the failover service's newest view. Bounded: MAX_INCARNATIONS_KEPT
 * entries per VM, host and service, one view per VM. A report or view is
 * taken for the VM whose subject it came on, never for the one it names.
 */
export class ReportCollector {
  readonly #reports = new Map<string, ReportEntry>();
  readonly #views = new Map<string, FailoverStatus>();
  readonly #subs: Subscription[] = [];
  /** The CPU time of every process that reports, from the run's start (`cpu.start()`). */
  readonly cpu = new CpuWindow();
  /** Reports that did not decode or parse (counted, not fatal). */
  malformed = 0;
  /** Reports and views naming another VM than their subject's, a new incarnation past MAX_INCARNATIONS_KEPT, or a new process past MAX_PROCESSES_KEPT: dropped. */
  dropped = 0;
  /** Errors on the collector's subscriptions: what they carried, it never got. */
  subscriptionErrors = 0;
  /** Incarnations kept per VM, host and service. */
  readonly #incarnations = new Map<string, number>();

  constructor(
    readonly nc: NatsConnection,
    readonly vmIds: readonly string[],
  ) {
    for (const vm of vmIds) {
      const s = subjects(vm);
      const countError = () => void this.subscriptionErrors++;
      this.#subs.push(subscribeCounted(nc, s.report, (m) => this.#onReport(vm, m.data), countError));
      this.#subs.push(subscribeCounted(nc, s.failover, (m) => this.#onView(vm, m.data), countError));
    }
  }

  #onReport(vmId: string, data: Uint8Array): void {
    try {
      const report = decode('serviceReport', data) as ServiceReport;
      if (report.vmId !== vmId) {
        this.dropped++;
        return;
      }
      const stats = JSON.parse(report.statsJson) as Record<string, unknown>;
      const process = `${report.vmId}/${report.host}/${report.service}`;
      const key = `${process}/${report.incarnation}`;
      const known = this.#reports.get(key);
      if (known === undefined) {
        const kept = this.#incarnations.get(process) ?? 0;
        if (kept >= MAX_INCARNATIONS_KEPT || (kept === 0 && this.#incarnations.size >= MAX_PROCESSES_KEPT)) {
          this.dropped++;
          return;
        }
        this.#incarnations.set(process, kept + 1);
      }
      if (known === undefined || known.report.atUs <= report.atUs) this.#reports.set(key, { report, stats });
      const cpu = reportedCpu(stats, report);
      // One process serves every VM of the run, and maybe several services: each of their reports carries the same reading.
      if (cpu !== null) this.cpu.observe({ processKey: `${report.host}/${cpu.processKey}`, service: cpu.label, atUs: report.atUs, cpuUs: cpu.cpuUs });
    } catch (err) {
      // A report that does not decode, or whose stats are not JSON, is bad input; anything else is a bug, not counted away.
      if (!(err instanceof DecodeError || err instanceof SyntaxError)) throw err;
      this.malformed++;
    }
  }

  #onView(vmId: string, data: Uint8Array): void {
    try {
      const view = decode('failoverStatus', data) as FailoverStatus;
      if (view.vmId !== vmId) {
        this.dropped++;
        return;
      }
      this.#views.set(vmId, view);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
      this.malformed++;
    }
  }

  /** Every process's newest report for `vmId` (optionally of one service). */
  reports(vmId: string, service?: ServiceReport['service']): ReportEntry[] {
    return [...this.#reports.values()].filter((e) => e.report.vmId === vmId && (service === undefined || e.report.service === service));
  }

  /** The failover service's newest view of `vmId`. */
  view(vmId: string): FailoverStatus | undefined {
    return this.#views.get(vmId);
  }

  /**
   * Resolves true once the failover service's view of every VM in `vmIds`
   * is `state`, false after `withinMs` or once `signal` aborts (polled:
   * views arrive on the collector's callbacks).
   */
  async waitForState(vmIds: readonly string[], state: FailoverStatus['state'], withinMs: number, signal?: AbortSignal, pollMs = 50): Promise<boolean> {
    const deadline = performance.now() + withinMs;
    const reached = (vm: string): boolean => {
      const v = this.#views.get(vm);
      // A view from while the failover service still learns the roles (its first lease read unanswered, or a restart) says nothing yet.
      return v !== undefined && v.state === state && !v.recovering;
    };
    for (;;) {
      if (vmIds.every(reached)) return true;
      if (performance.now() >= deadline || signal?.aborted === true) return false;
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  close(): void {
    for (const s of this.#subs) s.unsubscribe();
    this.#subs.length = 0;
  }
}
