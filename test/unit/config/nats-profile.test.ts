import { describe, expect, it } from 'vitest';
import { NATS_TIMING, withNatsTiming } from '../../../lib/config/nats-profile.js';
import { runConfigSchema } from '../../../lib/config/run-config.js';
import { ackerOptionsFromConfig } from '../../../services/acker/options-from-config.js';
import { guestOptionsFromConfig } from '../../../services/guest/options-from-config.js';

describe('withNatsTiming', () => {
  const config = runConfigSchema.parse({ mode: 'spec', epochPolicy: { kind: 'adaptive', quietUs: 700 }, bus: { resendMs: 3 } });

  it('puts the NATS timing over the simulator defaults and keeps the rest', () => {
    const timed = withNatsTiming(config);
    expect(timed.epochPolicy.quietUs).toBe(NATS_TIMING.epochPolicy.quietUs);
    expect(timed.bus.resendMs).toBe(NATS_TIMING.bus.resendMs);
    expect(timed.failover.heartbeatIntervalMs).toBe(NATS_TIMING.failover.heartbeatIntervalMs);
    expect(timed.epochPolicy.kind).toBe('adaptive');
    expect(timed.mode).toBe('spec');
  });

  it('keeps what the user set explicitly', () => {
    const timed = withNatsTiming(config, { epochPolicy: { quietUs: 700 }, bus: { resendMs: 3 } });
    expect(timed.epochPolicy.quietUs).toBe(700);
    expect(timed.bus.resendMs).toBe(3);
    expect(timed.bus.ackSlackMs).toBe(NATS_TIMING.bus.ackSlackMs);
  });
});

describe('the handover waits', () => {
  it("come from the bus section: the acker's longest wait between requests, and the guest's between answers half of it", () => {
    const sim = runConfigSchema.parse({ mode: 'spec' });
    const nats = withNatsTiming(sim);
    expect(nats.bus.handoverRetryMaxMs).toBe(NATS_TIMING.bus.handoverRetryMaxMs);
    for (const [config, maxMs] of [[sim, 500], [nats, NATS_TIMING.bus.handoverRetryMaxMs]] as const) {
      expect(ackerOptionsFromConfig(config, config.hosts.backup).handoverRetryMaxUs).toBe(maxMs * 1_000);
      expect(guestOptionsFromConfig(config, config.hosts.backup).supervision!.handoverAnswerIntervalUs).toEqual({ firstUs: config.bus.handoverRetryMs * 1_000, maxUs: (maxMs * 1_000) / 2 });
    }
    // A longest wait shorter than the first is refused, at the field that is wrong.
    const short = runConfigSchema.safeParse({ mode: 'spec', bus: { handoverRetryMs: 30, handoverRetryMaxMs: 10 } });
    expect(short.success).toBe(false);
    expect(short.error?.issues.map((i) => i.path.join('.'))).toEqual(['bus.handoverRetryMaxMs']);
    expect(runConfigSchema.safeParse({ mode: 'spec', bus: { handoverRetryMs: 30, handoverRetryMaxMs: 30 } }).success).toBe(true);
  });
});
