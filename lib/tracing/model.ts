/**
 * The span model, as cores see it. A core never talks to a tracer: it
 * returns `span` effects, each naming the trace it belongs to by the
 * protocol's own identity (a byte of a connection's stream, an epoch of a
 * VM). Trace and span ids are derived from that identity (`ids.ts`), so
 * every service, in any process, names the same trace and the same parent
 * without carrying anything: a segment rebuilt by the acker, resent after a
 * loss, or replayed by a promoted backup is still found in its trace.
 * docs/tracing.md shows the spans of each trace.
 */

/** Which trace: one sampled byte of a connection's output (its packet's path), or one epoch of a VM. */
export type TraceKey = { readonly kind: 'segment'; readonly vmId: string; readonly connId: number; readonly offset: number } | { readonly kind: 'epoch'; readonly vmId: string; readonly epoch: number };

/** The steps of a segment's trace, in path order. */
export const SEGMENT_SPANS = ['emit', 'guest.retransmit', 'spec-ack', 'buffer', 'replicate', 'hold', 'wire.release', 'retransmit', 'replay', 'deliver'] as const;
/** The steps of an epoch's trace. */
export const EPOCH_SPANS = ['epoch', 'pause', 'copy', 'transfer', 'apply', 'ack', 'commit'] as const;
export type SpanName = (typeof SEGMENT_SPANS)[number] | (typeof EPOCH_SPANS)[number];

export type SpanAttributes = Readonly<Record<string, string | number | boolean>>;

/** A finished span, as a core reports it: times on the core's clock, µs. */
export interface SpanRecord {
  readonly trace: TraceKey;
  readonly name: SpanName;
  /** Several spans of one name in a trace (each retransmission): 0, 1, 2, … */
  readonly instance?: number;
  /** The step this one follows from, in the same trace (its first instance); none for the root. */
  readonly parent: SpanName | null;
  readonly startUs: number;
  readonly endUs: number;
  readonly attributes?: SpanAttributes;
  /** Spans of other traces this one waited for (a segment's hold: its epoch's commit). */
  readonly links?: readonly { readonly trace: TraceKey; readonly name: SpanName }[];
}

/** The root span of each kind of trace. */
export const ROOT_SPAN: Record<TraceKey['kind'], SpanName> = { segment: 'emit', epoch: 'epoch' };
