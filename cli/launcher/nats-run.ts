import { randomUUID } from 'node:crypto';
import { withNatsTiming, type ExplicitTiming } from '../../lib/config/nats-profile.js';
import { isReplicated, type RunConfig } from '../../lib/config/run-config.js';
import type { RunResult } from '../../lib/results/run-result.js';
import { connectNats } from '../../lib/runtime/nats/connect.js';
import { wallClock } from '../../lib/runtime/nats/clock.js';
import { AuditIncompleteError, InterruptedError, NotProtectedError } from '../../lib/errors.js';
import { US_PER_MS } from '../../lib/units.js';
import { vmConfigs } from '../commands/service.js';
import { Fleet } from './fleet.js';
import type { Layout } from './plan.js';
import { ReportCollector } from './reports.js';
import { natsRunResult, natsRunTimeline, type CrashRecord } from './results.js';
import type { RunTimeline } from '../../lib/results/timeline.js';
import { BusAuditor } from '../../services/auditor/main.js';
import type { Violation } from '../../services/auditor/violations.js';

export interface NatsRunOptions {
  readonly natsUrl: string;
  /** Protected VMs run at once (each service process serves all of them). */
  readonly vms?: number;
  /** A host's services one per process (the default) or its data path in one (cli/launcher/plan.ts). */
  readonly layout?: Layout;
  /** Wall time allowed beyond the run's duration before everything is killed. */
  readonly graceMs?: number;
  /** Children's stderr, prefixed (none: quiet). */
  readonly onLog?: (line: string) => void;
  /** Interval of the services' reports on the bus. */
  readonly reportIntervalMs?: number;
  /** Audit every VM's bus (output commit, one primary) during the run; on by default. */
  readonly audit?: boolean;
  /** Each violation the auditors find, as they find it. */
  readonly onViolation?: (v: Violation) => void;
  /** The lease bucket and its replicas (3 on a three-server cluster); the default bucket otherwise. */
  readonly leaseBucket?: string;
  readonly leaseReplicas?: 1 | 3 | 5;
  /** Timing the user set on the command line: kept over NATS_TIMING (lib/config/nats-profile.ts). */
  readonly explicitTiming?: ExplicitTiming;
  /** Called once the client runs, with the fleet: a test may kill a server or a process mid-transfer. */
  readonly onRunning?: (fleet: Fleet) => void;
  /** Each VM's timeline once the run is over (for a picture of it). */
  readonly onTimeline?: (vmId: string, timeline: RunTimeline) => void;
  /** Ends the run early: every process it started is stopped, and it rejects with InterruptedError (the reason, a signal's name). */
  readonly signal?: AbortSignal;
}

/** `p`, or an InterruptedError as soon as `signal` aborts (the reason is the signal's name). */
function unlessInterrupted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return p;
  const interrupted = (): InterruptedError => new InterruptedError(typeof signal.reason === 'string' ? (signal.reason as NodeJS.Signals) : 'SIGTERM');
  if (signal.aborted) return Promise.reject(interrupted());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(interrupted());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

const DEFAULT_GRACE_MS = 30_000;
/** Room left in a vmId (64 characters at most) for the per-run suffix and a VM number. */
const VM_ID_BASE_MAX = 50;
/**
 * How long a backup may take to hold a whole image before the client starts:
 * 64 MiB of memory in 4 MiB seed steps, over a bus whose processes share a
 * small machine's cores (5-10 s on 2 idle cores).
 */
const PROTECTION_WAIT_MS = 60_000;
/** Services report this often during a run: a killed process's last counters are at most this old. */
const RUN_REPORT_INTERVAL_MS = 250;

/**
 * Runs a scenario as separate processes over NATS, in real time: every
 * host's services and agent and the failover service (replicated modes), or
 * the guest alone (native), then the client for the run's duration. Links
 * are emulated in the receiving processes, as in the simulator. With
 * `faults.crashPrimaryAtMs`, every process of the host serving as primary is
 * SIGKILLed at that time after the client started. Subjects get a per-run
 * suffix, so runs in parallel do not collide. Failover and bus timing are
 * NATS_TIMING's. One result per VM, with the simulator's keys, filled from
 * the services' reports on the bus.
 */
