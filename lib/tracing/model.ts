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

/**
 * One occurrence of a step in a trace. A step runs again after a failover
 * (the promoted guest sends the byte again, a new backup replicates it
 * again), so its fencing term is part of what names it; `site` is the host
 * where several hosts do the step in one term (successive backups);
 * `instance` numbers repeats on one service (retransmissions): 0, 1, 2, …
 */
export interface SpanRef {
  readonly name: SpanName;
  readonly term: number;
  readonly site?: string;
  readonly instance?: number;
}

/** A finished span, as a core reports it: times on the core's clock, µs. */
export interface SpanRecord extends SpanRef {
  readonly trace: TraceKey;
  /** The step this one follows from, in the same trace; none for a root. */
  readonly parent: SpanRef | null;
  readonly startUs: number;
  readonly endUs: number;
  readonly attributes?: SpanAttributes;
  /** Spans of other traces this one waited for (a segment's hold: its epoch's commit). */
  readonly links?: readonly { readonly trace: TraceKey; readonly span: SpanRef }[];
}

/** The root span of each kind of trace. */
export const ROOT_SPAN: Record<TraceKey['kind'], SpanName> = { segment: 'emit', epoch: 'epoch' };
