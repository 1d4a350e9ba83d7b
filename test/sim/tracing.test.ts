/**
 * Traces of simulated runs (docs/tracing.md): every sampled packet's path
 * from the guest's emit to the client, every epoch's steps, hold times that
 * are the commit latency, and a run that tracing does not change.
 */
import { describe, expect, it } from 'vitest';
import { runConfigSchema, type RunConfigInput } from '../../lib/config/run-config.js';
import { percentile } from '../../lib/results/run-result.js';
import { SpanCollector, type CollectedSpan } from '../../lib/tracing/collector.js';
import { simulate } from '../../sim/run.js';
import { serviceOfActor } from '../../sim/actors.js';

function traced(input: RunConfigInput) {
  const collector = new SpanCollector(2_000_000);
  const config = runConfigSchema.parse({ durationS: 3, ...input, tracing: { segmentSampleRate: 0.02, epochs: true } });
  const result = simulate(config, { onSpan: (span, from) => collector.add(span, serviceOfActor(from.actor), from.host) });
  const traces = new Map<string, CollectedSpan[]>();
  for (const s of collector.spans) traces.set(s.traceId, [...(traces.get(s.traceId) ?? []), s]);
  return { result, spans: collector.spans, traces: [...traces.values()] };
}

const names = (t: CollectedSpan[]) => t.map((s) => s.name);

/** No two spans share an id, and every parent a span names is in its trace: what Jaeger needs to draw the tree. */
function expectWellFormed(spans: readonly CollectedSpan[]) {
  const ids = new Set(spans.map((s) => `${s.traceId}/${s.spanId}`));
  expect(ids.size, 'no two spans share an id').toBe(spans.length);
  const orphans = spans.filter((s) => s.parentSpanId !== null && !ids.has(`${s.traceId}/${s.parentSpanId}`));
  expect(orphans.map((s) => `${s.name}@${s.host ?? s.service} term ${String(s.attributes['specula.term'])}`), 'spans whose parent is missing').toEqual([]);
}
const byName = (t: CollectedSpan[], name: string) => t.find((s) => s.name === name);

