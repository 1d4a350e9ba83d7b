/**
 * Credentials and TLS against a real nats-server running the shipped users
 * (deploy/k8s/base/nats/auth.conf) behind TLS with a CA made for the test:
 * a service connects with the CA and its user, and is refused, with a clear
 * message and no secret in it, without the CA or with a wrong password.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_UNAVAILABLE } from '../../cli/exit-codes.js';
import { compiledCliPath } from '../../cli/launcher/child.js';
import { CredentialsRefusedError, TransportError } from '../../lib/errors.js';
import { natsAuthFromEnv } from '../../lib/runtime/nats/auth.js';
import { connectNats } from '../../lib/runtime/nats/connect.js';
import { passwordVariables } from '../deploy/support/nats-auth.js';
import { isCi, skipWithoutNatsBinary, startNatsServer, type NatsServerProcess } from './support/nats.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const AUTH = `${REPO}/deploy/k8s/base/nats/auth.conf`;
const PASSWORDS = Object.fromEntries([...passwordVariables(AUTH).entries()].map(([user, variable]) => [variable, `${user}-pw-${process.pid}`]));

function hasOpenssl(): boolean {
  if (spawnSync('openssl', ['version']).status === 0) return true;
  if (isCi()) throw new Error('openssl is not installed: the TLS test cannot make its certificates');
  console.warn('\nNATS TLS test SKIPPED: openssl is not installed\n');
  return false;
}

/** A CA and a server certificate for 127.0.0.1 (which the client checks as localhost) signed by it, in `dir`. */
function makeCertificates(dir: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=specula-test-ca');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext');
}

describe.skipIf(skipWithoutNatsBinary('NATS credentials and TLS') || !hasOpenssl())('NATS credentials and TLS, against the shipped users', () => {
  const dir = mkdtempSync(join(tmpdir(), 'specula-tls-'));
  let server: NatsServerProcess;
  const url = () => `nats://127.0.0.1:${server.port}`;
  const passwordOf = (user: string) => PASSWORDS[passwordVariables(AUTH).get(user)!]!;

  beforeAll(async () => {
    makeCertificates(dir);
    copyFileSync(AUTH, join(dir, 'auth.conf'));
    writeFileSync(join(dir, 'nats.conf'), `tls {\n  cert_file: "${dir}/server.pem"\n  key_file: "${dir}/server.key"\n}\ninclude ./auth.conf\n`);
    server = await startNatsServer({ configFile: join(dir, 'nats.conf'), env: { PATH: process.env.PATH, ...PASSWORDS } });
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('connects over TLS with the CA and a user\'s password, from the environment', async () => {
    const nc = await connectNats({ servers: url(), reconnect: false }, natsAuthFromEnv({ NATS_USER: 'client', NATS_PASSWORD: passwordOf('client'), NATS_TLS_CA: join(dir, 'ca.pem') }));
    try {
      expect(nc.info?.tls_required).toBe(true);
      await nc.flush();
    } finally {
      await nc.close();
    }
  });

  it('refuses a server whose certificate no trusted CA signed', async () => {
    await expect(connectNats({ servers: url(), reconnect: false, connectTimeoutMs: 2_000 }, natsAuthFromEnv({ NATS_USER: 'client', NATS_PASSWORD: passwordOf('client'), NATS_TLS: '1' }))).rejects.toBeInstanceOf(TransportError);
  });

  it('a wrong password is refused with its own error, which is no reason to retry: the server answered', async () => {
    const err = await connectNats({ servers: url(), reconnect: false, connectTimeoutMs: 2_000 }, natsAuthFromEnv({ NATS_USER: 'client', NATS_PASSWORD: 'not-the-password', NATS_TLS_CA: join(dir, 'ca.pem') })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialsRefusedError);
    expect((err as CredentialsRefusedError).retryable).toBe(false);
  });

  it('specula up given a wrong password exits as for an unavailable bus and starts no server of its own beside the one that refused it', () => {
    const r = spawnSync(process.execPath, [compiledCliPath(), 'up', '--nats-url', url(), '--exit-after-s', '5'], {
      env: { PATH: process.env.PATH, NATS_USER: 'failover', NATS_PASSWORD: 'not-the-password', NATS_TLS_CA: join(dir, 'ca.pem'), SPECULA_LOG_LEVEL: 'silent' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(EXIT_UNAVAILABLE);
    expect(r.stdout).not.toContain('started nats-server');
    expect(r.stderr).not.toContain('started nats-server');
  });

  it('a service given a wrong password exits as for an unavailable bus, saying the credentials were refused, never showing the password', () => {
    const r = spawnSync(process.execPath, [compiledCliPath(), 'service', 'failover', '--nats-url', url()], {
      env: { PATH: process.env.PATH, NATS_USER: 'failover', NATS_PASSWORD: 'not-the-password', NATS_TLS_CA: join(dir, 'ca.pem'), SPECULA_LOG_LEVEL: 'silent' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(EXIT_UNAVAILABLE);
    expect(r.stderr).toMatch(/refused the credentials \(user failover, TLS\)/);
    expect(`${r.stdout}${r.stderr}`).not.toContain('not-the-password');
  });
});
