import { describe, expect, it } from 'vitest';
import { AgentDriver, BACKUP, PRIMARY, renewalsIn, SPARE } from './support.js';

describe('HostAgentCore: own-lease conflicts, once per heartbeat', () => {
  it('a conflict on its own lease in a later heartbeat renews again at once, as the first one did', () => {
    const d = AgentDriver.started(PRIMARY, 'primary', BACKUP);
    d.reportAll();
    d.answer('ok');
    d.beat();
    // The failover service names a new backup: the renewal conflicts, the agent retries at once.
    expect(renewalsIn(d.answer('conflict', { primaryHost: PRIMARY, term: 1, expiresAtMs: 40, backupHost: SPARE }))).toHaveLength(1);
    d.answer('ok');
    d.reportAll();
    d.beat();
    // A heartbeat later it drops that backup: the same kind of conflict, in a new heartbeat.
    expect(renewalsIn(d.answer('conflict', { primaryHost: PRIMARY, term: 1, expiresAtMs: 50, backupHost: '' }))).toHaveLength(1);
  });

  it('a promoted primary renews again at once on a conflict on its own lease', () => {
    const d = AgentDriver.started(BACKUP, 'backup', PRIMARY);
    d.reportAll({ guest: { epoch: 4, synced: true } });
    d.control(d.roleChange('primary', 2, ''));
    d.reportAll({ guest: { ready: true, epoch: 4 }, acker: { ready: true } });
    // The claim conflicts on the lease the failover service took for it (it expected revision 0), and is retried.
    expect(renewalsIn(d.answer('conflict', { primaryHost: BACKUP, term: 2, expiresAtMs: 40, backupHost: '' }))).toHaveLength(1);
    d.answer('ok');
    expect(d.core.state).toBe('primary');
    d.reportAll();
    d.beat();
    // Re-protection: the failover service names a new backup in the lease.
    expect(renewalsIn(d.answer('conflict', { primaryHost: BACKUP, term: 2, expiresAtMs: 60, backupHost: SPARE }))).toHaveLength(1);
  });
});
