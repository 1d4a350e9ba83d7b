import type { NatsConnection } from '@nats-io/transport-node';
import { jserrors } from '@nats-io/jetstream/internal';
import { encode } from '../../codec/codec.js';
import type { ReportingService, ServiceReport } from '../../codec/messages.js';
import { subjects } from '../../codec/subjects.js';
import { topologyOf } from '../../topology/index.js';
import { CHUNK_ENVELOPE_BYTES, runConfigSchema, type RunConfig } from '../../config/run-config.js';
import { hostNameSchema } from '../../config/hosts-config.js';
import { ConfigError, TransportError } from '../../errors.js';
import { LeaseStoreUnavailableError } from '../../lease/errors.js';
import { KvLeaseStore, LEASE_BUCKET } from '../../lease/kv-store.js';
import { assertLeaseKey, type LeaseStore } from '../../lease/types.js';
import type { Core } from '../types.js';
import { monotonicClock, wallClock, type Clock } from './clock.js';
import { connectNats } from './connect.js';
import { startObservability } from './observability.js';
import { tracingWanted } from './otel-env.js';
import { parseConfig } from '../../config/parse.js';
import type { SpanRecord } from '../../tracing/model.js';
import { DEFAULT_TRACE_SAMPLE_RATE, tracingOptionsFromConfig } from '../../tracing/options.js';
import { createLogger, vmLogger, type Logger } from './logger.js';
import { BATCH_MAX_BYTES, NatsShell, type InboundLink, type ShellCounters } from './shell.js';
import type { LinkGateCounters } from './link-gate.js';
import { drainOnSignals } from './signals.js';
import type { VmReport } from './metrics.js';
import type { OtelTracing } from './otel.js';
import { ProcessStats } from './process-stats.js';

/** What became of a process's reports on the bus (carried in each report). */
export interface ReportCounters {
  reportsPublished: number;
  /** Publishes the connection refused (closed under us, or a server error). */
  reportPublishErrors: number;
  /** Reports over the server's max_payload, sent without their final-only fields. */
  reportsTooLarge: number;
  /** Reports not sent while the data connection was down: nats.js would drop them at its next dial anyway. */
  reportsWhileDisconnected: number;
}

/** One service core for one VM, as a process runs it. */
export interface ServiceInstance {
  readonly core: Core;
  readonly inboundLinks?: readonly InboundLink[];
  /**
   * The service's counters for its reports (JSON). `final`: the last report,
   * which may also carry what grows with the run (the client's timeline);
   * the periodic ones stay small.
   */
  report(final?: boolean): Record<string, unknown>;
  /** True once this VM's service has nothing more to do (the client, after its transfer): the process stops when all are. */
  readonly done?: () => boolean;
  /** Its role now (primary, backup, …), for its spans: a process's role changes at a failover. */
  readonly role?: () => string;
}

/** How a process runs one service, for any number of VMs. */
export interface ServiceDefinition {
  readonly name: ReportingService;
  /** 'host': runs on every host and needs --host; 'replicated': needs --host unless the mode is native; 'vm': once per VM. */
  readonly placement: 'host' | 'replicated' | 'vm';
  /**
   * The wall clock for services whose times other processes compare (lease
   * expiries, release permits: a host's agent and its netbuffer are separate
   * processes); a monotonic one from 0 otherwise.
   */
  readonly clock: 'wall' | 'monotonic';
  /** Serves lease effects from the JetStream KV bucket. */
  readonly leases: boolean;
  /** `clock`: the time the core will be given (reports may read it). */
  build(config: RunConfig, host: string | null, clock: Clock): ServiceInstance;
}

