import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../../lib/errors.js';
import { parseServers } from '../../../lib/runtime/nats/connect.js';

describe('parseServers: the --nats-url list, checked before anything connects', () => {
  it('takes one or more servers, with or without a scheme, and moves URL credentials out of the URL', () => {
    expect(parseServers('nats://127.0.0.1:4222').servers).toEqual(['nats://127.0.0.1:4222']);
    expect(parseServers('localhost:4222, tls://nats-1:4443').servers).toEqual(['localhost:4222', 'tls://nats-1:4443']);
    const withUser = parseServers('nats://ops:s%40cret@nats-0:4222');
    expect(withUser).toMatchObject({ servers: ['nats://nats-0:4222'], user: 'ops', pass: 's@cret' });
    expect(withUser.display).not.toContain('cret');
    expect(parseServers('nats://[::1]:4222').servers).toEqual(['nats://[::1]:4222']);
  });

  it('refuses, as a wrong flag and not an unreachable server, an empty list, a scheme NATS does not speak, or no valid port', () => {
    for (const bad of ['', ' , ', 'http://nats-0:4222', 'nats://127.0.0.1:99999', 'nats://127.0.0.1:0', 'nats://nats 0:4222']) {
      expect(() => parseServers(bad), bad).toThrow(ConfigError);
    }
  });
});
