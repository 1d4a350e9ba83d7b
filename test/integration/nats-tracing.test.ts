/**
 * Traces over NATS: every service a process exporting OTLP/HTTP (protobuf)
 * to a receiver of the test's own, which decodes what the exporters send. A
 * sampled packet's spans, reported by services that never told each other
 * its ids, form one trace in the right order. In the host layout a host's
 * data path is one process: its spans carry the process's service.name and
 * each its own service in `specula.service`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { runOnNats } from '../../cli/launcher/nats-run.js';
import { LAYOUTS } from '../../cli/launcher/plan.js';
import { runConfigSchema } from '../../lib/config/run-config.js';
import { OtlpReceiver, type ReceivedSpan } from '../../bench/support/otlp-receiver.js';
import { withNats } from './support/nats.js';

const nats = await withNats();
const receiver = new OtlpReceiver();
await receiver.start();
afterAll(async () => {
  await receiver.stop();
  await nats?.stop();
});

const config = runConfigSchema.parse({ mode: 'spec', vmId: 'traced', durationS: 4, epochMs: 25, link: { bandwidthBitsPerSec: 50e6, rttMs: 2 } });
/** The service that reported a span: its own attribute in a process of several, else the process's service.name. */
const serviceOf = (s: ReceivedSpan) => String(s.attributes['specula.service'] ?? s.resource['service.name']);
const where = (s: ReceivedSpan) => `${serviceOf(s)}@${String(s.resource['specula.host'] ?? '')}`;

describe.skipIf(nats === null).each(LAYOUTS)('traces over NATS, into an OTLP receiver, layout %s', (layout) => {
  it('one sampled packet\'s spans from four services form one trace, each after its parent', { timeout: 120_000 }, async () => {
    const saved = { ...process.env };
    // The children inherit these: every service exports to the receiver and samples alike.
    Object.assign(process.env, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: '200', SPECULA_TRACE_SAMPLE: '0.05' });
    let result;
    try {
      [result] = await runOnNats({ ...config, vmId: `traced-${layout}` }, { natsUrl: nats!.url, layout });
    } finally {
      for (const k of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_BSP_SCHEDULE_DELAY', 'SPECULA_TRACE_SAMPLE']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
    expect(result!.streamVerified).toBe(true);
    expect(receiver.requests).toBeGreaterThan(0);

    const traces = new Map<string, ReceivedSpan[]>();
    // This run's spans: the receiver serves both layouts' runs.
    const ours = receiver.spans.filter((s) => String(s.resource['specula.vms'] ?? '').startsWith(`traced-${layout}`));
    for (const s of ours) traces.set(s.traceId, [...(traces.get(s.traceId) ?? []), s]);
    if (layout === 'host') {
      const dataPath = ours.filter((s) => s.resource['service.name'] === 'guest+checkpointer+netbuffer+acker');
      expect(dataPath.length, 'spans of the hosts\' data-path processes').toBeGreaterThan(0);
      // Each span of such a process names its service; the packets' steps come from the guest and the acker, the epochs' from the checkpointer.
      expect(dataPath.filter((s) => typeof s.attributes['specula.service'] !== 'string')).toEqual([]);
      expect([...new Set(dataPath.map(serviceOf))]).toEqual(expect.arrayContaining(['guest', 'acker', 'checkpointer']));
    }
    const complete = [...traces.values()].filter((t) => ['emit', 'spec-ack', 'buffer', 'replicate', 'hold', 'wire.release', 'deliver'].every((n) => t.some((s) => s.name === n)));
    console.log(`nats-tracing (${layout}): ${ours.length} spans in ${traces.size} traces from ${receiver.requests} exports; ${complete.length} packets traced end to end`);
    expect(complete.length).toBeGreaterThan(0);
    for (const t of complete) {
      const one = (name: string) => t.find((s) => s.name === name)!;
      expect(new Set(t.map(where)).size, 'services (and hosts) that reported a span of this packet').toBeGreaterThanOrEqual(4);
      expect(where(one('emit'))).toMatch(/^guest@/);
      expect(where(one('replicate'))).toMatch(/^guest@/);
      expect(where(one('replicate'))).not.toBe(where(one('emit')));
      expect(where(one('hold'))).toMatch(/^acker@/);
      expect(where(one('deliver'))).toBe('client@');
      // The role of the service when it reported the span (a process's role changes at a failover).
      expect(one('hold').attributes['specula.role']).toBe('primary');
      expect(one('replicate').attributes['specula.role']).toBe('backup');
      // Every parent is in the trace, and each span starts no earlier than its parent (one machine's clock; µs rounding).
      const ids = new Map(t.map((s) => [s.spanId, s]));
      for (const s of t) {
        if (s.name === 'emit') {
          expect(s.parentSpanId).toBeNull();
          continue;
        }
        const parent = ids.get(s.parentSpanId ?? '');
        expect(parent, `${s.name}'s parent`).toBeDefined();
        expect(s.startUnixUs, `${s.name} (${where(s)}) starts ${parent!.startUnixUs - s.startUnixUs} µs before its parent ${parent!.name} (${where(parent!)})`).toBeGreaterThanOrEqual(parent!.startUnixUs - 1);
      }
      expect(one('hold').startUnixUs).toBe(one('buffer').endUnixUs);
      expect(one('wire.release').startUnixUs).toBeGreaterThanOrEqual(one('hold').endUnixUs - 1);
      expect(one('deliver').startUnixUs).toBeGreaterThan(one('wire.release').startUnixUs);
    }
    // Every epoch trace has its steps from the checkpointer, the guest and the backup.
    const epochs = [...traces.values()].filter((t) => t.some((s) => s.name === 'commit') && t.some((s) => s.name === 'apply'));
    expect(epochs.length).toBeGreaterThan(10);
  });
});