export interface ServiceProcessOptions {
  readonly natsUrl: string;
  /** The host this process belongs to (host services). */
  readonly host: string | null;
  /** One configuration per VM this process serves. */
  readonly configs: readonly RunConfig[];
  readonly leaseBucket?: string;
  /** Replicas of the lease bucket when this process creates it (3 or 5 on a JetStream cluster). */
  readonly leaseReplicas?: 1 | 3 | 5;
  /** A lease store to use instead of the bucket (the caller owns it): tests that take the store away. */
  readonly leaseStore?: LeaseStore;
  /** Stop on its own after this many wall seconds; none by default. */
  readonly exitAfterS?: number;
  /** Interval of the reports on specula.<vm>.report. */
  readonly reportIntervalMs?: number;
  /** Where the JSON lines go (stdout by default). */
  readonly write?: (line: string) => void;
  readonly logger?: Logger;
  /** Stops the process like a signal does (for callers that run it in-process). */
  readonly signal?: AbortSignal;
  /** Serve /healthz and /readyz on this port (0: any free one); none by default. */
  readonly healthPort?: number;
  /**
   * Export traces (OTel; also on when OTEL_EXPORTER_OTLP_ENDPOINT is set) with
   * this share of the guest's output segments sampled, and every epoch.
   * Every service of a VM needs the same rate: each decides alone which
   * packets are traced. Off: the cores report no spans.
   */
  readonly trace?: { readonly enabled: boolean; readonly segmentSampleRate: number };
  /** The process runs other services too (`runServiceGroup`); this one alone by default. */
  readonly group?: ServiceGroupMembership;
}

/** What a service of a process of several shares with the others (`runServiceGroup`). */
export interface ServiceGroupMembership {
  /** Every service of the process, for its reports' CPU reading. */
  readonly services: readonly ReportingService[];
  /** The process's trace exporter, or none: each span then says its service (`specula.service`) beside the process's service.name. */
  readonly tracing: OtelTracing | null;
  /** Called once, before connecting, with what the process's one health server reads of this service. */
  join(member: ServiceMember): void;
}

/** What a process's probes and metrics read of one of its services. */
export interface ServiceMember {
  readonly service: ReportingService;
  /** Each VM's counters, as /metrics exports them. */
  reports(): readonly VmReport[];
  /** Every VM's shell serves. */
  ready(): boolean;
}

/** First line on stdout: the process serves its VMs from now on. */
export interface ReadyLine {
  readonly kind: 'ready';
  readonly service: ReportingService;
  readonly host: string | null;
  readonly vms: readonly string[];
  readonly pid: number;
}

/** A parsed stdout line that is a ReadyLine: every field present, of its type. */
export function isReadyLine(value: unknown): value is ReadyLine {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.kind === 'ready' && typeof v.service === 'string' && (v.host === null || typeof v.host === 'string') && Array.isArray(v.vms) && v.vms.every((vm) => typeof vm === 'string') && Number.isInteger(v.pid);
}

/** Last line on stdout: each VM's counters when the process stopped. */
export interface FinalLine {
  readonly kind: 'final';
  readonly service: ReportingService;
  readonly host: string | null;
  readonly reason: string;
  readonly vms: readonly { readonly vmId: string; readonly stats: Record<string, unknown>; readonly shell: ShellCounters; readonly links: Record<string, LinkGateCounters> }[];
}

/** A parsed stdout line that is a FinalLine, as far as the launcher reads it: its kind and one entry per VM. */
export function isFinalLine(value: unknown): value is FinalLine {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.kind === 'final' && Array.isArray(v.vms) && v.vms.every((vm) => typeof vm === 'object' && vm !== null && typeof (vm as Record<string, unknown>).vmId === 'string');
}

const DEFAULT_REPORT_INTERVAL_MS = 1_000;

/** Between two attempts on one server after a lost connection (another server of the pool is tried at once). */
const SERVICE_RECONNECT_WAIT_MS = 250;

/**
 * How long opening the lease bucket may keep failing as unavailable before a
 * process gives up (below a launcher's 20 s wait for its ready line). On a
 * JetStream cluster creating a replicated bucket goes through the meta
 * leader and a placement; every agent and the failover service create it at
 * once when a fleet starts, and on a loaded machine one such call can take
 * longer than its 2 s request timeout.
 */
