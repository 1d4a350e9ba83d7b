import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { upConfig } from '../../../cli/commands/up.js';
import { NATS_TIMING } from '../../../lib/config/nats-profile.js';
import { ConfigError } from '../../../lib/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'specula-up-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = (content: unknown): string => {
  const path = join(dir, `c${n++}.json`);
  writeFileSync(path, JSON.stringify(content));
  return path;
};

describe('specula up --config', () => {
  it('takes --mode over the file\'s mode when given, and in place of a mode the file does not set', () => {
    expect(upConfig({ config: file({ mode: 'remus' }), mode: 'spec' }, true).mode).toBe('spec');
    expect(upConfig({ config: file({ mode: 'remus' }), mode: 'spec' }, false).mode).toBe('remus');
    expect(upConfig({ config: file({ durationS: 60 }), mode: 'spec-racc' }, false).mode).toBe('spec-racc');
  });

  it('runs with NATS timing wherever the file sets none, and with the file\'s where it does', () => {
    const plain = upConfig({ config: file({ mode: 'spec' }), mode: 'spec' }, false);
    expect(plain.failover.heartbeatIntervalMs).toBe(NATS_TIMING.failover.heartbeatIntervalMs);
    expect(plain.bus.resendMs).toBe(NATS_TIMING.bus.resendMs);
    const own = upConfig({ config: file({ mode: 'spec', failover: { heartbeatIntervalMs: 5 } }), mode: 'spec' }, false);
    expect(own.failover.heartbeatIntervalMs).toBe(5);
    expect(own.failover.leaseDurationMs).toBe(NATS_TIMING.failover.leaseDurationMs);
  });

  it('refuses a native VM, which has nothing to protect', () => {
    expect(() => upConfig({ config: file({ mode: 'native' }), mode: 'spec' }, false)).toThrow(ConfigError);
  });
});
