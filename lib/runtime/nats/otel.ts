/**
 * Spans of a service process to OpenTelemetry: the cores' span records
 * become OTel spans with the ids every process derives alike
 * (lib/tracing/ids.ts), exported by the OTel Node SDK as the standard
 * OTEL_* variables say (OTLP over http/protobuf to
 * OTEL_EXPORTER_OTLP_ENDPOINT by default).
 */
import { DiagLogLevel, ROOT_CONTEXT, SpanKind, TraceFlags, diag, propagation, trace, type HrTime, type Link } from '@opentelemetry/api';
import type { Logger } from './logger.js';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { RandomIdGenerator } from '@opentelemetry/sdk-trace-base';
import type { WireMessage } from '../../codec/messages.js';
import { collect } from '../../tracing/collector.js';
import { spanIdOf, traceIdOf } from '../../tracing/ids.js';
import type { SpanName, SpanRecord, TraceKey } from '../../tracing/model.js';
import type { Sampler } from '../../tracing/sampling.js';
import { LogThrottle } from './log-throttle.js';

/**
 * Hands the SDK the ids of the span about to start: a span's id is derived
 * from what it traces, not drawn at random, so that services in other
 * processes name it as their spans' parent without being told.
 */
class DerivedIds extends RandomIdGenerator {
  next: { traceId: string; spanId: string } | null = null;
  readonly #random = new RandomIdGenerator();
  override generateTraceId = (): string => this.next?.traceId ?? this.#random.generateTraceId();
  override generateSpanId = (): string => this.next?.spanId ?? this.#random.generateSpanId();
}

const hrTime = (unixUs: number): HrTime => [Math.floor(unixUs / 1e6), Math.round((unixUs % 1e6) * 1000)];

/**
 * W3C trace context on the bus: a message that carries a sampled byte gets
 * a `traceparent` header naming its trace and the span it continues (the
 * guest's emit on tx.data, the hold on wire.out), through the OTel
 * propagation API. Receivers derive the same ids from the message and count
 * a header that names another trace: services that disagree on the sampling.
 */
export interface TracePropagation {
  /** The traceparent for a message about to be published, or null. */
  inject(subject: string, msg: WireMessage): string | null;
  /** Whether the header names the trace of one of the messages it came with. */
  matches(msgs: readonly WireMessage[], traceparent: string): boolean;
}

function sampledKey(vmId: string, sampler: Sampler, msg: WireMessage): TraceKey | null {
  if (msg.type !== 'segment' || msg.payload.length === 0) return null;
  const offset = sampler.sampledIn(msg.connId, msg.seq - 1, msg.seq - 1 + msg.payload.length);
  return offset === null ? null : { kind: 'segment', vmId, connId: msg.connId, offset };
}

export function tracePropagation(vmId: string, sampler: Sampler, wireOutSubject: string): TracePropagation {
  return {
    inject(subject, msg) {
      const key = sampledKey(vmId, sampler, msg);
      if (key === null) return null;
      const sender: SpanName = subject === wireOutSubject ? 'hold' : 'emit';
      const carrier: Record<string, string> = {};
      propagation.inject(trace.setSpanContext(ROOT_CONTEXT, { traceId: traceIdOf(key), spanId: spanIdOf(key, { name: sender, term: (msg as { term: number }).term }), traceFlags: TraceFlags.SAMPLED }), carrier);
      return carrier.traceparent ?? null;
    },
    matches(msgs, traceparent) {
      const traceId = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, { traceparent }))?.traceId;
      return traceId !== undefined && msgs.some((m) => {
        const key = sampledKey(vmId, sampler, m);
        return key !== null && traceIdOf(key) === traceId;
      });
    },
  };
}

export interface OtelTracing {
  /** One span of a core; `toUnixUs` turns the core's clock reading into Unix time; `extra`: attributes of the moment (the service's role). */
  record(span: SpanRecord, toUnixUs: (us: number) => number, extra?: Readonly<Record<string, string>>): void;
  /** Spans handed to the SDK. */
  readonly spans: number;
  /** Trace context for the messages of one VM's shell. */
  propagation(vmId: string, sampler: Sampler, wireOutSubject: string): TracePropagation;
  /** Flushes what is batched and stops the exporter. */
  shutdown(): Promise<void>;
}

export interface OtelProcess {
  /** service.name: the service (guest, acker, …). */
  readonly service: string;
  readonly host: string | null;
  readonly vms: readonly string[];
  /** Where the SDK's own warnings and errors go (an exporter that cannot reach its collector). */
  readonly logger: Logger;
}

/** The SDK's complaints (an unreachable collector fails every batch) are logged at most this often. */
const DIAG_LOG_INTERVAL_MS = 60_000;

/** Starts the OTel SDK for a service process; the resource says which service, host and VMs it is. */
export function startOtelTracing(p: OtelProcess): OtelTracing {
  const throttle = new LogThrottle(1, DIAG_LOG_INTERVAL_MS);
  const report = (level: 'warn' | 'error') => (message: string, ...args: unknown[]) => {
    const suppressed = throttle.admit('otel.diag');
    if (suppressed === null) return;
    p.logger[level]({ event: 'otel.diag', suppressedSinceLast: suppressed, detail: args.map(String).join(' ').slice(0, 500) }, `tracing: ${message}`);
  };
  const quiet = () => undefined;
  diag.setLogger({ error: report('error'), warn: report('warn'), info: quiet, debug: quiet, verbose: quiet }, DiagLogLevel.WARN);
  const ids = new DerivedIds();
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      'service.name': p.service,
      'service.namespace': 'specula',
      // host.name may be replaced by the SDK's host detector (the container's name); specula.host is the protocol's host.
      ...(p.host === null ? {} : { 'host.name': p.host, 'specula.host': p.host }),
      'specula.vms': p.vms.join(','),
    }),
    idGenerator: ids,
    instrumentations: [],
    // Traces only: metrics are Prometheus's on the health port, logs are pino's.
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();
  const tracer = trace.getTracer('specula');
  let spans = 0;
  return {
    record(span, toUnixUs, extra = {}) {
      const c = collect(span, p.service, p.host);
      const parent = c.parentSpanId === null ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, { traceId: c.traceId, spanId: c.parentSpanId, traceFlags: TraceFlags.SAMPLED, isRemote: true });
      const links: Link[] = c.links.map((l) => ({ context: { traceId: l.traceId, spanId: l.spanId, traceFlags: TraceFlags.SAMPLED, isRemote: true } }));
      ids.next = { traceId: c.traceId, spanId: c.spanId };
      try {
        tracer.startSpan(c.name, { kind: SpanKind.INTERNAL, startTime: hrTime(toUnixUs(c.startUs)), attributes: { ...c.attributes, ...extra }, links }, parent).end(hrTime(toUnixUs(c.endUs)));
      } finally {
        ids.next = null;
      }
      spans++;
    },
    get spans() {
      return spans;
    },
    propagation: tracePropagation,
    shutdown: () => sdk.shutdown(),
  };
}
