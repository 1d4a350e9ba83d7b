import { describe, expect, it } from 'vitest';
import { VmLossClassifier } from '../../../services/auditor/vm-loss.js';
import { A, assignment, B, C, failoverStatus, guestStatus, roleChange, S } from './support.js';

describe('VmLossClassifier during a promotion', () => {
  it('a spare going down while the synced backup is being promoted loses nothing', () => {
    const c = new VmLossClassifier({ primaryHost: A, backupHost: B });
    c.observe(S.host(B).status, guestStatus(B, 1, { role: 'backup', synced: true, ready: false }), 100);
    c.hostDown(A, 200); // the primary crashes: B holds a complete image
    expect(c.lost).toBe(false);
    c.leaseWritten({ primaryHost: B, term: 2, expiresAtMs: 0 });
    c.observe(S.control(B), roleChange(B, 'primary', 2, '', 1), 300);
    c.observe(S.failover, { ...failoverStatus(B, '', 2), state: 'promoting' }, 300);
    c.observe(S.host(B).status, guestStatus(B, 2, { role: 'promoting', ready: true }), 400);
    expect(c.lost).toBe(false);
    // Before B's agent assigns its guest 'primary', the spare C crashes.
    c.hostDown(C, 500);
    expect(c.reason).toBeNull();
    expect(c.lost).toBe(false);
  });

  it('the cut-off old primary halting itself while the synced backup is being promoted loses nothing', () => {
    const c = new VmLossClassifier({ primaryHost: A, backupHost: B });
    c.observe(S.host(B).status, guestStatus(B, 1, { role: 'backup', synced: true, ready: false }), 100);
    // A is cut off (not down): the failover service takes the lease for B and promotes it.
    c.leaseWritten({ primaryHost: B, term: 2, expiresAtMs: 0 });
    c.observe(S.control(B), roleChange(B, 'primary', 2, '', 1), 300);
    c.observe(S.failover, { ...failoverStatus(B, '', 2), state: 'promoting' }, 300);
    c.observe(S.host(B).status, guestStatus(B, 2, { role: 'promoting', ready: true }), 400);
    // A service of the deposed A restarts: its agent halts the host.
    c.observe(S.host(A).assign('guest'), assignment(A, 'stopped', 1, 5), 500);
    expect(c.reason).toBeNull();
    expect(c.lost).toBe(false);
  });
});
