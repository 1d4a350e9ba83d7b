import { readFileSync } from 'node:fs';
import { credsAuthenticator, type Authenticator, type NodeConnectionOptions } from '@nats-io/transport-node';
import { ConfigError } from '../../errors.js';

type NodeTlsOptions = NonNullable<NodeConnectionOptions['tls']>;

/**
 * How a process proves who it is to NATS, and how it secures the
 * connection. Secrets are read here and only here; nothing below ever
 * reaches a log line or an error message.
 */
export interface NatsAuth {
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
  /** A decentralised-auth credentials file (JWT and NKey seed), read at connect. */
  readonly authenticator?: Authenticator;
  readonly tls?: NodeTlsOptions;
  /** What a log may say about the credentials: the kind and the user, never a secret. */
  readonly describe: string;
}

/**
 * The environment variables a process takes its NATS credentials and TLS
 * from, as the nats CLI names them where it has a name for them. A `_FILE`
 * variant reads the value from a file (a mounted Kubernetes or Compose secret).
 */
export const NATS_AUTH_ENV = {
  user: 'NATS_USER',
  password: 'NATS_PASSWORD',
  passwordFile: 'NATS_PASSWORD_FILE',
  token: 'NATS_TOKEN',
  tokenFile: 'NATS_TOKEN_FILE',
  creds: 'NATS_CREDS',
  tlsCa: 'NATS_TLS_CA',
  tlsCert: 'NATS_TLS_CERT',
  tlsKey: 'NATS_TLS_KEY',
  tlsRequired: 'NATS_TLS',
} as const;

type Env = Readonly<Record<string, string | undefined>>;

const set = (v: string | undefined): v is string => v !== undefined && v !== '';

/** A secret's value from the variable itself or from the file its _FILE variant names; both is an error. */
function secret(env: Env, name: string, fileName: string): string | undefined {
  const direct = env[name];
  const file = env[fileName];
  if (set(direct) && set(file)) throw new ConfigError(`both ${name} and ${fileName} are set; give one`);
  if (!set(file)) return set(direct) ? direct : undefined;
  try {
    // A trailing newline is how secret files usually end; it is not part of the secret.
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (cause) {
    throw new ConfigError(`${fileName} ${file}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

function readable(name: string, path: string): string {
  try {
    readFileSync(path);
  } catch (cause) {
    throw new ConfigError(`${name} ${path}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
  return path;
}

/**
 * Credentials and TLS options from the environment: a user and password, a
 * token, or a credentials file (one of them), and TLS when any TLS variable
 * is set (NATS_TLS=1 alone: TLS with the system's CAs). Wrong combinations
 * are a ConfigError naming the variables.
 */
export function natsAuthFromEnv(env: Env = process.env): NatsAuth {
  const E = NATS_AUTH_ENV;
  const user = env[E.user];
  const pass = secret(env, E.password, E.passwordFile);
  const token = secret(env, E.token, E.tokenFile);
  const credsFile = env[E.creds];
  const kinds = [set(user) || pass !== undefined ? 'user' : null, token !== undefined ? 'token' : null, set(credsFile) ? 'creds' : null].filter((k) => k !== null);
  if (kinds.length > 1) throw new ConfigError(`NATS credentials of more than one kind are set (${kinds.join(', ')}): give a user and password, a token (${E.token}) or a credentials file (${E.creds})`);
  if (set(user) !== (pass !== undefined)) throw new ConfigError(`${E.user} and ${E.password} (or ${E.passwordFile}) go together`);
  const tlsWanted = [E.tlsCa, E.tlsCert, E.tlsKey].some((k) => set(env[k])) || env[E.tlsRequired] === '1' || env[E.tlsRequired] === 'true';
  if (set(env[E.tlsCert]) !== set(env[E.tlsKey])) throw new ConfigError(`${E.tlsCert} and ${E.tlsKey} go together (a client certificate and its key)`);
  const file = (name: string, key: 'caFile' | 'certFile' | 'keyFile') => {
    const path = env[name];
    return set(path) ? { [key]: readable(name, path) } : {};
  };
  const tls: NodeTlsOptions | undefined = tlsWanted ? { ...file(E.tlsCa, 'caFile'), ...file(E.tlsCert, 'certFile'), ...file(E.tlsKey, 'keyFile') } : undefined;
  const tlsText = tls === undefined ? '' : ', TLS';
  if (set(user)) return { user, pass: pass!, ...(tls ? { tls } : {}), describe: `user ${user}${tlsText}` };
  if (token !== undefined) return { token, ...(tls ? { tls } : {}), describe: `token${tlsText}` };
  if (set(credsFile)) {
    const path = readable(E.creds, credsFile);
    return { authenticator: credsAuthenticator(() => readFileSync(path)), ...(tls ? { tls } : {}), describe: `credentials file ${path}${tlsText}` };
  }
  return { ...(tls ? { tls } : {}), describe: `no credentials${tlsText}` };
}