describe('traces in the simulator', () => {
  const spec = traced({ mode: 'spec' });

  it('spec: a delivered packet\'s trace runs emit → speculative ACK → buffer → replication to the backup → hold → wire release → delivery, each on its service, each the child of the step before', () => {
    const delivered = spec.traces.filter((t) => t[0]!.attributes['specula.trace'] === 'segment' && names(t).includes('deliver') && !names(t).includes('replay'));
    expect(delivered.length).toBeGreaterThan(100);
    for (const t of delivered) {
      for (const step of ['emit', 'spec-ack', 'buffer', 'replicate', 'hold', 'wire.release', 'deliver']) expect(names(t), step).toContain(step);
      const replicate = byName(t, 'replicate')!;
      expect(`${replicate.service}@${replicate.host}`).toBe('guest@host-b');
      expect(replicate.parentSpanId).toBe(byName(t, 'buffer')!.spanId);
      // On the backup before it may leave: output commit.
      expect(replicate.startUs).toBeLessThanOrEqual(byName(t, 'hold')!.endUs);
      const [emit, ack, buffer, hold, release, deliver] = ['emit', 'spec-ack', 'buffer', 'hold', 'wire.release', 'deliver'].map((n) => byName(t, n)!);
      expect([emit!.service, ack!.service, buffer!.service, hold!.service, release!.service, deliver!.service]).toEqual(['guest', 'acker', 'acker', 'acker', 'acker', 'client']);
      expect(emit!.parentSpanId).toBeNull();
      expect(ack!.parentSpanId).toBe(emit!.spanId);
      expect(buffer!.parentSpanId).toBe(emit!.spanId);
      expect(hold!.parentSpanId).toBe(buffer!.spanId);
      expect(release!.parentSpanId).toBe(hold!.spanId);
      expect(deliver!.parentSpanId).toBe(release!.spanId);
      // In time order (one host's clock; the client's reads the same true time here).
      expect(emit!.startUs).toBeLessThanOrEqual(buffer!.startUs);
      expect(buffer!.endUs).toBe(hold!.startUs);
      expect(hold!.endUs).toBeLessThanOrEqual(release!.startUs);
      expect(release!.startUs).toBeLessThan(deliver!.startUs);
      // Output commit, as the trace shows it: nothing leaves before its epoch's commit.
      expect(hold!.links[0]!.traceId).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  it('spec: the hold is the commit latency: p50 and p99 over epochs within 5% of commitLatencyMsP50 and commitLatencyMsP99', () => {
    // One hold per epoch: a packet's hold is its epoch's commit latency, seen at the acker; epochs that carried more packets would weigh more otherwise.
    const perEpoch = new Map<number, number>();
    for (const s of spec.spans) if (s.name === 'hold') perEpoch.set(Number(s.attributes.epoch), (s.endUs - s.startUs) / 1000);
    const holds = [...perEpoch.values()];
    expect(holds.length).toBeGreaterThan(0.9 * spec.result.checkpoints);
    const p50 = percentile(holds, 50)!;
    const p99 = percentile(holds, 99)!;
    expect(Math.abs(p50 / spec.result.commitLatencyMsP50! - 1)).toBeLessThan(0.05);
    expect(Math.abs(p99 / spec.result.commitLatencyMsP99! - 1)).toBeLessThan(0.05);
  });

  it('every epoch\'s trace has pause, copy, transfer, apply and ack on the backup, and commit, under the epoch', () => {
    const epochs = spec.traces.filter((t) => t[0]!.attributes['specula.trace'] === 'epoch' && names(t).includes('commit'));
    expect(epochs.length).toBe(spec.result.checkpoints);
    for (const t of epochs) {
      const root = byName(t, 'epoch')!;
      expect(names(t).sort()).toEqual(['ack', 'apply', 'commit', 'copy', 'epoch', 'pause', 'transfer']);
      expect(byName(t, 'ack')!.parentSpanId).toBe(byName(t, 'apply')!.spanId);
      expect(byName(t, 'ack')!.startUs).toBeLessThanOrEqual(byName(t, 'commit')!.startUs);
      expect(byName(t, 'apply')!.host).toBe('host-b');
      expect(byName(t, 'copy')!.parentSpanId).toBe(byName(t, 'pause')!.spanId);
      expect(byName(t, 'apply')!.parentSpanId).toBe(byName(t, 'transfer')!.spanId);
      expect(root.endUs - root.startUs).toBeGreaterThan(0);
    }
  });

  it('tracing changes nothing in the run, and no two spans share an id', () => {
    const plain = simulate(runConfigSchema.parse({ durationS: 3, mode: 'spec' }));
    expect({ ...spec.result, wallMs: 0 }).toEqual({ ...plain, wallMs: 0 });
    expectWellFormed(spec.spans);
  });

  it('remus: the netbuffer holds the packet, and a lost one shows its retransmissions with their cause', () => {
    // A small plug: HyStart keeps remus clear of the default one, and each epoch's output overflows this one.
    const lossy = { mode: 'remus' as const, buffers: { heldBytesMax: 100 * 1500 } };
    const remus = traced(lossy);
    expect({ ...remus.result, wallMs: 0 }).toEqual({ ...simulate(runConfigSchema.parse({ durationS: 3, ...lossy })), wallMs: 0 });
    const delivered = remus.traces.filter((t) => names(t).includes('deliver'));
    expect(delivered.length).toBeGreaterThan(10);
    for (const t of delivered) {
      expect(byName(t, 'hold')!.service).toBe('netbuffer');
      expect(byName(t, 'wire.release')!.service).toBe('netbuffer');
      expect(names(t)).not.toContain('spec-ack');
    }
    const retransmits = remus.spans.filter((s) => s.name === 'retransmit' || s.name === 'guest.retransmit');
    expect(retransmits.length).toBeGreaterThan(0);
    expectWellFormed(remus.spans);
    for (const r of retransmits) expect(['rto', 'fast', 'partial-ack', 'resend']).toContain(r.attributes.reason);
  });

  it.each(['spec', 'remus'] as const)('%s with a failover and re-protection: every step that runs again has its own span, and every parent is there', (mode) => {
    const crash = traced({ mode, faults: { crashPrimaryAtMs: 1_500 } });
    expect(crash.result.failovers).toBe(1);
    expectWellFormed(crash.spans);
    const terms = new Set(crash.spans.map((s) => s.attributes['specula.term']));
    expect([...terms].sort()).toEqual([1, 2]);
    // A byte the client got after the crash: its delivery hangs off its release (or replay) in the new term.
    const late = crash.spans.filter((s) => s.name === 'deliver' && s.attributes['specula.term'] === 2);
    expect(late.length).toBeGreaterThan(0);
  });

  it('a failover: the promoted acker\'s sends of bytes it got in a checkpoint are replays', () => {
    const crash = traced({ mode: 'spec', faults: { crashPrimaryAtMs: 1_500 } });
    const replays = crash.spans.filter((s) => s.name === 'replay');
    expect(replays.length).toBeGreaterThan(0);
    for (const r of replays) {
      expect(r.attributes.reason).toBe('failover');
      expect(r.host).toBe('host-b');
      expect(r.startUs).toBeGreaterThan(1_500_000);
      // It follows from its host's backup replicating the byte in the term before.
      const replicate = crash.spans.find((s) => s.spanId === r.parentSpanId && s.traceId === r.traceId)!;
      expect(`${replicate.name}@${replicate.host} term ${String(replicate.attributes['specula.term'])}`).toBe('replicate@host-b term 1');
    }
  });
});
