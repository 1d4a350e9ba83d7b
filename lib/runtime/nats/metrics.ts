/**
 * A service process's metrics through OpenTelemetry, read by Prometheus at
 * /metrics on the process's health port. The instruments observe what the
 * process already reports on the bus (each service its own counters), so a
 * scrape and a report always agree; each service exports what it has.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Attributes, type Meter, type ObservableResult } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationType, MeterProvider } from '@opentelemetry/sdk-metrics';
import { HISTOGRAM_RESOLUTION, type Histogram } from '../../results/histogram.js';
import type { ShellCounters } from './shell.js';
import type { LinkGateCounters } from './link-gate.js';

/** What one VM's service reports (its report() and its shell's counters). */
export interface VmReport {
  readonly vmId: string;
  /** The service, where one process runs several (its series then carry a `service` label). */
  readonly service?: string;
  readonly epochMs: number;
  readonly stats: Readonly<Record<string, unknown>>;
  readonly shell: ShellCounters;
  /** Its emulated links' counters by subject (none: no links). */
  readonly links?: Readonly<Record<string, LinkGateCounters>>;
}

export interface ServiceMetrics {
  /** Serves the Prometheus text format. */
  handle(req: IncomingMessage, res: ServerResponse): void;
  shutdown(): Promise<void>;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/** `key`, or the sum of every key that ends with it (staleTermDrops, staleTermRejections, …). */
function sumOf(stats: Readonly<Record<string, unknown>>, suffix: string): number | null {
  let total: number | null = null;
  for (const [k, v] of Object.entries(stats)) {
    const n = num(v);
    if (n !== null && k.toLowerCase().endsWith(suffix.toLowerCase())) total = (total ?? 0) + n;
  }
  return total;
}

/** An observable metric: its name, help, unit and how to read it from one VM's report (null: this service has none). */
interface Reading {
  readonly name: string;
  readonly help: string;
  readonly unit: string;
  readonly kind: 'counter' | 'gauge';
  readonly read: (r: VmReport) => number | null;
}

const READINGS: readonly Reading[] = [
  { name: 'specula_epoch_configured_seconds', help: 'Configured checkpoint epoch (the measured one: specula_epoch_length_seconds)', unit: 's', kind: 'gauge', read: (r) => r.epochMs / 1000 },
  { name: 'specula_checkpoints', help: 'Checkpoints committed on the backup', unit: '', kind: 'counter', read: (r) => num(r.stats.checkpoints) },
  { name: 'specula_checkpoint_bytes', help: 'Checkpoint bytes sent to the backup', unit: 'By', kind: 'counter', read: (r) => num(r.stats.checkpointBytesTotal) },
  { name: 'specula_checkpoint_pages', help: 'Guest pages captured into checkpoints', unit: '', kind: 'counter', read: (r) => num(r.stats.checkpointPagesSent) },
  { name: 'specula_pause_seconds', help: 'Time the guest spent paused for its checkpoints', unit: 's', kind: 'counter', read: (r) => (num(r.stats.pausedUsTotal) === null ? null : num(r.stats.pausedUsTotal)! / 1e6) },
  { name: 'specula_held_bytes', help: 'Output the netbuffer holds now', unit: 'By', kind: 'gauge', read: (r) => num(r.stats.heldBytes) },
  { name: 'specula_spec_buffer_bytes', help: 'Bytes in the acker\'s speculative buffer now', unit: 'By', kind: 'gauge', read: (r) => num(r.stats.specBufferBytes) },
  { name: 'specula_backup_staged_bytes', help: 'Checkpoint bytes a backup holds in epochs it has not applied yet', unit: 'By', kind: 'gauge', read: (r) => num(r.stats.stagedBytes) },
  { name: 'specula_backup_staging_drops', help: 'Checkpoint parts a backup dropped at its bound on staged bytes (the primary resends them)', unit: '', kind: 'counter', read: (r) => num(r.stats.stagingDrops) },
  { name: 'specula_goodput_bits_per_second', help: 'Goodput the client received over its transfer', unit: 'bit/s', kind: 'gauge', read: (r) => num(r.stats.goodputBitsPerSec) },
  { name: 'specula_retransmits', help: 'TCP retransmissions (the guest\'s, or the acker\'s wire side)', unit: '', kind: 'counter', read: (r) => num(r.stats.retransmits) },
  { name: 'specula_stale_term_rejections', help: 'Messages of an older or another term dropped', unit: '', kind: 'counter', read: (r) => sumOf(r.stats, 'staleTermDrops') },
  { name: 'specula_failovers', help: 'Backups promoted by the failover service', unit: '', kind: 'counter', read: (r) => num(r.stats.failovers) },
  { name: 'specula_reprotections', help: 'Spares that joined as the new backup', unit: '', kind: 'counter', read: (r) => num(r.stats.reprotections) },
  { name: 'specula_bus_messages_out', help: 'Messages published on NATS', unit: '', kind: 'counter', read: (r) => r.shell.messagesOut },
  { name: 'specula_bus_decode_errors', help: 'Bus messages that did not decode, dropped', unit: '', kind: 'counter', read: (r) => r.shell.decodeErrors },
  { name: 'specula_link_overflow_drops', help: 'Messages an emulated link dropped at its bound (its queue of messages or of bytes was full)', unit: '', kind: 'counter', read: (r) => (r.links === undefined ? null : Object.values(r.links).reduce((n, l) => n + l.overflowDrops, 0)) },
  { name: 'specula_bus_permission_violations', help: 'Publishes and subscriptions NATS refused to this process', unit: '', kind: 'counter', read: (r) => r.shell.permissionViolations },
];

/** A series' labels: its VM, and its service where a process runs several. */
const labelsOf = (r: VmReport): Attributes => (r.service === undefined ? { vm: r.vmId } : { vm: r.vmId, service: r.service });

function observe(meter: Meter, reading: Reading, reports: () => readonly VmReport[]): void {
  const callback = (result: ObservableResult<Attributes>) => {
    for (const r of reports()) {
      const v = reading.read(r);
      if (v !== null) result.observe(v, labelsOf(r));
    }
  };
  // Units are in the names, as Prometheus has them (_seconds, _bytes).
  const options = reading.unit === '' ? { description: reading.help } : { description: reading.help, unit: reading.unit };
  if (reading.kind === 'counter') meter.createObservableCounter(reading.name, options).addCallback(callback);
  else meter.createObservableGauge(reading.name, options).addCallback(callback);
}

/** Histograms a checkpointer reports (log buckets of µs), each fed into an OTel histogram: its report key, name, help and boundaries (s). */
const HISTOGRAMS = [
  { key: 'commitLatencyUs', name: 'specula_commit_latency_seconds', help: 'From an epoch\'s pause to its commit', boundaries: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1] },
  { key: 'epochLengthUs', name: 'specula_epoch_length_seconds', help: 'Each epoch as it ran, pause to next pause', boundaries: [0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.5, 1] },
] as const;

