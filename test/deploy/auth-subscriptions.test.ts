/**
 * The shipped NATS users let every service subscribe to what its core asks
 * for, in every replicated mode and role: a subject the server refuses is a
 * service that hears nothing (counted as a permission violation, never a
 * crash), so a mode would run without its data path under the deployment's
 * users. The cores themselves say what they subscribe to.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AssignedRole } from '../../lib/codec/messages.js';
import { runConfigSchema, type RunConfig } from '../../lib/config/run-config.js';
import type { Core } from '../../lib/runtime/types.js';
import { AckerCore } from '../../services/acker/core.js';
import { ackerOptionsFromConfig } from '../../services/acker/options-from-config.js';
import { ClientCore } from '../../services/client/core.js';
import { clientOptionsFromConfig } from '../../services/client/options-from-config.js';
import { CheckpointerCore } from '../../services/checkpointer/core.js';
import { checkpointerOptionsFromConfig } from '../../services/checkpointer/options-from-config.js';
import { FailoverCore } from '../../services/failover/core.js';
import { failoverOptionsFromConfig } from '../../services/failover/options-from-config.js';
import { GuestCore } from '../../services/guest/core.js';
import { guestOptionsFromConfig } from '../../services/guest/options-from-config.js';
import { HostAgentCore } from '../../services/host-agent/core.js';
import { hostAgentOptionsFromConfig } from '../../services/host-agent/options-from-config.js';
import { NetbufferCore } from '../../services/netbuffer/core.js';
import { netbufferOptionsFromConfig } from '../../services/netbuffer/options-from-config.js';
import { activate, assignment } from '../unit/support/supervision.js';

const AUTH = new URL('../../deploy/k8s/base/nats/auth.conf', import.meta.url);
const HOST = 'host-a';

/** user → the subjects it may subscribe to, as auth.conf lists them. */
function subscribeAllowed(): Map<string, string[]> {
  const text = readFileSync(AUTH, 'utf8').replace(/#.*$/gm, '');
  const users = new Map<string, string[]>();
  for (const block of text.split(/user:\s*/).slice(1)) {
    const user = /^([\w-]+)/.exec(block)![1]!;
    const allow = /subscribe:\s*\{\s*allow:\s*\[([^\]]*)\]/.exec(block)?.[1] ?? '';
    users.set(user, [...allow.matchAll(/"([^"]+)"/g)].map((m) => m[1]!));
  }
  return users;
}

/** NATS subject matching: `*` is one token, `>` the rest. */
function matches(pattern: string, subject: string): boolean {
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    if (p[i] === '>') return s.length > i;
    if (i >= s.length || (p[i] !== '*' && p[i] !== s[i])) return false;
  }
  return p.length === s.length;
}

/** What a host service's core subscribes to in each role its agent may give it. */
function hostServiceSubjects(service: string, config: RunConfig): Set<string> {
  const subjects = new Set<string>();
  for (const role of ['spare', 'backup', 'primary'] as AssignedRole[]) {
    const core = build(service, config);
    activate(core, assignment(config.vmId, HOST, role, 1, { peerHost: 'host-b' }), { assign: `specula.${config.vmId}.h.${HOST}.assign.${service}`, permit: `specula.${config.vmId}.h.${HOST}.permit` });
    for (const s of core.subscriptions) subjects.add(s);
  }
  return subjects;
}

function build(service: string, config: RunConfig): Core {
  switch (service) {
    case 'guest':
      return new GuestCore(guestOptionsFromConfig(config, HOST));
    case 'checkpointer':
      return new CheckpointerCore(checkpointerOptionsFromConfig(config, HOST));
    case 'netbuffer':
      return new NetbufferCore(netbufferOptionsFromConfig(config, HOST));
    case 'acker':
      return new AckerCore(ackerOptionsFromConfig(config, HOST));
    default:
      throw new Error(`no host service ${service}`);
  }
}

const CONFIGS: Record<string, RunConfig> = {
  remus: runConfigSchema.parse({ mode: 'remus', vmId: 'vm1' }),
  'remus, backpressuring plug': runConfigSchema.parse({ mode: 'remus', vmId: 'vm1', buffers: { plugFull: 'backpressure' } }),
  spec: runConfigSchema.parse({ mode: 'spec', vmId: 'vm1' }),
  'spec-racc': runConfigSchema.parse({ mode: 'spec-racc', vmId: 'vm1' }),
};

describe('the shipped NATS users allow what each service subscribes to', () => {
  const allowed = subscribeAllowed();
  for (const [name, config] of Object.entries(CONFIGS)) {
    it(name, () => {
      const wanted: [user: string, subjects: Iterable<string>][] = [
        ...['guest', 'checkpointer', 'netbuffer', 'acker'].map((s): [string, Set<string>] => [s, hostServiceSubjects(s, config)]),
        ['host-agent', new HostAgentCore(hostAgentOptionsFromConfig(config, HOST)).subscriptions],
        ['failover', new FailoverCore(failoverOptionsFromConfig(config)).subscriptions],
        ['client', new ClientCore(clientOptionsFromConfig(config)).subscriptions],
      ];
      for (const [user, subjects] of wanted) {
        const patterns = allowed.get(user);
        expect(patterns, `user ${user} in auth.conf`).toBeDefined();
        for (const subject of subjects) expect(patterns!.some((p) => matches(p, subject)), `${user} subscribing to ${subject}`).toBe(true);
      }
    });
  }

  it('matches subjects as NATS does', () => {
    expect(matches('specula.vm1.h.*.rx', 'specula.vm1.h.host-a.rx')).toBe(true);
    expect(matches('specula.vm1.h.*.rx', 'specula.vm1.h.host-a.rx.more')).toBe(false);
    expect(matches('specula.vm1.>', 'specula.vm1.h.host-a.rx')).toBe(true);
    expect(matches('specula.vm1.wire.in', 'specula.vm1.wire.out')).toBe(false);
  });
});
