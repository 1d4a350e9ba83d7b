import Table from 'cli-table3';
import { Command, InvalidArgumentError, Option } from 'commander';
import { decode } from '../../lib/codec/codec.js';
import { DecodeError } from '../../lib/errors.js';
import type { FailoverStatus, Heartbeat, ServiceReport } from '../../lib/codec/messages.js';
import { connectNats } from '../../lib/runtime/nats/connect.js';
import { subscribeCounted } from '../../lib/runtime/nats/subscribe.js';
import { reportedCpu } from '../../lib/runtime/nats/process-stats.js';
import { DEFAULT_NATS_URL } from '../../lib/runtime/nats/options.js';
import { num } from '../run-options.js';
import { checkVmId } from '../validate.js';

interface StatusFlags {
  natsUrl: string;
  vm?: string;
  once: boolean;
  waitMs: number;
  intervalMs: number;
  format: 'table' | 'json';
}

/** Below this a refresh would only spin. */
const MIN_INTERVAL_MS = 100;

/** A number flag of at least `min`; commander's usage error otherwise. */
const atLeast =
  (flag: string, min: number) =>
  (value: string): number => {
    const n = num(value);
    if (n < min) throw new InvalidArgumentError(`${flag}: ${value} is below ${min}`);
    return n;
  };

/** What the bus says of one host of one VM. */
export interface HostStatus {
  readonly host: string;
  readonly role: string;
  readonly term: number;
  /** Committed (primary) or applied (backup). */
  readonly epoch: number;
  readonly synced: boolean;
  /** Held by the netbuffer / in the speculative buffer, now. */
  readonly heldBytes: number | null;
  readonly specBytes: number | null;
  /** A backup's: checkpoint bytes it holds in epochs not applied yet (its replication backlog). */
  readonly stagedBytes: number | null;
  /** Bytes per second leaving this host for the client, over the last reports. */
  readonly goodputBitsPerSec: number | null;
  /** CPU time the host's service processes spent per second of wall time over their last two reports, % of one core (null: fewer than two reports). */
  readonly cpuPercent: number | null;
}

export interface VmStatus {
  readonly vmId: string;
  /** `recovering`: the failover service still learns the roles (its first lease read unanswered, or a restart); its state says nothing yet. */
  readonly failover: { readonly state: string; readonly term: number; readonly primaryHost: string; readonly backupHost: string; readonly recovering: boolean } | null;
  readonly hosts: readonly HostStatus[];
}

/** A counter's value (bytes sent, CPU µs) as one report gave it. */
interface Sample {
  readonly atUs: number;
  readonly value: number;
  /** For CPU time: the process the reading is of (several services may share one). */
  readonly processKey?: string;
}

/**
 * A VM not heard from (heartbeat, view or report) for this long leaves the
 * board, and everything kept of it goes: a watcher left running for days
 * keeps only the VMs that live.
 */
export const VM_FORGOTTEN_AFTER_MS = 30_000;

/** Builds each VM's status from heartbeats, the failover service's views and the services' reports. */
export class StatusBoard {
  /** Messages that did not decode, or reports whose stats are not JSON: skipped, and counted for the footer. */
  unreadable = 0;
  readonly #heartbeats = new Map<string, Heartbeat>();
  /** When each VM was last heard from (nowMs). */
  readonly #lastHeardMs = new Map<string, number>();
  readonly #views = new Map<string, FailoverStatus>();
  readonly #reports = new Map<string, { report: ServiceReport; stats: Record<string, unknown> }>();
  /** Two last samples of bytes sent to the client per VM and host, for a rate. */
  readonly #sent = new Map<string, [Sample | null, Sample]>();
  /** Two last samples of each service's process's CPU time (µs), per VM, host and service. */
  readonly #cpu = new Map<string, [Sample | null, Sample]>();

  constructor(readonly nowMs: () => number = Date.now) {}

