import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { TransportError } from '../../errors.js';

/** The paths a container orchestrator probes. */
export const HEALTH_PATHS = {
  /** The process answers: its event loop turns. A liveness probe. */
  live: '/healthz',
  /** Every VM's shell runs and the connection to NATS is up. A readiness probe, and the image's healthcheck. */
  ready: '/readyz',
  /** The process's metrics in Prometheus's text format. */
  metrics: '/metrics',
} as const;

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A small HTTP endpoint for probes: `/healthz` answers 200 while the event
 * loop turns, `/readyz` 200 when `ready()` says so and 503 otherwise, each
 * with a JSON body; `/metrics` for Prometheus when given. Anything else is 404. Listens on every interface (a
 * probe comes from outside the container).
 */
export async function startHealthServer(
  port: number,
  ready: () => boolean,
  describe: () => Record<string, unknown> = () => ({}),
  metrics?: (req: IncomingMessage, res: ServerResponse) => void,
  onError: (err: TransportError) => void = (err) => process.stderr.write(`${err.message}\n`),
): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: Record<string, unknown>) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'GET only' });
    if (path === HEALTH_PATHS.live) return send(200, { status: 'live' });
    if (path === HEALTH_PATHS.ready) {
      const ok = ready();
      return send(ok ? 200 : 503, { status: ok ? 'ready' : 'not ready', ...describe() });
    }
    if (path === HEALTH_PATHS.metrics && metrics !== undefined) return metrics(req, res);
    return send(404, { error: `no such path; try ${HEALTH_PATHS.live}, ${HEALTH_PATHS.ready}${metrics ? ` or ${HEALTH_PATHS.metrics}` : ''}` });
  });
  // A probe holds no connection open: a stuck one must not keep the process from stopping.
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    const refused = (err: Error) => reject(new TransportError(`cannot serve health checks on port ${port}: ${err.message}`, { cause: err }));
    server.once('error', refused);
    server.listen(port, () => {
      server.off('error', refused);
      resolve();
    });
  });
  // Once listening, an error (a probe's broken socket is the client's, not this) is the server's own: said, and the service goes on.
  server.on('error', (err) => onError(new TransportError(`health server on port ${port}: ${err.message}`, { cause: err })));
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
