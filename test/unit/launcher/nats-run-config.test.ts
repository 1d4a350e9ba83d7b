import { describe, expect, it } from 'vitest';
import { runOnNats } from '../../../cli/launcher/nats-run.js';
import { vmConfigs } from '../../../cli/commands/service.js';
import { ConfigError } from '../../../lib/errors.js';
import { config } from '../../support/run.js';

/** Nothing listens on port 1: a run that connected before it checked its configuration would fail with a TransportError instead. */
const NOWHERE = 'nats://127.0.0.1:1';

describe('a configuration the processes over NATS refuse', () => {
  it('refuses the simulator\'s bus jitter, for every service and for a run', () => {
    expect(() => vmConfigs(config({ mode: 'remus', busJitterUs: 4_000 }), 1)).toThrow(ConfigError);
    expect(() => vmConfigs(config({ mode: 'remus', busJitterUs: 0 }), 1)).not.toThrow();
  });

  it('is refused before anything connects, so nothing is left open behind the error', async () => {
    await expect(runOnNats(config({ mode: 'remus', busJitterUs: 4_000 }), { natsUrl: NOWHERE })).rejects.toBeInstanceOf(ConfigError);
    await expect(runOnNats(config({ mode: 'remus' }), { natsUrl: NOWHERE, vms: 0 })).rejects.toBeInstanceOf(ConfigError);
  });
});