/** Histogram samples one scrape records at most; what is left is recorded by the next scrapes. */
export const MAX_SAMPLES_PER_SCRAPE = 20_000;

/**
 * Metrics of a process: the observable readings above, and the commit
 * latency and epoch length as OTel histograms fed from the checkpointer's
 * reported histograms (each new sample once, at its bucket's value: within 2%).
 */
export function startServiceMetrics(p: { readonly service: string; readonly host: string | null; readonly reports: () => readonly VmReport[] }): ServiceMetrics {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': p.service, 'service.namespace': 'specula', ...(p.host === null ? {} : { 'specula.host': p.host }) }),
    readers: [exporter],
    views: HISTOGRAMS.map((h) => ({ instrumentName: h.name, aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: [...h.boundaries] } } })),
  });
  const meter = provider.getMeter('specula');
  for (const reading of READINGS) observe(meter, reading, p.reports);
  const feeds = HISTOGRAMS.map((h) => ({ key: h.key, instrument: meter.createHistogram(h.name, { description: h.help, unit: 's' }), recorded: new Map<string, Histogram>() }));
  // Per series (service and VM), the counts of each reported histogram already recorded. OTel records one sample a
  // call: a scrape records at most MAX_SAMPLES_PER_SCRAPE, and the rest at the next ones, so that the first scrape of
  // a process that ran for hours does not hold its event loop (and its heartbeats) for seconds.
  const recordNewSamples = () => {
    let budget = MAX_SAMPLES_PER_SCRAPE;
    for (const r of p.reports()) {
      for (const feed of feeds) {
        const h = r.stats[feed.key] as Histogram | undefined;
        if (h === undefined) continue;
        const seriesKey = `${r.service ?? ''}/${r.vmId}`;
        const seen = feed.recorded.get(seriesKey) ?? {};
        for (const [bucket, count] of Object.entries(h)) {
          const already = seen[bucket] ?? 0;
          if (count < already) {
            seen[bucket] = count; // a restarted service's histogram starts over
            continue;
          }
          const fresh = Math.min(count - already, budget);
          const b = Number(bucket);
          // The bucket's lower edge, (1 + HISTOGRAM_RESOLUTION)^b µs; 0 for the zero bucket.
          const seconds = b < 0 ? 0 : Math.pow(1 + HISTOGRAM_RESOLUTION, b) / 1e6;
          for (let i = 0; i < fresh; i++) feed.instrument.record(seconds, labelsOf(r));
          seen[bucket] = already + fresh;
          budget -= fresh;
        }
        feed.recorded.set(seriesKey, seen);
      }
    }
  };
  return {
    handle(req, res) {
      recordNewSamples();
      exporter.getMetricsRequestHandler(req, res);
    },
    shutdown: () => provider.shutdown(),
  };
}
