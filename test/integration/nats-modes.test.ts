/**
 * Every mode over NATS as `specula run --runtime nats` runs it (runOnNats:
 * every service its own process, the client for the run's duration, the bus
 * audited), at 100 Mbit/s, 2 ms RTT, 25 ms epochs, 5 s of bulk transfer, a
 * 2 MiB speculative buffer, and
 * the simulator on the same configuration beside it. The services must work
 * for real (checkpoints, held and speculative bytes, commit latencies, bus
 * traffic: no field left at a hard-coded zero) and the auditor must find
 * nothing. Every measured number is printed. The goodput ratios (spec over
 * remus, NATS over the simulator) depend on the machine's cores: they are
 * targets of `npm run bench` (bench/nats-modes.bench.ts), not of a test.
 * Needs `npm run build` first (the launcher spawns dist/cli/specula.js;
 * npm test builds).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Mode } from '../../lib/config/run-config.js';
import type { RunResult } from '../../lib/results/run-result.js';
import { runOnNats } from '../../cli/launcher/nats-run.js';
import { simulate } from '../../sim/run.js';
import { withNats } from './support/nats.js';
import { natsModesConfig } from '../../bench/nats-modes-config.js';

const MODES = ['native', 'remus', 'spec', 'spec-racc'] as const satisfies readonly Mode[];
const REPLICATED: ReadonlySet<Mode> = new Set(['remus', 'spec', 'spec-racc']);
const SPECULATIVE: ReadonlySet<Mode> = new Set(['spec', 'spec-racc']);
/** Bound on one run: the fleet's start (16 processes on a small machine), 5 s of transfer, the stop. */
const RUN_TIMEOUT_MS = 60_000;

const nats = await withNats();
afterAll(async () => {
  await nats?.stop();
});

const configFor = natsModesConfig;

interface Measured {
  readonly nats: RunResult;
  readonly sim: RunResult;
  /** Wall time of runOnNats, ms. */
  readonly natsWallMs: number;
  readonly simWallMs: number;
}

const mbps = (bitsPerSec: number): string => (bitsPerSec / 1e6).toFixed(2);

function summary(mode: Mode, m: Measured): string {
  const n = m.nats;
  return (
    `nats-modes ${mode}: goodput NATS ${mbps(n.goodputBitsPerSec)} Mbit/s, sim ${mbps(m.sim.goodputBitsPerSec)} Mbit/s (NATS/sim ${(n.goodputBitsPerSec / m.sim.goodputBitsPerSec).toFixed(3)}); ` +
    `verified ${n.streamVerified}, audit violations ${n.auditViolations ?? 'not audited'}, checkpoints ${n.checkpoints}, commit p50/p99 ${n.commitLatencyMsP50?.toFixed(2) ?? '-'}/${n.commitLatencyMsP99?.toFixed(2) ?? '-'} ms, ` +
    `heldBytesMax ${n.heldBytesMax}, specBufferBytesMax ${n.specBufferBytesMax}, pause ${n.pauseMsTotal.toFixed(0)} ms, failovers ${n.failovers}, reprotections ${n.reprotections}, retransmits ${n.retransmits}, ` +
    `events ${n.simEvents}, bus bytes/goodput byte ${n.busBytesPerGoodputByte} ${JSON.stringify(n.busBytesPerGoodputByteByService ?? {})}, bus hop p50/p90 ${n.busHopMsP50?.toFixed(2) ?? '-'}/${n.busHopMsP90?.toFixed(2) ?? '-'} ms, ` +
    `link late p50/p99 ${n.linkLateMsP50?.toFixed(3) ?? '-'}/${n.linkLateMsP99?.toFixed(2) ?? '-'} ms, CPU ${n.cpuMsPerGoodputMB ?? '-'} ms/MB ${JSON.stringify(n.cpuSecondsByService ?? {})}; wall NATS ${m.natsWallMs.toFixed(0)} ms, sim ${m.simWallMs.toFixed(0)} ms`
  );
}

