import { connect, errors, type NatsConnection } from '@nats-io/transport-node';
import { parseConfig } from '../../config/parse.js';
import { ConfigError, CredentialsRefusedError, TransportError } from '../../errors.js';
import { natsAuthFromEnv, type NatsAuth } from './auth.js';
import { natsConnectionOptionsSchema, type NatsConnectionOptionsInput } from './options.js';

interface ParsedServers {
  readonly servers: string[];
  readonly user?: string;
  readonly pass?: string;
  /** The servers as logs and errors may show them: no passwords. */
  readonly display: string;
}

const NATS_SCHEMES = new Set(['nats', 'tls']);
/** Whether `hostPort` is a host with an optional port: an empty port is the default one; URL parsing refuses one above 65535. */
function isHostPort(hostPort: string): boolean {
  if (!URL.canParse(`nats://${hostPort}`)) return false;
  const { port } = new URL(`nats://${hostPort}`);
  return port === '' || Number(port) > 0;
}

/**
 * Splits a comma-separated server list. Credentials in a URL
 * (nats://user:pass@host:4222, as the nats CLI accepts them) become connect
 * options, since the client library ignores them in URLs.
 */
export function parseServers(list: string): ParsedServers {
  const servers: string[] = [];
  const shown: string[] = [];
  let user: string | undefined;
  let pass: string | undefined;
  for (const raw of list.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const m = /^(?:([a-z]+):\/\/)?(?:([^:@/]*)(?::([^@/]*))?@)?(.+)$/i.exec(raw);
    if (m === null) throw new ConfigError(`NATS server '${raw}' is not a URL`);
    const [, scheme, u, p, hostPort] = m;
    const prefix = scheme ? `${scheme}://` : '';
    // A malformed address is a wrong flag, not an unreachable server: say so before trying to connect.
    if (scheme !== undefined && !NATS_SCHEMES.has(scheme.toLowerCase())) throw new ConfigError(`NATS server '${raw}': the scheme is nats:// or tls:// (--nats-url, NATS_URL)`);
    if (!isHostPort(hostPort!)) throw new ConfigError(`NATS server '${raw}' is not a host and port (--nats-url, NATS_URL)`);
    servers.push(prefix + hostPort!);
    shown.push(u ? `${prefix}${u}:***@${hostPort}` : prefix + hostPort!);
    if (u) {
      const du = decodeURIComponent(u);
      const dp = p === undefined ? undefined : decodeURIComponent(p);
      if (user !== undefined && (user !== du || pass !== dp)) throw new ConfigError('NATS servers carry different credentials; use one user for all');
      user = du;
      pass = dp;
    }
  }
  if (servers.length === 0) throw new ConfigError('no NATS server given (--nats-url, NATS_URL)');
  return { servers, ...(user === undefined ? {} : { user }), ...(pass === undefined ? {} : { pass }), display: shown.join(', ') };
}

/**
 * Connects to NATS with specula's defaults and the credentials and TLS of
 * the environment (`auth.ts`). An unreachable server or refused credentials
 * fail at once with a TransportError that names the URL and what to do
 * about it, never a secret.
 */
export async function connectNats(input: NatsConnectionOptionsInput = {}, auth: NatsAuth = natsAuthFromEnv()): Promise<NatsConnection> {
  // Before the schema: its error would name its own field, not the flag.
  const given = typeof input.servers === 'string' ? parseServers(input.servers) : null;
  const o = parseConfig(natsConnectionOptionsSchema, input);
  const s = given ?? parseServers(o.servers);
  const envHasCredentials = auth.user !== undefined || auth.token !== undefined || auth.authenticator !== undefined;
  if (s.user !== undefined && envHasCredentials) throw new ConfigError(`the NATS URL carries a user and the environment has credentials too (${auth.describe}); give one`);
  try {
    return await connect({
      servers: s.servers,
      ...(s.user === undefined ? {} : { user: s.user }),
      ...(s.pass === undefined ? {} : { pass: s.pass }),
      ...(auth.user === undefined ? {} : { user: auth.user, pass: auth.pass }),
      ...(auth.token === undefined ? {} : { token: auth.token }),
      ...(auth.authenticator === undefined ? {} : { authenticator: auth.authenticator }),
      ...(auth.tls === undefined ? {} : { tls: auth.tls }),
      name: o.name,
      reconnect: o.reconnect,
      maxReconnectAttempts: o.maxReconnectAttempts,
      reconnectTimeWait: o.reconnectTimeWaitMs,
      timeout: o.connectTimeoutMs,
    });
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    if (cause instanceof errors.AuthorizationError) throw new CredentialsRefusedError(`NATS at ${s.display} refused the credentials (${auth.describe}): check NATS_USER and NATS_PASSWORD(_FILE), NATS_TOKEN(_FILE) or NATS_CREDS`, { cause });
    const as = envHasCredentials || auth.tls !== undefined ? ` as ${auth.describe}` : '';
    throw new TransportError(`cannot connect to NATS at ${s.display}${as} (${why}); start nats-server or pass --nats-url / set NATS_URL`, { cause });
  }
}
