/**
 * VmLossClassifier: each rule of its doc comment by which a double failure
 * loses the VM (so liveness is not owed), and runs in which nothing is lost.
 */
import { describe, expect, it } from 'vitest';
import type { Heartbeat, WireMessage } from '../../../lib/codec/messages.js';
import { VmLossClassifier } from '../../../services/auditor/vm-loss.js';
import { A, assignment, B, C, failoverStatus, guestStatus, roleChange, S, VM } from './support.js';

/** A classifier for the VM created on A (primary) and B (backup), with C a spare. */
class Run {
  readonly c = new VmLossClassifier({ primaryHost: A, backupHost: B, hosts: [A, B, C] });
  atUs = 0;
  #roleSeq = 0;

  #at(): number {
    return (this.atUs += 100);
  }
  observe(subject: string, msg: WireMessage): this {
    this.c.observe(subject, msg, this.#at());
    return this;
  }
  down(host: string): this {
    this.c.hostDown(host, this.#at());
    return this;
  }
  /** The failover service's role change to `host`. */
  role(host: string, role: 'primary' | 'backup', term: number, peerHost = ''): this {
    return this.observe(S.control(host), roleChange(host, role, term, peerHost, ++this.#roleSeq));
  }
  /** The failover service's view: the backup it would promote. */
  view(primaryHost: string, backupHost: string, term = 1, state: 'protected' | 'unprotected' | 'reprotecting' = 'protected'): this {
    return this.observe(S.failover, failoverStatus(primaryHost, backupHost, term, state));
  }
  /** What `host`'s guest reports running as. */
  guest(host: string, role: 'primary' | 'backup' | 'promoting' | 'spare', synced = false, term = 1): this {
    return this.observe(S.host(host).status, guestStatus(host, term, { role, synced, ready: role === 'promoting' }));
  }
  /** A heartbeat of `host`'s agent process `incarnation` (its start on the host's clock). */
  beat(host: string, incarnation: number): this {
    const hb: Heartbeat = { type: 'heartbeat', vmId: VM, term: 1, host, role: 'spare', epoch: 0, synced: false, controlSeq: 0, incarnation, chunksStaged: 0, followedAgentIncarnation: 0 };
    return this.observe(S.heartbeat(host), hb);
  }
  /** `host`'s agent assigns its guest `role`. */
  assignGuest(host: string, role: 'primary' | 'backup' | 'spare' | 'stopped', term = 1): this {
    return this.observe(S.host(host).assign('guest'), assignment(host, role, term, 9));
  }
  lease(primaryHost: string, term: number): this {
    this.c.leaseWritten({ primaryHost, term, expiresAtMs: 0 });
    return this;
  }

  expectLost(reason: RegExp): void {
    expect(this.c.lost).toBe(true);
    expect(this.c.lostAtUs).toBe(this.atUs);
    expect(this.c.reason).toMatch(reason);
  }
  expectNotLost(): void {
    expect(this.c.lost).toBe(false);
    expect(this.c.lostAtUs).toBeNull();
    expect(this.c.reason).toBeNull();
  }
}

/** A failover: A crashed, its synced backup B is promoted under term 2, runs, and C is joined as its backup. */
function failoverAndReprotect(r: Run): Run {
  r.down(A).lease(B, 2).role(B, 'primary', 2).view(B, '', 2).guest(B, 'promoting', false, 2).assignGuest(B, 'primary', 2).guest(B, 'primary', false, 2).lease(B, 2);
  r.view(B, C, 2).role(C, 'backup', 2, B).role(B, 'primary', 2, C).guest(C, 'backup', false, 2).guest(C, 'backup', true, 2);
  return r;
}

describe('VmLossClassifier', () => {
  describe('loses the VM when', () => {
    it('the primary goes down after the backup did', () => {
      const r = new Run().down(B);
      r.expectNotLost();
      r.down(A);
      r.expectLost(/host-a is down and no backup with a complete image is left/);
    });

    it('the backup goes down after the primary did, before it was promoted', () => {
      const r = new Run().down(A);
      r.expectNotLost();
      r.down(B);
      r.expectLost(/host-a is down/);
    });

    it('the primary goes down while the backup’s guest has restarted (its image is gone)', () => {
      const r = new Run().guest(B, 'spare').down(A);
      r.expectLost(/host-a is down and no backup with a complete image/);
    });

    it('the primary goes down while its new backup is still joining (not synced)', () => {
      const r = new Run().view(A, C).role(C, 'backup', 1, A).role(A, 'primary', 1, C).guest(C, 'backup', false).down(A);
      r.expectLost(/host-a is down/);
    });

    it('the primary goes down while its backup, dropped, joins again and its guest still reports the old image (vopr seed 2026)', () => {
      const r = new Run().guest(B, 'backup', true).view(A, '', 1, 'unprotected').view(A, B, 1, 'reprotecting').role(B, 'backup', 1, A).guest(B, 'backup', true).down(A);
      r.expectLost(/host-a is down and no backup with a complete image/);
    });

    it('the backup being promoted reboots after the primary went down (vopr seed 4068)', () => {
      const r = new Run().guest(B, 'backup', true).down(A).role(B, 'primary', 2).view(B, '', 2);
      r.c.hostRebooted(B, (r.atUs += 100));
      r.expectLost(/host-b rebooted while running the VM/);
    });

    it('the backup reboots after the primary went down, before the failover service promoted it (vopr seed 1512)', () => {
      const r = new Run().guest(B, 'backup', true).down(A);
      r.c.hostRebooted(B, (r.atUs += 100));
      r.expectLost(/host-b rebooted while host-a is down/);
    });

    it('the failover service promotes a backup that rebooted before it was chosen (its guest calls an empty image complete; vopr seed 2919)', () => {
      const r = new Run().guest(B, 'backup', true);
      r.c.hostRebooted(B, (r.atUs += 100));
      r.guest(B, 'backup', true).role(B, 'primary', 2);
      r.expectLost(/host-b was promoted without an image/);
    });

    it('the backup reboots after the primary came back empty, before the failover service could act', () => {
      // The primary crashes with the failover service cut off; its host comes back as at the VM's creation, a primary of
      // term 1 running a VM made anew.
      const r = new Run().guest(B, 'backup', true).down(A);
      r.c.hostRevived(A);
      r.assignGuest(A, 'primary').guest(A, 'primary', true);
      r.expectNotLost(); // the synced backup still holds the VM
      r.c.hostRebooted(B, (r.atUs += 100));
      r.expectLost(/host-b rebooted while host-a started over empty, and no backup with a complete image is left/);
    });

    it("the backup's guest restarts empty after the primary came back empty (vopr seed 65935, the failover service cut off)", () => {
      const r = new Run().guest(B, 'backup', true).down(A);
      r.c.hostRevived(A);
      r.guest(B, 'spare');
      r.expectLost(/host-a started over empty and host-b's guest reports no complete image/);
    });

    it('the backup goes down after the primary came back empty', () => {
      const r = new Run().guest(B, 'backup', true).down(A);
      r.c.hostRevived(A);
      r.down(B);
      r.expectLost(/host-a started over empty and no backup with a complete image is left/);
    });

    it('the primary goes down while it has no backup', () => {
      const r = new Run().view(A, '').down(A);
      r.expectLost(/host-a is down/);
    });

    it('the primary’s agent stops its host while the backup is down', () => {
      const r = new Run().down(B).assignGuest(A, 'stopped');
      r.expectLost(/host-a is down/);
    });

    it('the backup\'s guest restarts empty after the primary went down, before any promotion (vopr seed 10559)', () => {
      const r = new Run().guest(B, 'backup', true).down(A);
      r.expectNotLost();
      r.guest(B, 'backup', false);
      r.expectLost(/host-a is down and host-b's guest reports no complete image/);
    });

    it('the failover service promotes a host that went down', () => {
      const r = new Run().down(B);
      r.expectNotLost();
      r.role(B, 'primary', 2);
      r.expectLost(/host-b was promoted after it went down/);
    });

    it('the failover service promotes a host whose guest restarted after it was chosen', () => {
      const r = new Run().guest(B, 'spare').role(B, 'primary', 2);
      r.expectLost(/host-b was promoted without an image/);
    });

    it('the promoted backup\'s guest restarts empty before it takes the promotion (its role change late: the failover service cut off; vopr seed 8193)', () => {
      const r = new Run().guest(B, 'backup', true).down(A).lease(B, 2).role(B, 'primary', 2);
      r.expectNotLost();
      r.guest(B, 'backup', false);
      r.expectLost(/host-b was promoted, and its guest restarted empty before it took the promotion/);
    });

    it('the failover service promotes a backup that never completed its image', () => {
      const r = new Run().view(A, C).guest(C, 'backup', false).role(C, 'primary', 2);
      r.expectLost(/host-c was promoted without an image/);
    });

    it('the failover service drops the backup of a primary that is already down', () => {
      const r = new Run().down(A);
      r.expectNotLost();
      r.role(A, 'primary', 1, '');
      r.expectLost(/the backup of host-a was dropped or replaced after the primary went down/);
    });

    it('the failover service drops the backup of a primary that came back empty (vopr seeds 1205, 1383: it took the backup whose agent restarted for rebooted)', () => {
      const r = new Run().guest(B, 'backup', true).down(A);
      r.c.hostRevived(A);
      r.assignGuest(A, 'primary').guest(A, 'primary', true);
      r.expectNotLost(); // the synced backup still holds the VM
      r.role(C, 'backup', 1, A);
      r.expectLost(/the backup of host-a was dropped or replaced after the primary started over empty/);
    });

    it('the failover service joins a new backup to a primary that is already down', () => {
      const r = new Run().down(A).role(C, 'backup', 1, A);
      r.expectLost(/the backup of host-a was dropped or replaced/);
    });

    it('the lease was taken for a host that goes down before it runs as primary', () => {
      const r = new Run().lease(B, 2);
      r.expectNotLost();
      r.down(B);
      r.expectLost(/the lease was taken for host-b, which went down before it ran as primary/);
    });

    it('the lease was taken for a host that reboots before it runs as primary, the old primary running on, fenced (vopr seed 118505)', () => {
      const r = new Run().guest(B, 'backup', true).lease(B, 2);
      r.c.hostRebooted(B, (r.atUs += 100));
      r.expectLost(/the lease was taken for host-b, which rebooted before it ran as primary/);
    });
  });

  describe('takes an agent that restarts alone for a reboot of its host', () => {
    it('the backup\'s agent restarts after the primary went down: the failover service gives the backup up', () => {
      const r = new Run().guest(B, 'backup', true).beat(A, 1).beat(B, 1).down(A);
      r.beat(B, 1);
      r.expectNotLost();
      r.beat(B, 5_000);
      r.expectLost(/host-b rebooted while host-a is down, and no backup with a complete image is left/);
    });

    it('not when the host went down or rebooted first (its next agent is expected), nor for an earlier process\'s late heartbeat, nor for a host not of the VM', () => {
      const r = new Run().guest(B, 'backup', true).beat(A, 1).beat(B, 1).beat(C, 1);
      r.down(B);
      r.c.hostRevived(B);
      r.beat(B, 9_000).beat(B, 1); // the new process, then a late copy of the old one's
      r.beat('host-x', 1).beat('host-x', 2);
      r.guest(C, 'backup', true).view(A, C).down(A);
      r.expectNotLost();
      r.beat(B, 9_000).beat(C, 1);
      r.expectNotLost();
    });
  });

  describe('loses nothing when', () => {
    it('the backup reboots while the primary runs', () => {
      const r = new Run().guest(B, 'backup', true);
      r.c.hostRebooted(B, (r.atUs += 100));
      r.expectNotLost();
    });

    it('the primary goes down after a backup that joined again is synced again', () => {
      const r = new Run().guest(B, 'backup', true).view(A, B, 1, 'reprotecting').guest(B, 'backup', false).guest(B, 'backup', true).view(A, B, 1, 'protected').down(A);
      r.expectNotLost();
    });

    it('the primary crashes, its synced backup is promoted and runs, and a spare is joined', () => {
      const r = failoverAndReprotect(new Run());
      r.expectNotLost();
      // The new primary's own renewals name it; it is the primary now.
      r.lease(B, 2);
      r.expectNotLost();
    });

    it('after the failover, the new backup has a complete image: the new primary may go down', () => {
      const r = failoverAndReprotect(new Run()).down(B);
      r.expectNotLost();
    });

    it('the backup goes down while the primary runs, and a spare replaces it', () => {
      const r = new Run().down(B).view(A, C).role(C, 'backup', 1, A).role(A, 'primary', 1, C).guest(C, 'backup', true);
      r.expectNotLost();
      r.down(C);
      r.expectNotLost();
    });

    it('a spare goes down', () => {
      const r = new Run().down(C);
      r.expectNotLost();
    });

    it('the first backup’s guest reports its image, as backup, promoting or primary', () => {
      const r = new Run().guest(B, 'backup', true).guest(B, 'promoting').down(A);
      r.expectNotLost();
    });

    it('only the guest’s reports and the guest’s assignments count', () => {
      const r = new Run().observe(S.host(B).status, { ...guestStatus(B, 1, { role: 'spare' }), service: 'checkpointer' }).observe(S.host(B).assign('checkpointer'), assignment(B, 'stopped', 1, 9));
      r.down(A);
      r.expectNotLost();
    });
  });

  it('keeps the first loss', () => {
    const r = new Run().down(B).down(A);
    const { lostAtUs, reason } = r.c;
    r.role(C, 'primary', 2).down(C);
    expect(r.c.lostAtUs).toBe(lostAtUs);
    expect(r.c.reason).toBe(reason);
  });
});