export const LEASE_OPEN_TIMEOUT_MS = 15_000;
const LEASE_OPEN_RETRY_MS = 250;

/**
 * Opens (creating it if missing) the lease bucket, retrying while JetStream
 * answers unavailable (a timeout, no leader yet) for up to `timeoutMs`; a
 * server without JetStream, or a closed connection, is one clear error at once.
 */
export async function openLeaseStore(nc: NatsConnection, bucket: string, natsUrl: string, replicas: 1 | 3 | 5 = 1, timeoutMs = LEASE_OPEN_TIMEOUT_MS): Promise<KvLeaseStore> {
  const startMs = performance.now();
  const deadline = startMs + timeoutMs;
  let attempts = 0;
  for (;;) {
    attempts++;
    try {
      return await KvLeaseStore.open(nc, { bucket, replicas });
    } catch (err) {
      if (err instanceof jserrors.JetStreamNotEnabled) {
        throw new LeaseStoreUnavailableError(`cannot open the lease bucket ${bucket}: the NATS server at ${natsUrl} does not run JetStream (start nats-server with -js)`, { cause: err });
      }
      if (!(err instanceof LeaseStoreUnavailableError)) throw err;
      if (nc.isClosed() || performance.now() + LEASE_OPEN_RETRY_MS >= deadline) {
        const cluster = replicas > 1 ? `, and ${replicas} replicas a JetStream cluster of at least ${replicas} servers` : '';
        throw new LeaseStoreUnavailableError(
          `cannot open the lease bucket ${bucket} on NATS at ${natsUrl} (${err.message}; ${attempts} attempt(s) in ${((performance.now() - startMs) / 1000).toFixed(1)} s); the servers need JetStream (nats-server -js)${cluster}`,
          { cause: err },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, LEASE_OPEN_RETRY_MS));
    }
  }
}

/** The largest bus message a VM's services send: a checkpoint chunk in its envelope, or a batch of a turn's messages. */
export function largestMessageBytes(configs: readonly RunConfig[]): number {
  return Math.max(BATCH_MAX_BYTES, ...configs.map((c) => c.checkpoint.chunkBytes)) + CHUNK_ENVELOPE_BYTES;
}

/** A stop drains what its services sent for this long at most, then closes: with the server gone, a drain waits for a reconnect that may never come. */
const DRAIN_TIMEOUT_MS = 2_000;

async function drainWithin(nc: NatsConnection, ms: number, logger: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(true), ms);
  });
  try {
    if (await Promise.race([nc.drain().then(() => false), timedOut])) {
      logger.warn({ event: 'nats.drain_timeout', ms }, `the connection did not drain within ${ms} ms; closed (what it still held is lost)`);
      await nc.close();
    }
  } catch (cause) {
    logger.warn({ event: 'nats.drain_failed', err: String(cause) }, 'drain failed; closing');
    await nc.close().catch(() => undefined);
  } finally {
    clearTimeout(timer);
  }
}

/** A server whose max_payload is below the largest message would refuse it mid-run: refuse to start instead. */
function checkMaxPayload(nc: NatsConnection, natsUrl: string, configs: readonly RunConfig[]): void {
  const maxPayload = nc.info?.max_payload;
  const needed = largestMessageBytes(configs);
  if (maxPayload === undefined || maxPayload >= needed) return;
  const chunkBytes = Math.max(...configs.map((c) => c.checkpoint.chunkBytes));
  throw new TransportError(`the NATS server at ${natsUrl} takes messages of up to ${maxPayload} B (max_payload), and a checkpoint chunk needs ${needed} B (checkpoint.chunkBytes ${chunkBytes} + ${CHUNK_ENVELOPE_BYTES} B of envelope): raise the server's max_payload or lower checkpoint.chunkBytes`);
}

/**
 * A host name as the configuration's hosts are: it is a subject token, so a
 * space, a dot or a wildcard would make subjects that NATS refuses, or that
 * match every host's.
 */