  heartbeat(hb: Heartbeat): void {
    this.#heard(hb.vmId);
    this.#heartbeats.set(`${hb.vmId}/${hb.host}`, hb);
  }
  view(v: FailoverStatus): void {
    this.#heard(v.vmId);
    this.#views.set(v.vmId, v);
  }
  report(r: ServiceReport): void {
    let stats: Record<string, unknown>;
    try {
      stats = JSON.parse(r.statsJson) as Record<string, unknown>;
    } catch {
      this.unreadable++;
      return;
    }
    this.#heard(r.vmId);
    this.#reports.set(`${r.vmId}/${r.host}/${r.service}`, { report: r, stats });
    // The failover service publishes its view when it changes; its reports carry it too, for a watcher that came later.
    if (r.service === 'failover' && !this.#views.has(r.vmId) && typeof stats.state === 'string') {
      this.#views.set(r.vmId, { type: 'failoverStatus', vmId: r.vmId, term: Number(stats.term ?? 0), state: stats.state as FailoverStatus['state'], primaryHost: String(stats.primaryHost ?? ''), backupHost: String(stats.backupHost ?? ''), recovering: stats.recovering === true });
    }
    const key = `${r.vmId}/${r.host}/${r.service}`;
    const cpu = reportedCpu(stats, r);
    // A series per service: the services of one process report one reading at moments close together, so each rate is over a whole interval.
    if (cpu !== null) push(this.#cpu, key, { atUs: r.atUs, value: cpu.cpuUs, processKey: cpu.processKey });
    // Bytes toward the client: the acker's client-acknowledged data (speculative modes), the netbuffer's released data (remus).
    const bytes = r.service === 'acker' ? Number(stats.clientAckSeq ?? 0) : r.service === 'netbuffer' ? Number(stats.bytesReleased ?? 0) : null;
    if (bytes === null || !Number.isFinite(bytes)) return;
    push(this.#sent, key, { atUs: r.atUs, value: bytes });
  }

  #rate(vmId: string, host: string, service: string): number | null {
    const perUs = perUsOf(this.#sent.get(`${vmId}/${host}/${service}`));
    return perUs === null ? null : perUs * 8 * 1e6;
  }

  /** The host's service processes' CPU time per wall time, % of a core; null until one of them reported twice. */
  #cpuPercent(vmId: string, host: string): number | null {
    // One rate per process: the services it runs all carry its reading.
    const byProcess = new Map<string, number>();
    for (const [key, samples] of this.#cpu) {
      const rate = key.startsWith(`${vmId}/${host}/`) ? perUsOf(samples) : null;
      const processKey = samples[1].processKey ?? key;
      if (rate !== null && !byProcess.has(processKey)) byProcess.set(processKey, rate);
    }
    return byProcess.size === 0 ? null : [...byProcess.values()].reduce((a, b) => a + b, 0) * 100;
  }

  #heard(vmId: string): void {
    this.#lastHeardMs.set(vmId, this.nowMs());
  }

