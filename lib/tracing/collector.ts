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
    spanId: spanIdOf(span.trace, span),
    parentSpanId: span.parent === null ? null : spanIdOf(span.trace, span.parent),
    name: span.name,
    service,
    host,
    startUs: span.startUs,
    endUs: span.endUs,
    attributes: { ...keyAttributes(span.trace), 'specula.term': span.term, ...span.attributes, ...(span.instance === undefined ? {} : { 'specula.instance': span.instance }) },
    links: (span.links ?? []).map((l) => ({ traceId: traceIdOf(l.trace), spanId: spanIdOf(l.trace, l.span) })),
  };
}

/**
 * The spans of a run, up to `maxSpans`; more are counted, not kept. A run
 * keeps the records as the cores made them; ids and attributes are worked
 * out once, when the spans are read (after the run, for export).
 */
export class SpanCollector {
  readonly #records: { readonly span: SpanRecord; readonly service: string; readonly host: string | null }[] = [];
  #collected: CollectedSpan[] | null = null;
  dropped = 0;

  constructor(readonly maxSpans: number) {}

  add(span: SpanRecord, service: string, host: string | null): void {
    if (this.#records.length >= this.maxSpans) {
      this.dropped++;
      return;
    }
    this.#records.push({ span, service, host });
    this.#collected = null;
  }

  /** Spans kept so far. */
  get count(): number {
    return this.#records.length;
  }

  get spans(): readonly CollectedSpan[] {
    this.#collected ??= this.#records.map((r) => collect(r.span, r.service, r.host));
    return this.#collected;
  }
}
