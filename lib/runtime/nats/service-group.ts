import { ConfigError } from '../../errors.js';
import { startHealthServer, type HealthServer } from './health-server.js';
import type { ServiceMetrics } from './metrics.js';
import type { OtelTracing } from './otel.js';
import { createLogger, type Logger } from './logger.js';
import { drainOnSignals } from './signals.js';
import { tracingWanted } from './otel-env.js';
import { checkHostName, runServiceProcess, type FinalLine, type ServiceDefinition, type ServiceGroupMembership, type ServiceMember, type ServiceProcessOptions } from './service-process.js';

/**
 * Runs several services in one OS process, each exactly as it runs alone:
 * its own shells, its own two connections, its own ready, report and final
 * lines. They still talk to each other only over NATS; what they share is
 * the event loop, so a hop between them waits for one process instead of
 * two. One that fails (or a signal) stops them all.
 *
 * A health port serves the whole process: live while its event loop turns,
 * ready once every service serves, /metrics with a `service` label on each
 * series. Traces too are the process's: the OpenTelemetry SDK registers one
 * tracer provider per process, so its service.name is the group's
 * ("guest+checkpointer+netbuffer+acker") and each span says its service in
 * `specula.service`.
 */
export async function runServiceGroup(defs: readonly ServiceDefinition[], options: ServiceProcessOptions): Promise<FinalLine[]> {
  if (defs.length === 0) throw new ConfigError('no service to run');
  checkHostName(options.host);
  if (defs.length === 1) return [await runServiceProcess(defs[0]!, options)];
  const names = defs.map((d) => d.name);
  const repeated = names.find((n, i) => names.indexOf(n) !== i);
  if (repeated !== undefined) throw new ConfigError(`${repeated} is named twice: a process runs each service once`);
  if (names.includes('client')) throw new ConfigError('the client runs alone: it is the remote peer, not a service of a host');
  const members: ServiceMember[] = [];
  const { healthPort, ...memberOptions } = options;
  const vms = options.configs.map((c) => c.vmId);
  const label = names.join('+');
  const stopAll = new AbortController();
  const onOuterAbort = () => stopAll.abort();
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (options.signal?.aborted) stopAll.abort();
  // Each member takes SIGTERM once it is connected; one still connecting when it comes would miss it and run on alone.
  const removeSignals = drainOnSignals((signal) => {
    stopAll.abort(signal); // the reason each member's final line gives
    return Promise.resolve();
  });
  let probes: { close(): Promise<void> } | null = null;
  let tracing: OtelTracing | null = null;
  try {
    // Both up before the services connect, as a lone service's are.
    const logger = options.logger ?? createLogger({ role: label, host: options.host, vms });
    if (healthPort !== undefined) probes = await startGroupProbes(healthPort, names, options.host, vms, members, logger);
    if (tracingWanted(process.env, options.trace?.enabled ?? false)) tracing = (await import('./otel.js')).startOtelTracing({ service: label, host: options.host, vms, logger });
    const group: ServiceGroupMembership = { services: names, tracing, join: (m) => members.push(m) };
    const outcomes = await Promise.allSettled(
      defs.map((def) =>
        runServiceProcess(def, { ...memberOptions, signal: stopAll.signal, group }).catch((err: unknown) => {
          // One service down takes its process's others with it, as a crash would.
          stopAll.abort();
          throw err;
        }),
      ),
    );
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return outcomes.map((o) => (o as PromiseFulfilledResult<FinalLine>).value);
  } finally {
    removeSignals();
    options.signal?.removeEventListener('abort', onOuterAbort);
    await probes?.close();
    // The last batch of spans goes out before the process ends.
    await tracing?.shutdown().catch(() => undefined);
  }
}

/** One health server (and /metrics) for every service of the process. */
async function startGroupProbes(port: number, names: readonly string[], host: string | null, vms: readonly string[], members: readonly ServiceMember[], logger: Logger): Promise<{ close(): Promise<void> }> {
  const metrics: ServiceMetrics = (await import('./metrics.js')).startServiceMetrics({ service: names.join('+'), host, reports: () => members.flatMap((m) => m.reports().map((r) => ({ ...r, service: m.service }))) });
  let health: HealthServer;
  try {
    health = await startHealthServer(port, () => members.length === names.length && members.every((m) => m.ready()), () => ({ services: names, host, vms }), (req, res) => metrics.handle(req, res), (err) => logger.error({ event: 'health.error', err: err.message }, err.message));
  } catch (err) {
    await metrics.shutdown().catch(() => undefined);
    throw err;
  }
  return {
    async close() {
      await health.close();
      await metrics.shutdown().catch(() => undefined);
    },
  };
}
