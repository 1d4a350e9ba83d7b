import { afterEach, describe, expect, it } from 'vitest';
import { histogramOf } from '../../../lib/results/histogram.js';
import { startHealthServer, type HealthServer } from '../../../lib/runtime/nats/health-server.js';
import { MAX_SAMPLES_PER_SCRAPE, startServiceMetrics, type VmReport } from '../../../lib/runtime/nats/metrics.js';
import type { ShellCounters } from '../../../lib/runtime/nats/shell.js';

const shell = { messagesOut: 7, decodeErrors: 1, permissionViolations: 0 } as ShellCounters;
let closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.map((c) => c()));
  closers = [];
});

async function serve(reports: () => VmReport[]) {
  const metrics = startServiceMetrics({ service: 'checkpointer', host: 'host-a', reports });
  const server: HealthServer = await startHealthServer(0, () => true, () => ({}), (req, res) => metrics.handle(req, res));
  closers.push(() => server.close(), () => metrics.shutdown());
  return async () => (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
}
const value = (text: string, metric: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${metric}{`));
  return line === undefined ? null : Number(line.slice(line.lastIndexOf(' ') + 1));
};

describe('service metrics for Prometheus', () => {
  it('observe what the service reports, per VM, and only what it has', async () => {
    const stats: Record<string, unknown> = { checkpoints: 12, checkpointBytesTotal: 4096, staleTermDrops: 2, barrierStaleTermDrops: 1 };
    const scrape = await serve(() => [{ vmId: 'vm1', epochMs: 25, stats, shell }]);
    const text = await scrape();
    expect(value(text, 'specula_checkpoints_total')).toBe(12);
    expect(value(text, 'specula_checkpoint_bytes_total')).toBe(4096);
    expect(value(text, 'specula_epoch_configured_seconds')).toBe(0.025);
    expect(value(text, 'specula_stale_term_rejections_total')).toBe(3);
    expect(value(text, 'specula_bus_decode_errors_total')).toBe(1);
    expect(text).not.toContain('specula_failovers_total'); // not a failover service
    expect(text).toContain('service_name="checkpointer"');
    stats.checkpoints = 13;
    expect(value(await scrape(), 'specula_checkpoints_total')).toBe(13);
  });

  it("export a backup's staged bytes and its drops at their bound, and nothing where the guest holds no backup image", async () => {
    const backup = await serve(() => [{ vmId: 'vm1', epochMs: 25, stats: { stagedBytes: 262_144, stagingDrops: 3 }, shell }]);
    const text = await backup();
    expect(value(text, 'specula_backup_staged_bytes')).toBe(262_144);
    expect(value(text, 'specula_backup_staging_drops_total')).toBe(3);
    const primary = await serve(() => [{ vmId: 'vm1', epochMs: 25, stats: { stagedBytes: null, stagingDrops: 0 }, shell }]);
    expect(await primary()).not.toContain('specula_backup_staged_bytes{');
  });

  it("sum what a process's emulated links dropped at their bound, and export nothing for a process without links", async () => {
    const link = (overflowDrops: number) => ({ accepted: 10, delivered: 10, hopDrops: 0, overflowDrops, overflowByteDrops: 0, maxPending: 1, maxPendingBytes: 1 });
    const linked = await serve(() => [{ vmId: 'vm1', epochMs: 25, stats: {}, shell, links: { 'specula.vm1.ckpt.ack': link(2), 'specula.vm1.wire.in': link(3) } }]);
    expect(value(await linked(), 'specula_link_overflow_drops_total')).toBe(5);
    const unlinked = await serve(() => [{ vmId: 'vm1', epochMs: 25, stats: {}, shell }]);
    expect(await unlinked()).not.toContain('specula_link_overflow_drops');
  });

  it('turn the reported commit-latency histogram into an OTel histogram, each sample once, within 2%', async () => {
    const latenciesUs = [3_000, 4_000, 4_500, 30_000];
    const stats: Record<string, unknown> = { commitLatencyUs: histogramOf(latenciesUs) };
    const scrape = await serve(() => [{ vmId: 'vm1', epochMs: 25, stats, shell }]);
    let text = await scrape();
    expect(value(text, 'specula_commit_latency_seconds_count')).toBe(4);
    expect(value(text, 'specula_commit_latency_seconds_sum')).toBeCloseTo(0.0415, 3);
    expect(text).toMatch(/specula_commit_latency_seconds_bucket\{vm="vm1",otel_scope_name="specula",le="0.005"\} 3/);
    // Two more commits: only they are added, however often it is scraped.
    stats.commitLatencyUs = histogramOf([...latenciesUs, 5_500, 6_000]);
    await scrape();
    text = await scrape();
    expect(value(text, 'specula_commit_latency_seconds_count')).toBe(6);
  });

  it('record a long run\'s histogram over several scrapes, MAX_SAMPLES_PER_SCRAPE each, and every sample once in the end', async () => {
    const samples = 2 * MAX_SAMPLES_PER_SCRAPE + 123;
    const stats: Record<string, unknown> = { commitLatencyUs: { 100: samples } };
    const scrape = await serve(() => [{ vmId: 'vm1', epochMs: 25, stats, shell }]);
    expect(value(await scrape(), 'specula_commit_latency_seconds_count')).toBe(MAX_SAMPLES_PER_SCRAPE);
    expect(value(await scrape(), 'specula_commit_latency_seconds_count')).toBe(2 * MAX_SAMPLES_PER_SCRAPE);
    expect(value(await scrape(), 'specula_commit_latency_seconds_count')).toBe(samples);
    expect(value(await scrape(), 'specula_commit_latency_seconds_count')).toBe(samples);
  });

  it('report the epoch length as it ran, from the checkpointer\'s histogram', async () => {
    const stats: Record<string, unknown> = { epochLengthUs: histogramOf([25_000, 25_400, 31_000]) };
    const scrape = await serve(() => [{ vmId: 'vm1', epochMs: 25, stats, shell }]);
    const text = await scrape();
    expect(value(text, 'specula_epoch_length_seconds_count')).toBe(3);
    expect(value(text, 'specula_epoch_length_seconds_sum')).toBeCloseTo(0.0814, 2);
    expect(text).toMatch(/specula_epoch_length_seconds_bucket\{vm="vm1",otel_scope_name="specula",le="0.03"\} 2/);
  });
});
