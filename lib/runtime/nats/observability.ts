import { startHealthServer, type HealthServer } from './health-server.js';
import type { VmReport } from './metrics.js';
import type { OtelProcess, OtelTracing } from './otel.js';

/** What a service process serves beside its work: probes and metrics on one port, traces to OTLP. */
export interface Observability {
  /** The trace exporter, when this process traces. */
  readonly otel: OtelTracing | null;
  /** Stops the health server and the metrics, then flushes the last spans. */
  close(): Promise<void>;
}

/** Which process this is (as its traces say), and what it serves. */
export interface ObservabilityOptions extends OtelProcess {
  /** Probes and /metrics on this port; none: neither. */
  readonly healthPort?: number;
  readonly tracing: boolean;
  /** Every VM's report, for /metrics. */
  readonly reports: () => readonly VmReport[];
  /** Whether every VM is served (readiness). */
  readonly ready: () => boolean;
}

/**
 * Starts what a process needs to be watched: the OTel trace exporter (only
 * when tracing: the SDK is not even loaded otherwise), and, with a health
 * port, the HTTP server for probes and Prometheus. Up before the NATS
 * connection, so a liveness probe answers while it is made.
 */
export async function startObservability(o: ObservabilityOptions): Promise<Observability> {
  const otel = o.tracing ? (await import('./otel.js')).startOtelTracing({ service: o.service, host: o.host, vms: o.vms, logger: o.logger }) : null;
  const metrics = o.healthPort === undefined ? null : (await import('./metrics.js')).startServiceMetrics({ service: o.service, host: o.host, reports: o.reports });
  let health: HealthServer | null = null;
  try {
    if (o.healthPort !== undefined) health = await startHealthServer(o.healthPort, o.ready, () => ({ service: o.service, host: o.host, vms: o.vms }), metrics ? (req, res) => metrics.handle(req, res) : undefined, (err) => o.logger.error({ event: 'health.error', err: err.message }, err.message));
  } catch (err) {
    await metrics?.shutdown().catch(() => undefined);
    await otel?.shutdown().catch(() => undefined);
    throw err;
  }
  return {
    otel,
    async close() {
      await health?.close();
      await metrics?.shutdown().catch(() => undefined);
      // The last batch of spans goes out before the process ends.
      await otel?.shutdown().catch((err: unknown) => o.logger.warn({ event: 'otel.shutdown_failed', err: err instanceof Error ? err.message : String(err) }, 'traces not flushed'));
    },
  };
}
