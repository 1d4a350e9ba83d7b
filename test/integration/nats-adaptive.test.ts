/**
 * Adaptive epochs over NATS (docs/adaptive-epochs.md), next to a bulk flow
 * in the same guest (a mixed workload: two connections): the acker's
 * quiet-output reports for the request connection reach the checkpointer as
 * protobuf over a real nats-server, and it ends epochs early, with output
 * commit audited on the bus for both connections. How much earlier depends on the machine (on 2 cores a
 * checkpoint's pause alone takes tens of ms): the latency figures are
 * printed, not asserted. Needs `npm run build` first (npm test builds).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { runConfigSchema } from '../../lib/config/run-config.js';
import { runOnNats } from '../../cli/launcher/nats-run.js';
import { withNats } from './support/nats.js';

/** Bound on one run: the fleet's start (16 processes on a small machine), 4 s of transfer and requests, the stop. */
const RUN_TIMEOUT_MS = 60_000;

const nats = await withNats();
afterAll(async () => {
  await nats?.stop();
});

describe.skipIf(nats === null)('adaptive epochs over NATS (spec, bulk and request/response in one guest, 100 Mbit/s, 2 ms RTT, 25 ms at most)', () => {
  it('ends epochs early on the quiet connection, and both streams arrive verified, the auditor finding nothing', { timeout: RUN_TIMEOUT_MS + 30_000 }, async () => {
    const config = runConfigSchema.parse({ mode: 'spec', vmId: 'adaptive', seed: 1, durationS: 4, epochMs: 25, epochPolicy: { kind: 'adaptive' }, link: { bandwidthBitsPerSec: 100e6, rttMs: 2 }, buffers: { specBufferBytes: 2 * 1024 * 1024 }, workload: { kind: 'mixed', requestBytes: 64, responseBytes: 16_384 } });
    const [r] = await runOnNats(config, { natsUrl: nats!.url });
    console.log(`nats-adaptive: bulk ${((r!.bulkGoodputBitsPerSec ?? 0) / 1e6).toFixed(1)} Mbit/s, ${r!.requestsCompleted} requests, latency p50/p99 ${r!.latencyMsP50?.toFixed(2)}/${r!.latencyMsP99?.toFixed(2)} ms, ${r!.checkpoints} checkpoints, ${r!.earlyEpochEnds} ended early, ${r!.interactiveEpochs} kept short for requests, audit violations ${r!.auditViolations}`);
    expect(r!.streamVerified).toBe(true);
    expect(r!.auditViolations).toBe(0);
    expect(r!.requestsCompleted).toBeGreaterThan(3);
    expect(r!.bulkGoodputBitsPerSec).toBeGreaterThan(0);
    expect(r!.earlyEpochEnds).toBeGreaterThan(0);
    expect(r!.failovers).toBe(0);
  });
});