  /** Drops the VMs silent for VM_FORGOTTEN_AFTER_MS, with all that was kept of them. */
  #forgetSilent(): void {
    const now = this.nowMs();
    for (const [vmId, atMs] of this.#lastHeardMs) {
      if (now - atMs <= VM_FORGOTTEN_AFTER_MS) continue;
      this.#lastHeardMs.delete(vmId);
      this.#views.delete(vmId);
      for (const map of [this.#heartbeats, this.#reports, this.#sent, this.#cpu] as Map<string, unknown>[]) for (const key of map.keys()) if (key.startsWith(`${vmId}/`)) map.delete(key);
    }
  }

  vms(): VmStatus[] {
    this.#forgetSilent();
    const ids = new Set([...this.#heartbeats.values()].map((h) => h.vmId));
    for (const id of this.#views.keys()) ids.add(id);
    return [...ids].sort().map((vmId) => {
      const v = this.#views.get(vmId);
      const hosts = [...this.#heartbeats.values()]
        .filter((h) => h.vmId === vmId)
        .sort((a, b) => a.host.localeCompare(b.host))
        .map((hb): HostStatus => {
          const stat = (service: string, key: string): number | null => {
            const value = this.#reports.get(`${vmId}/${hb.host}/${service}`)?.stats[key];
            return typeof value === 'number' ? value : null;
          };
          const rates = [this.#rate(vmId, hb.host, 'acker'), this.#rate(vmId, hb.host, 'netbuffer')].filter((r): r is number => r !== null);
          return { host: hb.host, role: hb.role, term: hb.term, epoch: hb.epoch, synced: hb.synced, heldBytes: stat('netbuffer', 'heldBytes'), specBytes: stat('acker', 'specBufferBytes'), stagedBytes: stat('guest', 'stagedBytes'), goodputBitsPerSec: rates.length === 0 ? null : rates.reduce((a, b) => a + b, 0), cpuPercent: this.#cpuPercent(vmId, hb.host) };
        });
      return { vmId, failover: v === undefined ? null : { state: v.state, term: v.term, primaryHost: v.primaryHost, backupHost: v.backupHost, recovering: v.recovering }, hosts };
    });
  }
}

/** Keeps the newest two samples of a counter. */
function push(samples: Map<string, [Sample | null, Sample]>, key: string, sample: Sample): void {
  samples.set(key, [samples.get(key)?.[1] ?? null, sample]);
}

/** A counter's growth per µs between its two samples; null without two in order. */
function perUsOf(s: [Sample | null, Sample] | undefined): number | null {
  if (s === undefined || s[0] === null || s[1].atUs <= s[0].atUs) return null;
  return Math.max(0, (s[1].value - s[0].value) / (s[1].atUs - s[0].atUs));
}

const mbps = (bits: number | null): string => (bits === null ? '-' : (bits / 1e6).toFixed(1));

/** `unreadable`: messages skipped because they did not decode (a footer says how many). */
export function renderStatus(vms: readonly VmStatus[], unreadable = 0): string {
  const footer = unreadable > 0 ? `\n${unreadable} messages on the bus did not decode and were skipped` : '';
  if (vms.length === 0) return 'no VM reports on this bus yet' + footer;
  const table = new Table({ head: ['vm', 'failover', 'host', 'role', 'term', 'epoch', 'synced', 'goodput Mbit/s', 'held B', 'spec B', 'staged B', 'CPU %'] });
  for (const vm of vms) {
    const f = vm.failover === null ? '-' : vm.failover.recovering ? `learning the roles (term ${vm.failover.term})` : `${vm.failover.state} (term ${vm.failover.term})`;
    for (const h of vm.hosts) table.push([vm.vmId, f, h.host, h.role, h.term, h.epoch, h.synced ? 'yes' : 'no', mbps(h.goodputBitsPerSec), h.heldBytes ?? '-', h.specBytes ?? '-', h.stagedBytes ?? '-', h.cpuPercent === null ? '-' : h.cpuPercent.toFixed(0)]);
  }
  return table.toString() + footer;
}

/** `specula status`: live, from the bus: for each VM, each host's role, term, epoch, goodput, held, speculative and (a backup's) staged bytes, and its services' CPU. */
export function statusCommand(): Command {
  return new Command('status')
    .description('show, live from the bus, each VM: role per host, term, last committed epoch, goodput, held bytes, speculative bytes, a backup\'s staged bytes and the CPU its services use')
    .addOption(new Option('--nats-url <url>', 'NATS server(s)').env('NATS_URL').default(DEFAULT_NATS_URL))
    .option('--vm <id>', 'one VM only (default: every VM on the bus)')
    .option('--once', 'print once, after --wait-ms of listening, and exit', false)
    .addOption(new Option('--wait-ms <n>', 'with --once: how long to listen first (reports come every second)').argParser(atLeast('--wait-ms', 0)).default(2_500))
    .addOption(new Option('--interval-ms <n>', `refresh interval (at least ${MIN_INTERVAL_MS})`).argParser(atLeast('--interval-ms', MIN_INTERVAL_MS)).default(1_000))
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']).default('table'))
    .action(async (flags: StatusFlags) => {
      if (flags.vm !== undefined) checkVmId('--vm', flags.vm);
      const nc = await connectNats({ servers: flags.natsUrl, name: 'specula-status' });
      const board = new StatusBoard();
      let subscriptionErrors = 0;
      const vm = flags.vm ?? '*';
      const on = <T>(subject: string, type: Parameters<typeof decode>[0], take: (msg: T) => void) =>
        subscribeCounted(
          nc,
          subject,
          (m) => {
            try {
              take(decode(type, m.data) as T);
            } catch (cause) {
              // Not ours to judge: status reads what decodes and counts the rest.
              if (!(cause instanceof DecodeError)) throw cause;
              board.unreadable++;
            }
          },
          () => void subscriptionErrors++,
        );
      on<Heartbeat>(`specula.${vm}.hb.*`, 'heartbeat', (hb) => board.heartbeat(hb));
      on<FailoverStatus>(`specula.${vm}.failover`, 'failoverStatus', (v) => board.view(v));
      on<ServiceReport>(`specula.${vm}.report`, 'serviceReport', (r) => board.report(r));
      const print = () => {
        const vms = board.vms();
        if (flags.format === 'json') process.stdout.write(JSON.stringify(vms) + '\n');
        else process.stdout.write((process.stdout.isTTY && !flags.once ? '\x1b[2J\x1b[H' : '') + renderStatus(vms, board.unreadable) + (subscriptionErrors > 0 ? `\n${subscriptionErrors} subscription errors: the server refuses this user some subjects` : '') + '\n');
      };
      if (flags.once) {
        await new Promise((r) => setTimeout(r, flags.waitMs));
        print();
        await nc.close();
        return;
      }
      const timer = setInterval(print, flags.intervalMs);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearInterval(timer);
          resolve();
        };
        process.once('SIGINT', done);
        process.once('SIGTERM', done);
      });
      await nc.close();
    });
}
