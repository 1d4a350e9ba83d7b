/**
 * The NATS configurations this project ships, checked by nats-server itself
 * (`nats-server -t`), laid out as each deployment mounts them: the file
 * beside the shared auth.conf, every password variable set.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { findNatsServerBinary, skipWithoutNatsBinary } from '../integration/support/nats.js';
import { passwordVariables } from './support/nats-auth.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const AUTH = `${REPO}/deploy/k8s/base/nats/auth.conf`;
const CONFIGS = ['deploy/compose/nats.conf', 'deploy/k8s/base/nats/nats.conf', 'deploy/k8s/overlays/dev/nats.conf'];

/** Exit code of `nats-server -t` on `config` mounted beside auth.conf, with `env`. */
function check(config: string, env: Record<string, string>): { code: number; output: string } {
  const dir = mkdtempSync(join(tmpdir(), 'specula-nats-conf-'));
  try {
    copyFileSync(`${REPO}/${config}`, join(dir, 'nats.conf'));
    copyFileSync(AUTH, join(dir, 'auth.conf'));
    // nats-server says "valid" on stderr.
    const r = spawnSync(findNatsServerBinary()!, ['-t', '-c', join(dir, 'nats.conf')], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8' });
    return { code: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const passwords = Object.fromEntries([...passwordVariables(AUTH).values()].map((v) => [v, `${v.toLowerCase()}-test`]));

describe.skipIf(skipWithoutNatsBinary('the shipped NATS configurations'))('shipped NATS configurations', () => {
  it.each(CONFIGS)('%s is valid for nats-server', (config) => {
    const r = check(config, { ...passwords, POD_NAME: 'nats-0' });
    expect(r.output).toContain('is valid');
    expect(r.code).toBe(0);
  });

  it('refuses to start without a password it refers to (the check can fail)', () => {
    const { SPECULA_NATS_CLIENT_PASSWORD: _dropped, ...fewer } = passwords;
    expect(check(CONFIGS[0]!, fewer).code).not.toBe(0);
  });
});