export async function runOnNats(config: RunConfig, options: NatsRunOptions): Promise<RunResult[]> {
  const t0 = performance.now();
  // A bad configuration is refused before anything connects: nothing is left open behind the error.
  const base: RunConfig = withNatsTiming({ ...config, vmId: `${config.vmId.slice(0, VM_ID_BASE_MAX)}-${randomUUID().slice(0, 8)}` }, options.explicitTiming);
  const vms = options.vms ?? 1;
  const configs = vmConfigs(base, vms);
  // Fail fast, in this process, with a clear TransportError when the server is unreachable (the first connect never retries).
  const nc = await connectNats({ servers: options.natsUrl, name: 'specula-run', maxReconnectAttempts: -1, reconnectTimeWaitMs: 100 });
  const collector = new ReportCollector(nc, configs.map((c) => c.vmId));
  // Subscribed before any service starts: it learns terms from the first assignments and epochs from the first bytes.
  const auditors = configs.map((c) => ((options.audit ?? true) ? BusAuditor.forVm(nc, c, (v) => options.onViolation?.(v)) : null));
  await nc.flush();
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  const lifetimeS = Math.ceil(config.durationS + (graceMs + PROTECTION_WAIT_MS) / 1000 + 30);
  let fleet: Fleet | null = null;
  const crashes: CrashRecord[] = [];
  let crashTimer: NodeJS.Timeout | null = null;
  try {
    const interruptible = <T>(p: Promise<T>): Promise<T> => unlessInterrupted(p, options.signal);
    // Held before the wait: an interrupt while the processes start must find them to stop (finally, below).
    fleet = Fleet.launch({
      natsUrl: options.natsUrl,
      config: base,
      vms,
      ...(options.layout !== undefined ? { layout: options.layout } : {}),
      exitAfterS: lifetimeS,
      reportIntervalMs: options.reportIntervalMs ?? RUN_REPORT_INTERVAL_MS,
      ...(options.leaseBucket !== undefined ? { leaseBucket: options.leaseBucket } : {}),
      ...(options.leaseReplicas !== undefined ? { leaseReplicas: options.leaseReplicas } : {}),
      ...(options.onLog ? { onLog: options.onLog } : {}),
    });
    await interruptible(fleet.whenReady());
    // A crash before the backup holds a whole image would lose the VM, not fail it over (docs/failover.md):
    // the client starts once every VM is protected, as an operator would start a workload.
    if (isReplicated(config.mode) && !(await interruptible(collector.waitForState(configs.map((c) => c.vmId), 'protected', PROTECTION_WAIT_MS, options.signal)))) {
      throw new NotProtectedError(`the VMs were not protected within ${PROTECTION_WAIT_MS} ms of the services' start (no backup finished its first image); the machine may be overloaded: see --verbose`);
    }
    const clock = wallClock();
    const client = await interruptible(fleet.add({ services: ['client'], host: null }));
    const startedUs = clock.nowUs();
    // The run's CPU is counted from here: the services' start-up and the backups' first images are not the transfer's.
    collector.cpu.start();
    options.onRunning?.(fleet);
    const crashAtMs = config.faults.crashPrimaryAtMs;
    if (crashAtMs !== null && isReplicated(config.mode)) {
      const f = fleet;
      crashTimer = setTimeout(() => {
        // The host every VM's failover service names primary now (all VMs share the hosts; the first decides).
        const host = collector.view(configs[0]!.vmId)?.primaryHost ?? config.hosts.primary;
        f.markKilled(host);
        const killed = f.killHost(host, 'SIGKILL');
        crashes.push({ host, atUs: clock.nowUs(), sinceStartMs: (clock.nowUs() - startedUs) / US_PER_MS, processes: killed });
      }, crashAtMs);
    }
    await interruptible(client.exited(config.durationS * 1000 + graceMs));
    if (crashTimer !== null) clearTimeout(crashTimer);
    const unexpected = fleet.unexpectedExits();
    for (const err of await fleet.stop()) options.onLog?.(`specula run: ${err.message}`);
    // The last reports of the processes that just stopped are on their way.
    await nc.flush();
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Commits and output an auditor still holds for its reorder window (on a cluster) are judged now.
    for (const a of auditors) a?.flush();
    if (unexpected.length > 0) throw unexpected[0]!;
    const unseen = auditors.map((a) => a?.incompleteness ?? null).find((why) => why !== null);
    if (unseen != null) throw new AuditIncompleteError(`the audit is incomplete: ${unseen}; its verdict would prove nothing`);
    const wallMs = Math.round(performance.now() - t0);
    if (options.onTimeline) for (const vmConfig of configs) options.onTimeline(vmConfig.vmId, natsRunTimeline(vmConfig, collector, { startedUs, crashes, wallMs }));
    return configs.map((vmConfig, i) => ({ ...natsRunResult(vmConfig, collector, { startedUs, crashes, wallMs }), config: vmConfig, layout: options.layout ?? 'service', ...(auditors[i] ? { auditViolations: auditors[i].violationCount, auditGaps: auditors[i].auditor.stats.gaps, auditPermitsMissed: auditors[i].auditor.stats.permitsMissed } : {}) }));
  } finally {
    if (crashTimer !== null) clearTimeout(crashTimer);
    await fleet?.stop();
    collector.close();
    for (const a of auditors) a?.close();
    await nc.close().catch(() => undefined);
  }
}
