import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../../lib/errors.js';
import { natsAuthFromEnv } from '../../../lib/runtime/nats/auth.js';

const dir = mkdtempSync(join(tmpdir(), 'specula-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

describe('NATS credentials and TLS from the environment', () => {
  it('takes nothing from an empty environment', () => {
    const a = natsAuthFromEnv({});
    expect(a).toEqual({ describe: 'no credentials' });
  });

  it('takes a user and a password, and never shows the password', () => {
    const a = natsAuthFromEnv({ NATS_USER: 'guest', NATS_PASSWORD: 's3cret' });
    expect(a.user).toBe('guest');
    expect(a.pass).toBe('s3cret');
    expect(a.describe).toBe('user guest');
    expect(a.describe).not.toContain('s3cret');
  });

  it('reads a password from a secret file, without its trailing newline', () => {
    const a = natsAuthFromEnv({ NATS_USER: 'acker', NATS_PASSWORD_FILE: file('acker', 'from-file\n') });
    expect(a.pass).toBe('from-file');
  });

  it('reads a token from a file', () => {
    expect(natsAuthFromEnv({ NATS_TOKEN_FILE: file('token', 'tok\n') }).token).toBe('tok');
  });

  it('refuses a value given twice, credentials of two kinds, a user without a password, and a missing file, naming the variables', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ NATS_USER: 'u', NATS_PASSWORD: 'p', NATS_PASSWORD_FILE: file('p', 'p') }, /NATS_PASSWORD and NATS_PASSWORD_FILE/],
      [{ NATS_USER: 'u', NATS_PASSWORD: 'p', NATS_TOKEN: 't' }, /more than one kind are set \(user, token\)/],
      [{ NATS_USER: 'u' }, /NATS_USER and NATS_PASSWORD/],
      [{ NATS_PASSWORD: 'p' }, /NATS_USER and NATS_PASSWORD/],
      [{ NATS_USER: 'u', NATS_PASSWORD_FILE: join(dir, 'absent') }, /NATS_PASSWORD_FILE .*absent/],
      [{ NATS_CREDS: join(dir, 'absent.creds') }, /NATS_CREDS .*absent\.creds/],
      [{ NATS_TLS_CERT: file('cert.pem', 'x') }, /NATS_TLS_CERT and NATS_TLS_KEY/],
    ];
    for (const [env, message] of cases) {
      let caught: unknown = null;
      try {
        natsAuthFromEnv(env);
      } catch (err) {
        caught = err;
      }
      expect(caught, JSON.stringify(env)).toBeInstanceOf(ConfigError);
      expect((caught as Error).message).toMatch(message);
      for (const v of Object.values(env)) if (v === 'p' || v === 't') expect((caught as Error).message).not.toContain(`=${v}`);
    }
  });

  it('turns TLS on with a CA, a client certificate and its key, or NATS_TLS=1 alone', () => {
    const ca = file('ca.pem', 'ca');
    const cert = file('client.pem', 'cert');
    const key = file('client.key', 'key');
    expect(natsAuthFromEnv({ NATS_TLS_CA: ca }).tls).toEqual({ caFile: ca });
    expect(natsAuthFromEnv({ NATS_TLS_CA: ca, NATS_TLS_CERT: cert, NATS_TLS_KEY: key }).tls).toEqual({ caFile: ca, certFile: cert, keyFile: key });
    expect(natsAuthFromEnv({ NATS_TLS: '1' }).tls).toEqual({});
    expect(natsAuthFromEnv({ NATS_TLS: '1', NATS_USER: 'u', NATS_PASSWORD: 'p' }).describe).toBe('user u, TLS');
    expect(natsAuthFromEnv({ NATS_TLS: '0' }).tls).toBeUndefined();
  });

  it('takes a credentials file as an authenticator', () => {
    const a = natsAuthFromEnv({ NATS_CREDS: file('user.creds', 'creds') });
    expect(typeof a.authenticator).toBe('function');
    expect(a.describe).toMatch(/^credentials file /);
  });
});
