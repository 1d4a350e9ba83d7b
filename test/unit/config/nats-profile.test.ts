import { describe, expect, it } from 'vitest';
import { NATS_TIMING, withNatsTiming } from '../../../lib/config/nats-profile.js';
import { runConfigSchema } from '../../../lib/config/run-config.js';

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
