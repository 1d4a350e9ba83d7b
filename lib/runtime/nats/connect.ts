import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parseConfig } from '../../config/parse.js';
import { ConfigError, TransportError } from '../../errors.js';
import { natsConnectionOptionsSchema, type NatsConnectionOptionsInput } from './options.js';

interface ParsedServers {
  readonly servers: string[];
  readonly user?: string;
  readonly pass?: string;
  /** The servers as logs and errors may show them: no passwords. */
  readonly display: string;
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
  if (servers.length === 0) throw new ConfigError('no NATS server given');
  return { servers, ...(user === undefined ? {} : { user }), ...(pass === undefined ? {} : { pass }), display: shown.join(', ') };
}

/**
 * Connects to NATS with specula's defaults. An unreachable server fails at
 * once with a TransportError that names the URL and what to do about it.
 */
export async function connectNats(input: NatsConnectionOptionsInput = {}): Promise<NatsConnection> {
  const o = parseConfig(natsConnectionOptionsSchema, input);
  const s = parseServers(o.servers);
  try {
    return await connect({
      servers: s.servers,
      ...(s.user === undefined ? {} : { user: s.user }),
      ...(s.pass === undefined ? {} : { pass: s.pass }),
      name: o.name,
      reconnect: o.reconnect,
      maxReconnectAttempts: o.maxReconnectAttempts,
      reconnectTimeWait: o.reconnectTimeWaitMs,
      timeout: o.connectTimeoutMs,
    });
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new TransportError(`cannot connect to NATS at ${s.display} (${why}); start nats-server or pass --nats-url / set NATS_URL`, { cause });
  }
}
