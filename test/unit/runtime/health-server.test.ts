import { afterEach, describe, expect, it } from 'vitest';
import { HEALTH_PATHS, startHealthServer, type HealthServer } from '../../../lib/runtime/nats/health-server.js';
import { TransportError } from '../../../lib/errors.js';

let servers: HealthServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

const get = async (port: number, path: string, method = 'GET') => {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method });
  return { status: res.status, body: method === 'HEAD' ? null : ((await res.json()) as Record<string, unknown>) };
};

describe('health server', () => {
  it('answers live at once, and ready only while the process says it is', async () => {
    let ready = false;
    const s = await startHealthServer(0, () => ready, () => ({ service: 'acker' }));
    servers.push(s);
    expect(await get(s.port, HEALTH_PATHS.live)).toEqual({ status: 200, body: { status: 'live' } });
    expect(await get(s.port, HEALTH_PATHS.ready)).toEqual({ status: 503, body: { status: 'not ready', service: 'acker' } });
    ready = true;
    expect(await get(s.port, HEALTH_PATHS.ready)).toEqual({ status: 200, body: { status: 'ready', service: 'acker' } });
    expect((await get(s.port, `${HEALTH_PATHS.ready}?verbose=1`)).status).toBe(200);
  });

  it('answers 404 elsewhere and 405 to anything but GET and HEAD', async () => {
    const s = await startHealthServer(0, () => true);
    servers.push(s);
    expect((await get(s.port, '/metrics')).status).toBe(404);
    expect((await get(s.port, HEALTH_PATHS.live, 'POST')).status).toBe(405);
    expect((await get(s.port, HEALTH_PATHS.live, 'HEAD')).status).toBe(200);
  });

  it('fails with a TransportError naming the port when it is taken', async () => {
    const s = await startHealthServer(0, () => true);
    servers.push(s);
    await expect(startHealthServer(s.port, () => true)).rejects.toThrow(TransportError);
    await expect(startHealthServer(s.port, () => true)).rejects.toThrow(new RegExp(`port ${s.port}`));
  });
});
