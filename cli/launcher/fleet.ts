import type { RunConfig } from '../../lib/config/run-config.js';
import { isReadyLine, type ReadyLine } from '../../lib/runtime/nats/service-process.js';
import type { ServiceName } from '../commands/service.js';
import { Child, ServiceProcessError } from './child.js';
import { labelOf, plannedProcesses, type Layout, type PlannedProcess } from './plan.js';

export interface FleetOptions {
  readonly natsUrl: string;
  /** The configuration every process gets (its vmId is the base of the VMs' ids when vms > 1). */
  readonly config: RunConfig;
  readonly vms: number;
  /** A host's services one per process (the default) or its data path in one (plan.ts). */
  readonly layout?: Layout;
  readonly leaseBucket?: string;
  /** Replicas of the lease bucket (3 on a three-server cluster). */
  readonly leaseReplicas?: 1 | 3 | 5;
  readonly logLevel?: string;
  readonly reportIntervalMs?: number;
  /** Each child's stderr lines, prefixed with its host and service; none: quiet. */
  readonly onLog?: (line: string) => void;
  /** Every process stops on its own after this long (a bound in case the launcher dies without stopping them). */
  readonly exitAfterS?: number;
  /** How long a process may take to connect and subscribe. */
  readonly readyTimeoutMs?: number;
}

const DEFAULT_READY_TIMEOUT_MS = 20_000;
/** How long a process may take to stop after SIGTERM before SIGKILL. */
const STOP_TIMEOUT_MS = 10_000;

/**
 * The processes of protected VMs on this machine: every host's services and
 * agent, and the failover service, each as a `specula service` child serving
 * all the VMs. A host's processes are grouped only here: they talk over NATS.
 */
export class Fleet {
  readonly #children: { readonly plan: PlannedProcess; readonly child: Child }[] = [];

  private constructor(readonly options: FleetOptions) {}

  /** Spawns every process and resolves once all are ready; a failure stops them all. */
  static async start(options: FleetOptions): Promise<Fleet> {
    const fleet = Fleet.launch(options);
    try {
      await fleet.whenReady();
    } catch (err) {
      await fleet.stop();
      throw err;
    }
    return fleet;
  }

  /**
   * Spawns every process and returns at once: a caller that may be
   * interrupted while they start holds the fleet to stop (with `start`, an
   * interrupt during the wait left the processes running unowned).
   */
  static launch(options: FleetOptions): Fleet {
    const fleet = new Fleet(options);
    for (const plan of plannedProcesses(options.config, options.layout)) fleet.spawn(plan);
    return fleet;
  }

  /** Resolves once every process launched is ready; rejects when one exits or fails first. */
  async whenReady(): Promise<void> {
    await Promise.all(this.#children.map(({ plan, child }) => this.#ready(plan, child)));
  }

  /** Starts one more process (the client of a run); resolves once it is ready. */
  async add(plan: PlannedProcess, extraArgs: readonly string[] = []): Promise<Child> {
    const child = this.spawn(plan, extraArgs);
    await this.#ready(plan, child);
    return child;
  }

  spawn(plan: PlannedProcess, extraArgs: readonly string[] = []): Child {
    const o = this.options;
    const args = ['service', ...plan.services, '--config-json', JSON.stringify(o.config), '--nats-url', o.natsUrl, '--vms', String(o.vms)];
    if (plan.host !== null) args.push('--host', plan.host);
    if (o.leaseBucket !== undefined) args.push('--lease-bucket', o.leaseBucket);
    if (o.leaseReplicas !== undefined) args.push('--lease-replicas', String(o.leaseReplicas));
    if (o.reportIntervalMs !== undefined) args.push('--report-interval-ms', String(o.reportIntervalMs));
    if (o.exitAfterS !== undefined && !plan.services.includes('client')) args.push('--exit-after-s', String(o.exitAfterS));
    args.push(...extraArgs);
    const env = { ...process.env, SPECULA_LOG_LEVEL: o.logLevel ?? process.env.SPECULA_LOG_LEVEL ?? 'warn' };
    const child = new Child({ label: labelOf(plan), args, env, ...(o.onLog ? { onLog: o.onLog } : {}) });
    this.#children.push({ plan, child });
    return child;
  }

  /** Every service of the process has said it is ready (one ready line each). */
  async #ready(plan: PlannedProcess, child: Child): Promise<ReadyLine[]> {
    const timeoutMs = this.options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    return Promise.all(plan.services.map((service) => child.waitForJson((v): v is ReadyLine => isReadyLine(v) && v.service === service, timeoutMs, `to connect and subscribe its ${service}`)));
  }

  get children(): readonly { readonly plan: PlannedProcess; readonly child: Child }[] {
    return this.#children;
  }

  /** The processes of one host. */
  hostChildren(host: string): Child[] {
    return this.#children.filter((c) => c.plan.host === host).map((c) => c.child);
  }

  /** The process that runs `service` on `host`, if it was started. */
  child(service: ServiceName, host: string | null): Child | undefined {
    return this.#children.find((c) => c.plan.services.includes(service) && c.plan.host === host)?.child;
  }

  /** Kills every process of a host at once, as when the machine dies. */
  killHost(host: string, signal: NodeJS.Signals = 'SIGKILL'): number {
    const children = this.hostChildren(host).filter((c) => c.running);
    for (const c of children) c.kill(signal);
    return children.length;
  }

  /** A process that exited before the fleet stopped it (killed by nobody, and not a client, whose run ends): a failure to report. */
  unexpectedExits(): ServiceProcessError[] {
    return this.#children.filter(({ plan, child }) => !child.running && !this.#killed.has(child) && !plan.services.includes('client')).map(({ child }) => child.failure('exited on its own'));
  }

  readonly #killed = new Set<Child>();

  /** Marks a host's processes as killed on purpose (a fault of the run). */
  markKilled(host: string): void {
    for (const c of this.hostChildren(host)) this.#killed.add(c);
  }

  /**
   * SIGTERM to every process (they drain and report), SIGKILL to one that
   * takes too long: resolves with an error for each of those (its final
   * report never went out, so the run's figures for it are its last
   * periodic ones).
   */
  async stop(): Promise<ServiceProcessError[]> {
    const running = this.#children.map((c) => c.child).filter((c) => c.running);
    for (const c of running) {
      this.#killed.add(c);
      c.kill('SIGTERM');
    }
    const outcomes = await Promise.allSettled(running.map((c) => c.exited(STOP_TIMEOUT_MS)));
    return outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason instanceof ServiceProcessError ? o.reason : new ServiceProcessError(String(o.reason))] : []));
  }
}
