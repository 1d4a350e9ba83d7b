/**
 * Reads a trace file back (Jaeger's JSON or OTLP/JSON, as `export.ts`
 * writes them and as Jaeger's UI downloads them) into collected spans.
 */
import { ConfigError } from '../errors.js';
import type { CollectedSpan } from './collector.js';

type Value = string | number | boolean;
interface JaegerFile {
  data: { traceID: string; spans: { traceID: string; spanID: string; operationName: string; references?: { refType: string; traceID: string; spanID: string }[]; startTime: number; duration: number; tags?: { key: string; value: Value }[]; processID: string }[]; processes: Record<string, { serviceName: string; tags?: { key: string; value: Value }[] }> }[];
}
interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpFile {
  resourceSpans: { resource?: { attributes?: { key: string; value: OtlpValue }[] }; scopeSpans: { spans: { traceId: string; spanId: string; parentSpanId?: string; name: string; startTimeUnixNano: string | number; endTimeUnixNano: string | number; attributes?: { key: string; value: OtlpValue }[]; links?: { traceId: string; spanId: string }[] }[] }[] }[];
}

const otlpValue = (v: OtlpValue): Value => v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? v.boolValue ?? ''));
const usOfNanos = (n: string | number) => Number(BigInt(n) / 1000n);

function fromJaeger(file: JaegerFile): CollectedSpan[] {
  return file.data.flatMap((trace) =>
    trace.spans.map((s) => {
      const p = trace.processes[s.processID];
      const host = p?.tags?.find((t) => t.key === 'host.name')?.value;
      return {
        traceId: s.traceID,
        spanId: s.spanID,
        parentSpanId: s.references?.find((r) => r.refType === 'CHILD_OF')?.spanID ?? null,
        name: s.operationName,
        service: p?.serviceName ?? '?',
        host: typeof host === 'string' ? host : null,
        startUs: s.startTime,
        endUs: s.startTime + s.duration,
        attributes: Object.fromEntries((s.tags ?? []).map((t) => [t.key, t.value])),
        links: (s.references ?? []).filter((r) => r.refType === 'FOLLOWS_FROM').map((r) => ({ traceId: r.traceID, spanId: r.spanID })),
      };
    }),
  );
}

function fromOtlp(file: OtlpFile): CollectedSpan[] {
  return file.resourceSpans.flatMap((rs) => {
    const attrs = Object.fromEntries((rs.resource?.attributes ?? []).map((a) => [a.key, otlpValue(a.value)]));
    return rs.scopeSpans.flatMap((ss) =>
      ss.spans.map((s) => ({
        traceId: s.traceId,
        spanId: s.spanId,
        parentSpanId: s.parentSpanId !== undefined && s.parentSpanId !== '' ? s.parentSpanId : null,
        name: s.name,
        service: String(attrs['service.name'] ?? '?'),
        host: typeof attrs['host.name'] === 'string' ? attrs['host.name'] : null,
        startUs: usOfNanos(s.startTimeUnixNano),
        endUs: usOfNanos(s.endTimeUnixNano),
        attributes: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, otlpValue(a.value)])),
        links: s.links ?? [],
      })),
    );
  });
}

/** The spans of a Jaeger or OTLP JSON document; anything else is a ConfigError saying what was expected. */
export function readTraceFile(text: string, origin: string): CollectedSpan[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`${origin} is not JSON: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
  if (doc !== null && typeof doc === 'object' && Array.isArray((doc as JaegerFile).data)) return fromJaeger(doc as JaegerFile);
  if (doc !== null && typeof doc === 'object' && Array.isArray((doc as OtlpFile).resourceSpans)) return fromOtlp(doc as OtlpFile);
  throw new ConfigError(`${origin} is neither Jaeger's JSON ({"data": [...]}) nor OTLP/JSON ({"resourceSpans": [...]})`);
}
