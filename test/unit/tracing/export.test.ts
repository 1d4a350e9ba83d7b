import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../lib/errors.js';
import { waterfall } from '../../../cli/trace/waterfall.js';
import { SpanCollector } from '../../../lib/tracing/collector.js';
import { toJaegerJson, toOtlpJson } from '../../../lib/tracing/export.js';
import type { SpanRecord } from '../../../lib/tracing/model.js';
import { readTraceFile } from '../../../lib/tracing/read.js';

const trace = { kind: 'segment' as const, vmId: 'vm1', connId: 1, offset: 4_242 };
const records: [SpanRecord, string, string | null][] = [
  [{ trace, name: 'emit', term: 1, parent: null, startUs: 1_000, endUs: 1_000, attributes: { seq: 4_000, bytes: 1_448, epoch: 3 } }, 'guest', 'host-a'],
  [{ trace, name: 'buffer', term: 1, parent: { name: 'emit', term: 1 }, startUs: 1_010, endUs: 20_000 }, 'acker', 'host-a'],
  [{ trace, name: 'hold', term: 1, parent: { name: 'buffer', term: 1 }, startUs: 20_000, endUs: 25_000, links: [{ trace: { kind: 'epoch', vmId: 'vm1', epoch: 3 }, span: { name: 'commit', term: 1 } }] }, 'acker', 'host-a'],
  [{ trace, name: 'wire.release', term: 1, parent: { name: 'hold', term: 1 }, startUs: 25_000, endUs: 25_000 }, 'acker', 'host-a'],
  [{ trace, name: 'retransmit', term: 1, instance: 1, parent: { name: 'wire.release', term: 1 }, startUs: 240_000, endUs: 240_000, attributes: { reason: 'rto' } }, 'acker', 'host-a'],
  [{ trace, name: 'deliver', term: 1, parent: { name: 'wire.release', term: 1 }, startUs: 26_000, endUs: 26_000 }, 'client', null],
];

function collected() {
  const c = new SpanCollector(100);
  for (const [r, service, host] of records) c.add(r, service, host);
  return c.spans;
}

describe('trace files', () => {
  it('give every span of a packet one trace id, and each its parent\'s span id', () => {
    const spans = collected();
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    const byName = new Map(spans.map((s) => [s.name, s]));
    expect(byName.get('emit')!.parentSpanId).toBeNull();
    expect(byName.get('hold')!.parentSpanId).toBe(byName.get('buffer')!.spanId);
    expect(byName.get('deliver')!.parentSpanId).toBe(byName.get('wire.release')!.spanId);
    expect(byName.get('retransmit')!.spanId).not.toBe(byName.get('wire.release')!.spanId);
  });

  it.each([
    ['Jaeger JSON', toJaegerJson],
    ['OTLP/JSON', toOtlpJson],
  ])('round-trip through %s: what is read back is what was written', (_format, write) => {
    const spans = collected();
    const back = readTraceFile(JSON.stringify(write(spans)), 'test');
    const norm = (xs: typeof spans) => [...xs].sort((a, b) => a.spanId.localeCompare(b.spanId)).map((s) => ({ ...s, attributes: { ...s.attributes } }));
    expect(norm(back)).toEqual(norm(spans));
  });

  it('Jaeger JSON names each service and host as a process, and links the hold to its epoch\'s commit', () => {
    const doc = toJaegerJson(collected()) as { data: { processes: Record<string, { serviceName: string }>; spans: { operationName: string; references: { refType: string }[] }[] }[] };
    expect(Object.values(doc.data[0]!.processes).map((p) => p.serviceName).sort()).toEqual(['acker', 'client', 'guest']);
    expect(doc.data[0]!.spans.find((s) => s.operationName === 'hold')!.references.map((r) => r.refType)).toEqual(['CHILD_OF', 'FOLLOWS_FROM']);
  });

  it('refuses a file that is neither, saying what it expected', () => {
    expect(() => readTraceFile('{"spans":[]}', 'x.json')).toThrow(ConfigError);
    expect(() => readTraceFile('not json', 'x.json')).toThrow(ConfigError);
    expect(() => readTraceFile('{"spans":[]}', 'x.json')).toThrow(/neither Jaeger's JSON .* nor OTLP\/JSON/);
    expect(() => readTraceFile('not json', 'x.json')).toThrow(/x.json is not JSON/);
  });

  it('draw as a waterfall: each span under its parent, with its start and duration', () => {
    const text = waterfall(collected());
    const lines = text.split('\n');
    expect(lines[1]).toMatch(/^emit\s+guest@host-a\s+\+0\.000\s+0\.000/);
    expect(lines.find((l) => l.trimStart().startsWith('hold'))).toMatch(/^ {4}hold\s+acker@host-a\s+\+19\.000\s+5\.000/);
    expect(lines.find((l) => l.includes('retransmit'))).toContain('retransmit (rto)');
    expect(lines.find((l) => l.trimStart().startsWith('deliver'))).toMatch(/^ {8}deliver\s+client\s+\+25\.000/);
    expect(lines.at(-1)).toBe('total 239.000 ms');
  });
});
