/**
 * A failover over NATS as `specula run --runtime nats --crash-primary-at-ms`
 * runs it: spec mode, every service its own process (and each host's data
 * path in one, `--layout host`), the primary host's processes SIGKILLed
 * mid-transfer; the backup takes over, the spare joins
 * and the VM is protected again, while the client's stream goes on and the
 * auditor watches the bus. Needs `npm run build` first (npm test does it).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { NATS_TIMING, withNatsTiming } from '../../lib/config/nats-profile.js';
import { runOnNats } from '../../cli/launcher/nats-run.js';
import { LAYOUTS } from '../../cli/launcher/plan.js';
import { faultRunConfig } from './support/fault-run.js';
import { withNats } from './support/nats.js';

const CRASH_AT_MS = 2_500;
/** Bus hops from the take-over to the promoted primary's first heartbeat: role change, assignments, reports, the agent's claim on the store and its answer, the heartbeat; a few ms each. */
const PROMOTION_HOPS_MS = 50;
/** A loaded machine (17 processes on a few cores) delays every timer and hop. */
const LOADED_MACHINE_MARGIN_MS = 500;
/** Bound on the run: the fleet's start, 6 s of transfer, the stop. */
const RUN_TIMEOUT_MS = 90_000;

const nats = await withNats();
afterAll(async () => {
  await nats?.stop();
});

// 5.5 s after the crash.
const config = faultRunConfig('crash-spec', { crashPrimaryAtMs: CRASH_AT_MS });

/**
 * From the crash to the promoted primary's first heartbeat, at most: the
 * failover service notices the silence after missCount heartbeats, the
 * successor may start once the old primary's last lease has expired (its
 * last renewal was sent before the crash) plus the clock-skew bound, the
 * backup restores its image, and a few bus hops carry it all. NATS timing,
 * as the run applies it.
 */
const timed = withNatsTiming(config);
const f = timed.failover;
const restoreMs = f.restoreFixedMs + (timed.guest.memoryBytes / f.restoreBytesPerSec) * 1000;
const FAILOVER_BOUND_MS = f.missCount * f.heartbeatIntervalMs + f.leaseDurationMs + f.clockSkewMs + restoreMs + PROMOTION_HOPS_MS;
/** No promotion before the failover service can have missed missCount − 1 heartbeats after the crash. */
const FAILOVER_FLOOR_MS = (f.missCount - 1) * f.heartbeatIntervalMs;

describe.skipIf(nats === null).each(LAYOUTS)('spec mode over NATS, layout %s: the primary host is killed mid-transfer (runOnNats)', (layout) => {
  const url = nats?.url ?? '';

  it(`fails over once within ${Math.round(FAILOVER_BOUND_MS)} ms (+${LOADED_MACHINE_MARGIN_MS} ms on a loaded machine), the stream survives, the auditor finds nothing, and the spare re-protects the VM`, { timeout: RUN_TIMEOUT_MS + 30_000 }, async () => {
    // The bound is built from the timing the run uses.
    expect(f).toMatchObject(NATS_TIMING.failover);
    const t0 = performance.now();
    const results = await runOnNats({ ...config, vmId: `crash-spec-${layout}` }, { natsUrl: url, layout });
    const wallMs = performance.now() - t0;
    expect(results, 'one result per VM').toHaveLength(1);
    const r = results[0];
    console.log(
      `nats-failover (${layout}): failoverMs ${r!.failoverMs?.toFixed(1) ?? 'null'} (bound ${FAILOVER_BOUND_MS.toFixed(1)} + ${LOADED_MACHINE_MARGIN_MS}, floor ${FAILOVER_FLOOR_MS}), reprotectMs ${r!.reprotectMs?.toFixed(1) ?? 'null'}, ` +
        `recoveryMs ${r!.recoveryMs?.toFixed(1) ?? 'null'}, failovers ${r!.failovers}, reprotections ${r!.reprotections}, goodput ${(r!.goodputBitsPerSec / 1e6).toFixed(2)} Mbit/s ` +
        `(before the crash ${((r!.preFailureGoodputBitsPerSec ?? 0) / 1e6).toFixed(2)}), verified ${r!.streamVerified}, audit violations ${r!.auditViolations}, wall ${wallMs.toFixed(0)} ms`,
    );

    expect(r!.layout).toBe(layout);
    // A host's data path is one process in the host layout: its CPU counted once, under its services' names.
    const processNames = Object.keys(r!.cpuSecondsByService ?? {});
    if (layout === 'host') expect(processNames).toContain('guest+checkpointer+netbuffer+acker');
    else expect(processNames).toEqual(expect.arrayContaining(['guest', 'checkpointer', 'netbuffer', 'acker']));
    expect(r!.streamVerified).toBe(true);
    expect(r!.bytesDelivered).toBeGreaterThan(0);
    expect(r!.auditViolations).toBe(0);
    expect(r!.failovers, 'promotions counted (one more: a false failover, without the crash)').toBe(1);
    // Null: the promotion counted came before the crash (a false failover), and none after it.
    expect(r!.failoverMs, 'from the crash to the promoted primary\'s first heartbeat').not.toBeNull();
    expect(r!.failoverMs!).toBeGreaterThanOrEqual(FAILOVER_FLOOR_MS);
    expect(r!.failoverMs!).toBeLessThanOrEqual(FAILOVER_BOUND_MS + LOADED_MACHINE_MARGIN_MS);
    // The spare joined as the new backup and holds a complete image: the VM is protected again.
    expect(r!.reprotections).toBeGreaterThanOrEqual(1);
    // Null: the spare joined but never reported a complete image before the run ended.
    expect(r!.reprotectMs, 'from the join to the new backup\'s first synced heartbeat').not.toBeNull();
    expect(r!.reprotectMs!).toBeGreaterThan(0);
    // Checkpoints went on under the new primary (the old one was killed after 2.5 s of 8).
    expect(r!.checkpoints).toBeGreaterThan(0);
  });
});
