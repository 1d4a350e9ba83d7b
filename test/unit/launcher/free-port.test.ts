import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { freePort } from '../../../cli/launcher/nats-server.js';

/** The first port Linux gives outgoing connections, where the machine says. */
const ephemeralLow = ((): number | null => {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    return null;
  }
})();

describe('freePort', () => {
  it('gives ports a listener can take, below the range outgoing connections take theirs from', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()));
    for (const port of ports) {
      if (ephemeralLow !== null) expect(port).toBeLessThan(ephemeralLow);
      expect(port).toBeGreaterThanOrEqual(1024);
    }
    const first = ports[0]!;
    await new Promise<void>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(first, '127.0.0.1', () => srv.close(() => resolve()));
    });
  });
});
