import { spanIdOf, traceIdOf } from './ids.js';
import type { SpanAttributes, SpanRecord, TraceKey } from './model.js';

/** A span with its ids and who reported it: what the exporters write. */
export interface CollectedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | null;
  readonly name: string;
  /** The reporting service (guest, acker, …) and the host it runs on (null: the client, the failover service). */
  readonly service: string;
  readonly host: string | null;
  readonly startUs: number;
  readonly endUs: number;
  readonly attributes: SpanAttributes;
  readonly links: readonly { readonly traceId: string; readonly spanId: string }[];
}

/** The attributes every span of a trace carries: what identifies it (a byte of a stream, an epoch). */
export function keyAttributes(key: TraceKey): SpanAttributes {
  return key.kind === 'segment' ? { 'specula.vm': key.vmId, 'specula.trace': 'segment', 'specula.conn': key.connId, 'specula.offset': key.offset } : { 'specula.vm': key.vmId, 'specula.trace': 'epoch', 'specula.epoch': key.epoch };
}

/** A span record with the ids every process derives alike. */
export function collect(span: SpanRecord, service: string, host: string | null): CollectedSpan {
  return {
    traceId: traceIdOf(span.trace),
    spanId: spanIdOf(span.trace, span.name, span.instance ?? 0),
    parentSpanId: span.parent === null ? null : spanIdOf(span.trace, span.parent),
    name: span.name,
    service,
    host,
    startUs: span.startUs,
    endUs: span.endUs,
    attributes: { ...keyAttributes(span.trace), ...span.attributes, ...(span.instance === undefined ? {} : { 'specula.instance': span.instance }) },
    links: (span.links ?? []).map((l) => ({ traceId: traceIdOf(l.trace), spanId: spanIdOf(l.trace, l.name) })),
  };
}

/** The spans of a run, up to `maxSpans`; more are counted, not kept. */
export class SpanCollector {
  readonly #spans: CollectedSpan[] = [];
  dropped = 0;

  constructor(readonly maxSpans: number) {}

  add(span: SpanRecord, service: string, host: string | null): void {
    if (this.#spans.length >= this.maxSpans) {
      this.dropped++;
      return;
    }
    this.#spans.push(collect(span, service, host));
  }

  get spans(): readonly CollectedSpan[] {
    return this.#spans;
  }
}
