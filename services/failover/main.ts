import { jserrors } from '@nats-io/jetstream/internal';
import type { NatsConnection } from '@nats-io/transport-node';
import { subjects } from '../../lib/codec/subjects.js';
import type { RunConfig } from '../../lib/config/run-config.js';
import { ConfigError } from '../../lib/errors.js';
import { LeaseStoreUnavailableError } from '../../lib/lease/errors.js';
import { KvLeaseStore, LEASE_BUCKET } from '../../lib/lease/kv-store.js';
import { assertLeaseKey, type LeaseStore } from '../../lib/lease/types.js';
import { connectNats, createLogger, drainOnSignals, NatsShell, wallClock, type Logger, type ShellCounters } from '../../lib/runtime/nats/index.js';
import { msToUs } from '../../lib/units.js';
import { FailoverCore, type FailoverStats } from './core.js';
import type { FailoverState } from './failover.machine.js';

/** The hosts of one protected VM, as the failover service knows them at start. */
export interface FailoverHosts {
  readonly primaryHost: string;
  readonly backupHost: string;
  readonly spareHosts: readonly string[];
}

/** The simulator's host names (sim/world.ts), so both runtimes speak of the same hosts. */
export const DEFAULT_FAILOVER_HOSTS: FailoverHosts = { primaryHost: 'host-a', backupHost: 'host-b', spareHosts: ['host-c'] };

export interface FailoverServiceOptions {
  readonly natsUrl: string;
  readonly hosts?: FailoverHosts;
  /** JetStream KV bucket of the leases (created when missing). */
  readonly leaseBucket?: string;
  /** A lease store to use instead of the bucket on the service's own connection (the caller owns it). */
  readonly leaseStore?: LeaseStore;
  /** Stop on its own after this many wall seconds (a bound for spawned runs); none by default. */
  readonly exitAfterS?: number;
  /** Stops the service like a signal does (for callers that run it in-process). */
  readonly signal?: AbortSignal;
  /** Where the JSON lines go (stdout by default). */
  readonly write?: (line: string) => void;
  /** Structured logs (stderr by default). */
  readonly logger?: Logger;
}

/** First line on stdout: heartbeats are watched from now on. */
export interface FailoverReadyLine {
  readonly kind: 'failover-ready';
  readonly vmId: string;
  readonly primaryHost: string;
  readonly backupHost: string;
  readonly spareHosts: readonly string[];
  /** null when the caller passed its own store. */
  readonly leaseBucket: string | null;
}

/** Last line on stdout, when the service stops. */
export interface FailoverReport {
  readonly kind: 'failover-report';
  readonly vmId: string;
  readonly state: FailoverState;
  readonly term: number;
  readonly primaryHost: string;
  readonly failover: FailoverStats;
  readonly shell: ShellCounters;
  readonly reason: string;
}

/** Host names become subject tokens (specula.<vm>.hb.<host>). */
const HOST_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function buildFailover(config: RunConfig, hosts: FailoverHosts = DEFAULT_FAILOVER_HOSTS): FailoverCore {
  const all = [hosts.primaryHost, hosts.backupHost, ...hosts.spareHosts];
  for (const h of all) if (!HOST_PATTERN.test(h)) throw new ConfigError(`host name '${h}' must be 1-64 characters of [A-Za-z0-9_-] (it is a subject token)`);
  if (new Set(all).size !== all.length) throw new ConfigError(`host names must differ: ${all.join(', ')}`);
  assertLeaseKey(config.vmId);
  const f = config.failover;
  return new FailoverCore({
    vmId: config.vmId,
    subjects: subjects(config.vmId),
    primaryHost: hosts.primaryHost,
    backupHost: hosts.backupHost,
    spareHosts: hosts.spareHosts,
    heartbeatIntervalUs: msToUs(f.heartbeatIntervalMs),
    missCount: f.missCount,
    leaseDurationUs: msToUs(f.leaseDurationMs),
    clockSkewUs: msToUs(f.clockSkewMs),
  });
}

async function openLeaseStore(nc: NatsConnection, bucket: string, natsUrl: string): Promise<KvLeaseStore> {
  try {
    return await KvLeaseStore.open(nc, { bucket });
  } catch (err) {
    await nc.close().catch(() => undefined);
    // Both are operational: the CLI prints one line and exits, with no stack.
    if (err instanceof jserrors.JetStreamNotEnabled) {
      throw new LeaseStoreUnavailableError(`cannot open the lease bucket ${bucket}: the NATS server at ${natsUrl} does not run JetStream (start nats-server with -js)`, { cause: err });
    }
    if (err instanceof LeaseStoreUnavailableError) {
      throw new LeaseStoreUnavailableError(`cannot open the lease bucket ${bucket} on NATS at ${natsUrl} (${err.message}); the server needs JetStream (nats-server -js)`, { cause: err });
    }
    throw err;
  }
}

/**
 * The failover service as a process: its core on NATS, leases in JetStream
 * KV. Runs until SIGTERM/SIGINT (or `exitAfterS`, or `signal`), then drains
 * and writes its report.
 */
export async function runFailoverService(config: RunConfig, options: FailoverServiceOptions): Promise<FailoverReport> {
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const hosts = options.hosts ?? DEFAULT_FAILOVER_HOSTS;
  // Configuration errors before any connection.
  const core = buildFailover(config, hosts);
  const logger = options.logger ?? createLogger({ role: 'failover', vm: config.vmId });
  const nc = await connectNats({ servers: options.natsUrl, name: `specula-failover-${config.vmId}` });
  const bucket = options.leaseStore === undefined ? (options.leaseBucket ?? LEASE_BUCKET) : null;
  const leaseStore = options.leaseStore ?? (await openLeaseStore(nc, bucket!, options.natsUrl));
  // Lease expiries are compared with other hosts' wall clocks: the core's time must be wall time.
  const shell = new NatsShell(core, nc, { logger, clock: wallClock(), leaseStore });
  let reason = 'closed';
  const stop = (why: string) => {
    reason = why;
    return shell.stop(why);
  };
  const removeSignals = drainOnSignals((signal) => stop(signal));
  const onAbort = () => void stop('abort');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const lifetime = options.exitAfterS === undefined ? null : setTimeout(() => void stop('lifetime'), options.exitAfterS * 1000);
  try {
    if (options.signal?.aborted) await stop('abort');
    else {
      await shell.start();
      write(JSON.stringify({ kind: 'failover-ready', vmId: config.vmId, ...hosts, leaseBucket: bucket } satisfies FailoverReadyLine));
    }
    await shell.done;
  } finally {
    removeSignals();
    options.signal?.removeEventListener('abort', onAbort);
    if (lifetime) clearTimeout(lifetime);
  }
  const report: FailoverReport = { kind: 'failover-report', vmId: config.vmId, state: core.state, term: core.term, primaryHost: core.primaryHost, failover: core.stats, shell: shell.counters, reason };
  write(JSON.stringify(report));
  return report;
}
