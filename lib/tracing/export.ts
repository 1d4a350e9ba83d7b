/**
 * A run's spans as files a user opens without a server: Jaeger's JSON (what
 * its UI's "JSON File" upload reads) and OTLP/JSON (what an OpenTelemetry
 * collector's file receiver, or `otel-cli`, reads). Times are µs from the
 * run's start, as Unix time: a simulated run starts on 1 January 1970.
 */
import type { CollectedSpan } from './collector.js';
import { groupBy } from './group.js';

type Value = string | number | boolean;

const tagType = (v: Value) => (typeof v === 'boolean' ? 'bool' : typeof v === 'number' ? (Number.isInteger(v) ? 'int64' : 'float64') : 'string');

/** Jaeger's JSON: one entry per trace, each with its processes (service and host). */
export function toJaegerJson(spans: readonly CollectedSpan[]): { data: unknown[] } {
  const byTrace = groupBy(spans, (s) => s.traceId);
  const data = [...byTrace.entries()].map(([traceID, members]) => {
    const processes = new Map<string, { id: string; serviceName: string; host: string | null }>();
    const processOf = (s: CollectedSpan) => {
      const key = `${s.service}@${s.host ?? ''}`;
      let p = processes.get(key);
      if (p === undefined) {
        p = { id: `p${processes.size + 1}`, serviceName: s.service, host: s.host };
        processes.set(key, p);
      }
      return p.id;
    };
    return {
      traceID,
      spans: members.map((s) => ({
        traceID,
        spanID: s.spanId,
        operationName: s.name,
        references: [...(s.parentSpanId === null ? [] : [{ refType: 'CHILD_OF', traceID, spanID: s.parentSpanId }]), ...s.links.map((l) => ({ refType: 'FOLLOWS_FROM', traceID: l.traceId, spanID: l.spanId }))],
        startTime: s.startUs,
        duration: s.endUs - s.startUs,
        tags: Object.entries(s.attributes).map(([key, value]) => ({ key, type: tagType(value), value })),
        logs: [],
        processID: processOf(s),
        warnings: null,
      })),
      processes: Object.fromEntries([...processes.values()].map((p) => [p.id, { serviceName: p.serviceName, tags: p.host === null ? [] : [{ key: 'host.name', type: 'string', value: p.host }] }])),
      warnings: null,
    };
  });
  return { data };
}

const otlpValue = (v: Value) => (typeof v === 'boolean' ? { boolValue: v } : typeof v === 'number' ? (Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v }) : { stringValue: v });
const nanos = (us: number) => `${BigInt(Math.round(us)) * 1000n}`;

/** OTLP/JSON: one resource per service and host, ids in hex as the OTLP JSON mapping writes them. */
export function toOtlpJson(spans: readonly CollectedSpan[]): { resourceSpans: unknown[] } {
  const byResource = groupBy(spans, (s) => `${s.service}@${s.host ?? ''}`);
  return {
    resourceSpans: [...byResource.values()].map((members) => ({
      resource: { attributes: [{ key: 'service.name', value: { stringValue: members[0]!.service } }, ...(members[0]!.host === null ? [] : [{ key: 'host.name', value: { stringValue: members[0]!.host } }])] },
      scopeSpans: [
        {
          scope: { name: 'specula' },
          spans: members.map((s) => ({
            traceId: s.traceId,
            spanId: s.spanId,
            ...(s.parentSpanId === null ? {} : { parentSpanId: s.parentSpanId }),
            name: s.name,
            kind: 1,
            startTimeUnixNano: nanos(s.startUs),
            endTimeUnixNano: nanos(s.endUs),
            attributes: Object.entries(s.attributes).map(([key, value]) => ({ key, value: otlpValue(value) })),
            links: s.links.map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
          })),
        },
      ],
    })),
  };
}