export function checkHostName(host: string | null): void {
  if (host === null) return;
  const parsed = hostNameSchema.safeParse(host);
  if (!parsed.success) throw new ConfigError(`--host ${JSON.stringify(host)}: ${parsed.error.issues[0]?.message ?? 'not a host name'}`);
}

/**
 * Runs one service for each of a process's VMs on one NATS connection: a
 * shell per VM, reports on specula.<vm>.report every interval and at the
 * end, a ready line and a final line on stdout. Stops on SIGTERM/SIGINT,
 * `exitAfterS` or `signal`: every shell stops, the final reports go out, then
 * the connection drains.
 */
export async function runServiceProcess(def: ServiceDefinition, options: ServiceProcessOptions): Promise<FinalLine> {
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const host = options.host;
  checkHostName(host);
  const needsHost = def.placement === 'host' || (def.placement === 'replicated' && options.configs.some((c) => c.mode !== 'native'));
  if (needsHost && host === null) throw new ConfigError(`the ${def.name} service runs on a host: give --host`);
  if (options.configs.length === 0) throw new ConfigError('no VM to serve');
  if (needsHost && host !== null) {
    // The failover service takes heartbeats from the configured hosts alone: one outside the list would wait for a role forever.
    for (const c of options.configs) {
      const hosts = [c.hosts.primary, c.hosts.backup, ...c.hosts.spares];
      if (!hosts.includes(host)) throw new ConfigError(`--host ${host}: not a host of ${c.vmId}, whose hosts are ${hosts.join(', ')} (hosts.primary, hosts.backup, hosts.spares, or --primary-host, --backup-host, --spare-hosts)`);
    }
  }
  // Configuration errors before any connection.
  const clock: Clock = def.clock === 'wall' ? wallClock() : monotonicClock();
  const sharedTracing = options.group?.tracing ?? null;
  const tracing = sharedTracing !== null || tracingWanted(process.env, options.trace?.enabled ?? false);
  const rate = options.trace?.segmentSampleRate ?? DEFAULT_TRACE_SAMPLE_RATE;
  const configs = options.configs.map((c) => parseConfig(runConfigSchema, { ...c, tracing: tracing ? { segmentSampleRate: rate, epochs: true } : { segmentSampleRate: 0, epochs: false } }));
  const instances = configs.map((config) => {
    if (def.leases) assertLeaseKey(config.vmId);
    return { config, instance: def.build(config, needsHost ? host : null, clock) };
  });
  const vms = instances.map((i) => i.config.vmId);
  const logger = options.logger ?? createLogger({ role: def.name, host, vms });
  let shells: NatsShell[] = [];
  let ready = false;
  const member: ServiceMember = {
    service: def.name,
    reports: () => instances.flatMap(({ config, instance }, i) => (shells[i] === undefined ? [] : [{ vmId: config.vmId, epochMs: config.epochMs, stats: instance.report(), shell: shells[i].counters, links: shells[i].linksCounters }])),
    ready: () => ready && shells.every((sh) => sh.serving),
  };
  options.group?.join(member);
  const observability = await startObservability({
    service: def.name,
    host,
    vms,
    logger,
    ...(options.healthPort === undefined ? {} : { healthPort: options.healthPort }),
    tracing: tracing && sharedTracing === null,
    reports: member.reports,
    ready: member.ready,
  });
  const otel = sharedTracing ?? observability.otel;
  const spanService: Readonly<Record<string, string>> = sharedTracing === null ? {} : { 'specula.service': def.name };
  try {
    return await serve();
  } finally {
    await observability.close();
  }

  async function serve(): Promise<FinalLine> {
    // Every server given (a comma-separated list) is in the pool; a lost connection is retried forever, on
    // every server of the pool: a service's state (a backup image, a speculative buffer) is worth keeping
    // through an outage, and leases and release permits keep a cut-off process from doing harm meanwhile.
    const name = `specula-${def.name}${host === null ? '' : `-${host}`}-${vms[0]}${vms.length > 1 ? `+${vms.length - 1}` : ''}`;
    const nc = await connectNats({ servers: options.natsUrl, name, maxReconnectAttempts: -1, reconnectTimeWaitMs: SERVICE_RECONNECT_WAIT_MS });
    // The control plane's own connection (NatsShellOptions.controlConnection): a status report must not wait behind checkpoint data.
    let control: NatsConnection | null = null;
    let leaseStore: LeaseStore | undefined;
    try {
      checkMaxPayload(nc, options.natsUrl, instances.map((i) => i.config));
      control = await connectNats({ servers: options.natsUrl, name: `${name}-control`, maxReconnectAttempts: -1, reconnectTimeWaitMs: SERVICE_RECONNECT_WAIT_MS });
      if (def.leases) leaseStore = options.leaseStore ?? (await openLeaseStore(control, options.leaseBucket ?? LEASE_BUCKET, options.natsUrl, options.leaseReplicas ?? 1));
    } catch (err) {
      await Promise.all([nc.close().catch(() => undefined), control?.close().catch(() => undefined)]);
      throw err;
    }
    const controlConnection = control;
    const wall = wallClock();
    const incarnation = wall.nowUs();
    shells = instances.map(({ config, instance }) => {
      const s = subjects(config.vmId);
      return new NatsShell(instance.core, nc, {
        logger: vmLogger(logger, vms, config.vmId),
        clock,
        ownsConnection: false,
        controlConnection,
        ...(instance.inboundLinks ? { inboundLinks: instance.inboundLinks } : {}),
        ...(leaseStore ? { leaseStore } : {}),
        ...(instance.done ? { afterInput: () => void (instances.every((i) => i.instance.done?.() ?? false) && stop('done')) } : {}),
        stamp: stampFor(config, host),
        ...(otel !== null ? { onSpan: (span: SpanRecord, c: Clock) => otel.record(span, (us) => c.toUnixUs(us), instance.role ? { ...spanService, 'specula.role': instance.role() } : spanService), propagation: otel.propagation(config.vmId, tracingOptionsFromConfig(config).sampler, s.wireOut) } : {}),
      });
    });
    const processStats = new ProcessStats(options.group?.services ?? [def.name]);
    const reportCounters: ReportCounters = { reportsPublished: 0, reportPublishErrors: 0, reportsTooLarge: 0, reportsWhileDisconnected: 0 };
    const maxPayloadBytes = nc.info?.max_payload ?? Infinity;
    const publishReports = (final: boolean) => {
      if (nc.isClosed()) return;
      // One reading per round of reports: every VM's report of this process carries the same.
      const processReading = processStats.read();
      instances.forEach(({ config, instance }, i) => {
        if (!shells[i]!.dataConnected) {
          // The shell drops its own publishes the same way (NatsShellCounters.publishesWhileDisconnected); the next
          // report after the reconnect carries the counters, and the final line on stdout has them all.
          reportCounters.reportsWhileDisconnected++;
          return;
        }
        const report = (stats: Record<string, unknown>): Uint8Array => {
          const msg: ServiceReport = { type: 'serviceReport', vmId: config.vmId, host: host ?? '', service: def.name, incarnation, atUs: wall.nowUs(), final, statsJson: JSON.stringify({ ...stats, shell: shells[i]!.counters, busHopUs: shells[i]!.busHopUs, linkLateUs: shells[i]!.linkLateUs, links: shells[i]!.linksCounters, reports: reportCounters, process: processReading }) };
          return encode(msg);
        };
        let data = report(instance.report(final));
        if (data.length > maxPayloadBytes) {
          // The server would refuse it: the report goes without what grows with the run, and says so.
          reportCounters.reportsTooLarge++;
          if (reportCounters.reportsTooLarge === 1) logger.warn({ event: 'report.too_large', vm: config.vmId, bytes: data.length, maxPayloadBytes }, 'a report outgrew the server\'s max_payload: it goes without its final-only fields (counted in reports.reportsTooLarge)');
          data = report(instance.report(false));
        }
        try {
          nc.publish(subjects(config.vmId).report, data);
          reportCounters.reportsPublished++;
        } catch (cause) {
          reportCounters.reportPublishErrors++;
          if (reportCounters.reportPublishErrors === 1) logger.warn({ event: 'report.publish_failed', vm: config.vmId, err: String(cause) }, 'a report could not be published (counted in reports.reportPublishErrors; the final line on stdout still has the figures)');
        }
      });
    };
    let reason = 'closed';
    let stopping: Promise<void> | null = null;
    const reporter = setInterval(() => publishReports(false), options.reportIntervalMs ?? DEFAULT_REPORT_INTERVAL_MS);
    const stop = (why: string): Promise<void> => {
      stopping ??= (async () => {
        reason = why;
        // No periodic report after the final one: it would come while the connection drains, and be refused.
        clearInterval(reporter);
        await Promise.all(shells.map((sh) => sh.stop(why)));
        publishReports(true);
        processStats.stop();
        await Promise.all([nc, controlConnection].map((c) => drainWithin(c, DRAIN_TIMEOUT_MS, logger)));
      })();
      return stopping;
    };
    const removeSignals = drainOnSignals((signal) => stop(signal));
    // Aborted for a signal (a group's members take theirs together): the signal is the reason.
    const abortReason = (): string => (typeof options.signal?.reason === 'string' ? options.signal.reason : 'abort');
    const onAbort = () => void stop(abortReason());
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const lifetime = options.exitAfterS === undefined ? null : setTimeout(() => void stop('lifetime'), options.exitAfterS * 1000);
    let failure: unknown = null;
    try {
      if (options.signal?.aborted) await stop(abortReason());
      else {
        try {
          // A signal while the shells start stops them all (the ones not started yet stay so); a shell whose core failed
          // on START ends the start-up, and its failure, awaited below, the process.
          for (const sh of shells) {
            if (stopping !== null) break;
            await sh.start();
            if (sh.state === 'failed') break;
          }
        } catch (err) {
          // A shell that could not start (its flush failed) failed: the others and both connections go with it, so
          // that the process ends instead of holding reconnecting connections open.
          await stop('failed');
          throw err;
        }
        if (stopping === null && shells.every((sh) => sh.state === 'running')) {
          ready = true;
          write(JSON.stringify({ kind: 'ready', service: def.name, host, vms, pid: process.pid } satisfies ReadyLine));
        }
      }
      // Every shell ends when stop() stops it; one that fails (its core threw, the connection closed) takes the process down.
      await Promise.all(shells.map((sh) => sh.done)).catch((err: unknown) => {
        failure = err;
      });
      await stop(failure === null ? reason : 'failed');
    } finally {
      clearInterval(reporter);
      removeSignals();
      options.signal?.removeEventListener('abort', onAbort);
      if (lifetime) clearTimeout(lifetime);
    }
    const final: FinalLine = { kind: 'final', service: def.name, host, reason, vms: instances.map(({ config, instance }, i) => ({ vmId: config.vmId, stats: instance.report(true), shell: shells[i]!.counters, links: shells[i]!.linksCounters })) };
    write(JSON.stringify(final));
    if (failure !== null) throw failure;
    return final;
  }
}

/**
 * What a process stamps with its host and clock. Output, for the permit
 * check; acknowledgements and commits, so that an auditor can tell an effect
 * that overtook its cause on the way from one published before it; and
 * whatever crosses an emulated link (the wire both ways, checkpoint data), so
 * that the receiver's link starts at the send. The client and a native guest
 * have no host.
 */
function stampFor(config: RunConfig, host: string | null): { host: string | null; subjects: ReadonlySet<string> } {
  const s = subjects(config.vmId);
  const wire = [s.wireOut, s.wireIn];
  if (host === null) return { host, subjects: new Set(wire) }; // the client, and a native guest
  return { host, subjects: new Set([...wire, s.ckptAck, s.host(host).commit, ...topologyOf(config).hosts.map((h) => s.ckptData(h))]) };
}