describe.skipIf(nats === null)('every mode over NATS at 100 Mbit/s, 2 ms RTT, 25 ms epochs, 5 s bulk (runOnNats)', () => {
  const url = nats?.url ?? '';

  for (const mode of MODES) {
    it(`${mode}: the stream arrives verified, the auditor finds nothing, and the services measured what they did`, { timeout: RUN_TIMEOUT_MS + 30_000 }, async () => {
      const config = configFor(mode);
      const t0 = performance.now();
      const results = await runOnNats(config, { natsUrl: url });
      const natsWallMs = performance.now() - t0;
      const t1 = performance.now();
      const sim = simulate(config);
      const simWallMs = performance.now() - t1;
      expect(results).toHaveLength(1);
      const r = results[0]!;
      console.log(summary(mode, { nats: r, sim, natsWallMs, simWallMs }));

      expect(r).toMatchObject({ mode, runtime: 'nats', workload: 'bulk', rttMs: 2, bandwidthBitsPerSec: 100e6, durationS: 5 });
      expect(r.streamVerified).toBe(true);
      expect(r.bytesDelivered).toBeGreaterThan(0);
      expect(r.goodputBitsPerSec).toBeGreaterThan(0);
      // No field left at a hard-coded zero: every process reported, and the bus carried the run.
      expect(r.simEvents).toBeGreaterThan(0);
      expect(r.busBytesPerGoodputByte).toBeGreaterThan(0);
      // The breakdown adds up to the total (each share rounded to 0.001), and the service that hands the stream to the client published all of it.
      const byService = r.busBytesPerGoodputByteByService ?? {};
      const shares = Object.values(byService);
      expect(Math.abs(shares.reduce((a, b) => a + b, 0) - r.busBytesPerGoodputByte!)).toBeLessThanOrEqual(0.001 * shares.length);
      const toClient = mode === 'native' ? 'guest' : mode === 'remus' ? 'netbuffer' : 'acker';
      expect(byService[toClient], `${toClient}'s bytes per goodput byte`).toBeGreaterThanOrEqual(1);
      // Every acknowledged checkpoint byte left the checkpointer for the backup.
      if (REPLICATED.has(mode)) expect(byService.checkpointer).toBeGreaterThanOrEqual(r.checkpointBytesTotal / r.bytesDelivered - 0.001);
      // Every mode stamps the wire both ways (and the replicated ones commits and the checkpoint path): the receivers measured those hops.
      expect(r.busHopMsP50).toBeGreaterThan(0);
      expect(r.busHopMsP90!).toBeGreaterThanOrEqual(r.busHopMsP50!);
      // The client's link (and in replicated modes the replication link) handed messages on, never before their time.
      expect(r.linkLateMsP50).not.toBeNull();
      expect(r.linkLateMsP99!).toBeGreaterThanOrEqual(r.linkLateMsP50!);
      // Every service of the mode spent CPU time during the transfer, as its reports said.
      const services = REPLICATED.has(mode) ? ['guest', 'checkpointer', 'netbuffer', 'acker', 'host-agent', 'failover', 'client'] : ['guest', 'client'];
      expect(Object.keys(r.cpuSecondsByService ?? {}).sort()).toEqual([...services].sort());
      for (const service of services) expect(r.cpuSecondsByService![service], `${service}'s CPU seconds`).toBeGreaterThan(0);
      expect(r.cpuMsPerGoodputMB).toBeGreaterThan(0);
      // No fault was scheduled: nothing may fail over.
      expect(r.failovers).toBe(0);
      expect(r.failoverMs).toBeNull();
      if (REPLICATED.has(mode)) {
        // The auditor watched the bus (output commit, one primary) and found nothing.
        expect(r.auditViolations).toBe(0);
        expect(r.epochMs).toBe(25);
        // Acknowledged by the backup: commits the primary made alone (its backup dropped) do not count.
        expect(r.checkpoints, 'checkpoints the backup acknowledged').toBeGreaterThan(0);
        expect(r.checkpointBytesTotal).toBeGreaterThan(0);
        // The first backup stayed: nothing dropped it and no spare had to join.
        expect(r.reprotections, 'spares that joined in a run without a fault').toBe(0);
        expect(r.commitLatencyMsP50).not.toBeNull();
        expect(r.commitLatencyMsP50!).toBeGreaterThan(0);
        expect(r.commitLatencyMsP99!).toBeGreaterThanOrEqual(r.commitLatencyMsP50!);
        expect(r.pauseMsTotal).toBeGreaterThan(0);
      } else {
        // Native has no output commit to audit (as in the simulator); if audited, nothing may be found.
        expect(r.auditViolations ?? 0).toBe(0);
        expect(r.checkpoints).toBe(0);
        expect(r.commitLatencyMsP50).toBeNull();
      }
      // Remus holds output until commit; the speculative modes ACK from the speculative buffer instead.
      if (mode === 'remus') expect(r.heldBytesMax).toBeGreaterThan(0);
      if (SPECULATIVE.has(mode)) expect(r.specBufferBytesMax).toBeGreaterThan(0);
      else expect(r.specBufferBytesMax).toBe(0);
    });
  }
});
