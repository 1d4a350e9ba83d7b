/**
 * An OTLP/HTTP trace receiver for tests and benchmarks: POST /v1/traces with
 * application/x-protobuf (gzip or not), decoded with the OTLP schema's
 * trace messages (the subset below, field numbers as in
 * opentelemetry/proto/trace/v1/trace.proto), kept in memory.
 */
import { createServer, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import protobuf from 'protobufjs';

const OTLP_TRACE_PROTO = `
syntax = "proto3";
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; string schema_url = 3; }
message Resource { repeated KeyValue attributes = 1; uint32 dropped_attributes_count = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; string schema_url = 3; }
message InstrumentationScope { string name = 1; string version = 2; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; } }
message Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9; repeated Link links = 13;
}
`;

const Request = protobuf.parse(OTLP_TRACE_PROTO).root.lookupType('ExportTraceServiceRequest');

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | null;
  readonly name: string;
  readonly startUnixUs: number;
  readonly endUnixUs: number;
  readonly attributes: Record<string, unknown>;
  /** The exporting process's resource attributes (service.name, host.name, …). */
  readonly resource: Record<string, unknown>;
}

interface KeyValue {
  key: string;
  value?: { stringValue?: string; boolValue?: boolean; intValue?: string; doubleValue?: number };
}
const attrs = (kvs: KeyValue[] | undefined): Record<string, unknown> => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, kv.value?.stringValue ?? kv.value?.boolValue ?? (kv.value?.intValue !== undefined ? Number(kv.value.intValue) : kv.value?.doubleValue)]));
const hexOf = (b64: string | undefined) => (b64 === undefined || b64 === '' ? null : Buffer.from(b64, 'base64').toString('hex'));
const usOf = (nanos: string) => Number(BigInt(nanos) / 1000n);

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  requests = 0;
  #server: Server | null = null;
  port = 0;

  async start(): Promise<void> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.method !== 'POST' || req.url !== '/v1/traces') {
          res.writeHead(404).end();
          return;
        }
        let body = Buffer.concat(chunks);
        if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
        const decoded = Request.toObject(Request.decode(body), { longs: String, bytes: String }) as { resourceSpans?: { resource?: { attributes?: KeyValue[] }; scopeSpans?: { spans?: { traceId: string; spanId: string; parentSpanId?: string; name: string; startTimeUnixNano: string; endTimeUnixNano: string; attributes?: KeyValue[] }[] }[] }[] };
        this.requests++;
        for (const rs of decoded.resourceSpans ?? []) {
          const resource = attrs(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? [])
            for (const s of ss.spans ?? [])
              this.spans.push({ traceId: hexOf(s.traceId)!, spanId: hexOf(s.spanId)!, parentSpanId: hexOf(s.parentSpanId), name: s.name, startUnixUs: usOf(s.startTimeUnixNano), endUnixUs: usOf(s.endTimeUnixNano), attributes: attrs(s.attributes), resource });
        }
        res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    const a = this.#server.address();
    this.port = typeof a === 'object' && a !== null ? a.port : 0;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}
