import { describe, expect, it } from 'vitest';
import { runConfigSchema } from '../../../lib/config/run-config.js';
import { HOST_PROCESSES } from '../../../lib/topology/index.js';
import { labelOf, plannedProcesses } from '../../../cli/launcher/plan.js';

const spec = runConfigSchema.parse({ mode: 'spec' });
const hosts = [spec.hosts.primary, spec.hosts.backup, ...spec.hosts.spares];

describe('the processes a launcher starts', () => {
  it('one per service on every host, then the failover service, by default', () => {
    const plan = plannedProcesses(spec);
    expect(plan).toHaveLength(hosts.length * HOST_PROCESSES.length + 1);
    for (const host of hosts) expect(plan.filter((p) => p.host === host).map((p) => p.services)).toEqual(HOST_PROCESSES.map((s) => [s]));
    expect(plan.at(-1)).toEqual({ services: ['failover'], host: null });
  });

  it("with the host layout, each host's data path in one process and its agent in another: every service still runs once per host", () => {
    const plan = plannedProcesses(spec, 'host');
    expect(plan).toHaveLength(hosts.length * 2 + 1);
    for (const host of hosts) {
      const ofHost = plan.filter((p) => p.host === host);
      expect(ofHost.map(labelOf)).toEqual([`${host} guest+checkpointer+netbuffer+acker`, `${host} host-agent`]);
      expect(ofHost.flatMap((p) => p.services).sort()).toEqual([...HOST_PROCESSES].sort());
    }
  });

  it('native mode has no hosts: its guest alone, whatever the layout', () => {
    const native = runConfigSchema.parse({ mode: 'native' });
    expect(plannedProcesses(native, 'host')).toEqual([{ services: ['guest'], host: null }]);
    expect(labelOf({ services: ['guest'], host: null })).toBe('guest');
  });
});
