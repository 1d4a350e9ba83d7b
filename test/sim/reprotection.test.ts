import { describe, expect, it } from 'vitest';
import { PAGE_BYTES } from '../../lib/memory/paged-memory.js';
import { summarize, timelineOf } from '../../sim/run.js';
import { backupHostOf, buildWorld, primaryHostOf, runWorld, type World } from '../../sim/world.js';
import { config } from '../support/run.js';

/** A small guest that dirties pages all the time, so the base image races the application. */
const scenario = {
  link: { bandwidthBitsPerSec: 200e6, rttMs: 2 },
  epochMs: 10,
  durationS: 3,
  guest: { memoryBytes: 4 * 1024 * 1024, appDirtyPagesPerSec: 20_000 },
  tcp: { sndBufBytes: 512 * 1024 },
  buffers: { specBufferBytes: 1024 * 1024, heldBytesMax: 2 * 1024 * 1024 },
  checkpoint: { chunkBytes: 64 * 1024, seedBytesPerEpoch: 256 * 1024 },
  faults: { crashPrimaryAtMs: 800 },
} as const;

const run = (input: Parameters<typeof config>[0], extraCrashesMs: number[] = [], hooks = {}): World => {
  const world = buildWorld(config(input), hooks);
  runWorld(world, undefined, extraCrashesMs.map((atMs) => ({ kind: 'crash', role: 'primary', atMs }) as const));
  return world;
};

describe('re-protection onto the spare', () => {
  for (const mode of ['remus', 'spec'] as const) {
    it(`gives the spare a base image, then every epoch, and the VM is protected again (${mode})`, () => {
      const world = run({ ...scenario, mode }, [], { recordDigests: true });
      const rep = world.replication!;
      const r = summarize(world);
      expect(r.failovers).toBe(1);
      expect(r.reprotections).toBe(1);
      expect(rep.failover!.state).toBe('protected');
      expect(backupHostOf(world)?.name).toBe('host-c');
      const backup = backupHostOf(world)!.services.guest.standby!;
      expect(backup.synced).toBe(true);
      expect(backup.stats.baseEpoch).toBeGreaterThan(0);
      // Every epoch from the base on leaves the new backup with exactly the pages the primary sent it.
      const primary = primaryHostOf(world)!.services;
      const guestDigests = primary.guest.vm!.capture!.digests;
      let compared = 0;
      for (const [epoch, digest] of backup.digests) {
        expect(digest.memory, `memory at epoch ${epoch}`).toBe(guestDigests.get(epoch)!.memory);
        expect(digest.state, `state at epoch ${epoch}`).toBe(guestDigests.get(epoch)!.state);
        if (mode === 'spec') expect(digest.spec, `speculative buffer at epoch ${epoch}`).toBe(primary.acker.digests.get(epoch));
        compared++;
      }
      expect(compared).toBeGreaterThan(100);
      expect(r.streamVerified).toBe(true);
    });
  }

  it('completes within the epochs the base image needs, and the guest keeps running meanwhile', () => {
    const c = config({ ...scenario, mode: 'spec' });
    const world = run(c);
    const r = summarize(world);
    const pages = c.guest.memoryBytes / PAGE_BYTES;
    const seedEpochs = Math.ceil(pages / (c.checkpoint.seedBytesPerEpoch / PAGE_BYTES));
    // The join waits for the next barrier (one epoch), the base takes seedEpochs checkpoints, the last one's
    // commit and the new backup's next heartbeat follow.
    const boundMs = (seedEpochs + 2) * c.epochMs + c.failover.heartbeatIntervalMs + 5;
    expect(r.reprotectMs).not.toBeNull();
    expect(r.reprotectMs!).toBeLessThanOrEqual(boundMs);
    const promotedAtMs = world.replication!.failover!.stats.promotedAtUs[0]! / 1000;
    const reprotectedAtMs = promotedAtMs + r.reprotectMs!;
    const { deliveredPerBin: timeline, binUs } = timelineOf(world);
    const binMs = binUs / 1000;
    // Delivery comes back once the promoted guest's first epoch has run and its output gone out: within two epochs,
    // and the time the promoted acker takes to send again, at the link's rate, what the client received after the
    // last committed checkpoint (the client's new ACKs are beyond what the acker sent; they are ignored until it
    // catches up): at most what the link held at the crash, its queue and one bandwidth-delay product.
    const resumed = timeline.findIndex((bytes, i) => i * binMs >= promotedAtMs && bytes > 0);
    expect(resumed).toBeGreaterThan(0);
    const inFlightMaxBytes = c.link.queueBytes + (c.link.bandwidthBitsPerSec / 8) * (c.link.rttMs / 1000);
    const resendMs = ((inFlightMaxBytes * 8) / c.link.bandwidthBitsPerSec) * 1000;
    expect(resumed * binMs).toBeLessThanOrEqual(promotedAtMs + 2 * c.epochMs + resendMs);
    // Not stopped: from then until the new backup is synced the client received in every bin, though the base
    // image is being copied meanwhile.
    let checked = 0;
    for (let i = resumed; i < timeline.length && (i + 1) * binMs <= reprotectedAtMs; i++) {
      expect(timeline[i], `bytes delivered in [${i * binMs}, ${(i + 1) * binMs}) ms`).toBeGreaterThan(0);
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
  });

  for (const mode of ['remus', 'spec'] as const) {
    for (const workload of [{ kind: 'bulk', totalBytes: 0 }, { kind: 'rr', requestBytes: 100, responseBytes: 20_000 }] as const) {
      it(`survives a second primary crash: the re-protected backup takes over and the stream stays exact (${mode}, ${workload.kind})`, () => {
        const world = run({ ...scenario, mode, workload, durationS: 4 }, [2200]);
        const rep = world.replication!;
        const r = summarize(world);
        expect(r.failovers).toBe(2);
        expect(primaryHostOf(world)?.name).toBe('host-c');
        expect(rep.failover!.term).toBe(3);
        // No spare is left: the VM runs on, unprotected.
        expect(rep.failover!.state).toBe('unprotected');
        expect(r.streamVerified).toBe(true);
        const timeline = world.client.stats.deliveredPerBin;
        const lastSecond = timeline.slice(-timeline.length / 4).reduce((a, b) => a + b, 0);
        expect(lastSecond).toBeGreaterThan(0);
        if (workload.kind === 'rr') expect(r.requestsCompleted).toBeGreaterThan(100);
      });
    }
  }

  for (const mode of ['remus', 'spec'] as const) {
    it(`hosts killed one after another and started again each rejoin as spares: every failover is followed by re-protection (${mode}; the soak)`, () => {
      // The primary dies every 800 ms; each dead host starts again 300 ms later, in the role the VM was created with.
      const world = buildWorld(config({ ...scenario, mode, durationS: 4.5, faults: { crashPrimaryAtMs: null } }));
      const crashes = [800, 1600, 2400, 3200].map((atMs) => ({ kind: 'crash', role: 'primary', atMs }) as const);
      const revivals = [1100, 1900, 2700, 3500].map((atMs) => ({ kind: 'revive', atMs }) as const);
      runWorld(world, undefined, [...crashes, ...revivals]);
      const rep = world.replication!;
      const r = summarize(world);
      expect(rep.vmLoss.lost).toBe(false);
      expect(r.failovers).toBe(4);
      expect(r.reprotections).toBeGreaterThanOrEqual(4);
      expect(rep.failover!.state).toBe('protected');
      expect(rep.failover!.term).toBe(5);
      expect(r.streamVerified).toBe(true);
      const timeline = world.client.stats.deliveredPerBin;
      expect(timeline.slice(-timeline.length / 5).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    });
  }

  it('a joining backup that dies mid-base leaves the primary unprotected and running', () => {
    // Four base pages per epoch and a quiet application: the base image needs about two seconds.
    const world = buildWorld(config({ ...scenario, mode: 'spec', guest: { ...scenario.guest, appDirtyPagesPerSec: 100 }, checkpoint: { ...scenario.checkpoint, seedBytesPerEpoch: 16 * 1024 } }));
    runWorld(world, undefined, [{ kind: 'crash', role: 'backup', atMs: 1200 }]);
    const rep = world.replication!;
    const r = summarize(world);
    const primary = primaryHostOf(world)!.services.checkpointer.primary!;
    expect(r.failovers).toBe(1);
    expect(r.reprotections).toBe(1);
    expect(rep.failover!.stats.reprotectDurationsUs).toEqual([]);
    expect(rep.failover!.state).toBe('unprotected');
    expect(primary.unprotected).toBe(true);
    expect(primary.stats.backupsJoined).toBe(1);
    const timeline = world.client.stats.deliveredPerBin;
    expect(timeline.slice(-timeline.length / 3).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(r.streamVerified).toBe(true);
  });

  it('a backup that dies is replaced by the spare without a failover', () => {
    const w2 = buildWorld(config({ ...scenario, mode: 'spec', faults: { crashPrimaryAtMs: null } }));
    runWorld(w2, undefined, [{ kind: 'crash', role: 'backup', atMs: 800 }]);
    const rep = w2.replication!;
    const r = summarize(w2);
    expect(r.failovers).toBe(0);
    expect(r.reprotections).toBe(1);
    expect(primaryHostOf(w2)?.name).toBe('host-a');
    expect(rep.failover!.state).toBe('protected');
    expect(backupHostOf(w2)?.name).toBe('host-c');
    expect(r.streamVerified).toBe(true);
  });

  it('a backup cut off from the failover service is replaced by the spare, and the stream stops going to it', () => {
    const world = buildWorld(config({ ...scenario, mode: 'spec', faults: { crashPrimaryAtMs: null } }));
    runWorld(world, undefined, [{ kind: 'isolate-backup', fromMs: 800, toMs: 1600 }]);
    const rep = world.replication!;
    const r = summarize(world);
    expect(r.failovers).toBe(0);
    expect(r.reprotections).toBe(1);
    expect(rep.failover!.state).toBe('protected');
    expect(rep.failover!.backupHost).toBe('host-c');
    expect(world.hosts.get('host-c')!.services.guest.standby!.synced).toBe(true);
    // The dropped backup still believes it is one, but the primary replicates to its peer's subject only: its image stops.
    const primary = primaryHostOf(world)!.services.checkpointer.primary!;
    const dropped = world.hosts.get('host-b')!.services.guest.standby!;
    expect(dropped.stats.appliedEpoch).toBeLessThan(primary.stats.lastCommittedEpoch - 20);
    expect(r.streamVerified).toBe(true);
    const timeline = world.client.stats.deliveredPerBin;
    expect(timeline.slice(-timeline.length / 3).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });

  it('a primary that dies just before the failover service gives up its backup (cut off from it) is a double failure: the dropped backup is never promoted', () => {
    const world = buildWorld(config({ ...scenario, mode: 'spec', faults: { crashPrimaryAtMs: null } }));
    // host-b's last heartbeat reaches the failover service at 800 ms; it is silent at 830 ms, the primary dies at 825 ms.
    runWorld(world, undefined, [
      { kind: 'isolate-backup', fromMs: 801, toMs: 2000 },
      { kind: 'crash', role: 'primary', atMs: 825 },
    ]);
    const rep = world.replication!;
    const r = summarize(world);
    expect(rep.vmLoss.lostAtUs).toBeGreaterThanOrEqual(825_000);
    expect(rep.vmLoss.lostAtUs).toBeLessThanOrEqual(832_000);
    expect(r.failovers).toBe(0);
    expect(rep.failover!.backupHost).not.toBe('host-b');
    expect(r.streamVerified).toBe(true);
  });

  it('a backup that dies after being told to take over (a false suspicion of the primary) is a double failure: the old primary stays fenced', () => {
    const input = { ...scenario, mode: 'spec' as const, faults: { crashPrimaryAtMs: null } };
    const isolate = { kind: 'isolate-primary', fromMs: 801, toMs: 2000 } as const;
    // The simulation is deterministic: a first run shows when host-b is told to become primary.
    let promotedAtUs = 0;
    const first = buildWorld(config(input), { onPublish: (_s, msg, nowUs) => void (msg.type === 'roleChange' && msg.role === 'primary' && msg.host === 'host-b' && promotedAtUs === 0 && (promotedAtUs = nowUs)) });
    runWorld(first, undefined, [isolate]);
    expect(promotedAtUs).toBeGreaterThan(801_000);
    const world = buildWorld(config(input));
    runWorld(world, undefined, [isolate, { kind: 'crash', role: 'backup', atMs: promotedAtUs / 1000 + 1 }]);
    const rep = world.replication!;
    expect(rep.vmLoss.lostAtUs).toBe(promotedAtUs + 1_000);
    expect(rep.failover!.stats.failovers).toBe(0);
    // The old primary's lease was taken: it is deposed, and its permit has run out.
    const a = world.hosts.get('host-a')!;
    expect(a.services.agent.state).toBe('deposed');
    expect(a.services.agent.permitUntilUs).toBeLessThan(world.runtime.localNowUs(a.services.agent));
    expect(summarize(world).streamVerified).toBe(true);
  });

  it('a backup whose guest restarts empty reports in as a spare and is protected again from a base epoch', () => {
    const world = buildWorld(config({ ...scenario, mode: 'spec', faults: { crashPrimaryAtMs: null } }), { recordDigests: true });
    // host-b's service restarts: the spare host-c takes its place. Then host-c's does: host-b, a spare again, comes back.
    runWorld(world, undefined, [{ kind: 'restart-backup', atMs: 800 }, { kind: 'restart-backup', atMs: 1800 }]);
    const rep = world.replication!;
    const r = summarize(world);
    expect(r.failovers).toBe(0);
    expect(r.reprotections).toBe(2);
    expect(rep.failover!.state).toBe('protected');
    expect(backupHostOf(world)?.name).toBe('host-b');
    const backup = backupHostOf(world)!.services.guest.standby!;
    expect(backup.stats.baseEpoch).toBeGreaterThan(0);
    // Before it is synced the new image still has empty pages the guest filled long ago; from then on it is exact.
    const syncedEpoch = backup.stats.syncedEpoch;
    expect(syncedEpoch).toBeGreaterThanOrEqual(backup.stats.baseEpoch);
    const capture = primaryHostOf(world)!.services.guest.vm!.capture!;
    let compared = 0;
    for (const [epoch, digest] of backup.digests) {
      if (epoch < syncedEpoch) continue;
      expect(digest.memory, `memory at epoch ${epoch}`).toBe(capture.digests.get(epoch)!.memory);
      compared++;
    }
    expect(compared).toBeGreaterThan(50);
    expect(r.streamVerified).toBe(true);
  });

  it('a backup host that reboots faster than a missed heartbeat is given up and joins again from a base epoch; a later crash of the primary promotes a complete image', () => {
    const world = buildWorld(config({ ...scenario, mode: 'spec', faults: { crashPrimaryAtMs: null } }), { recordDigests: true });
    // host-b's agent and services start over: its guest is a backup "as at creation", an empty image that calls itself
    // complete. Promoting it after the primary's crash would lose every byte that left since the start. The failover
    // service sees the agent's new incarnation; here the agent also sees its guest's (a report of the old guest was
    // still on the bus), so either gives it up (the failover core's unit tests hold the former alone).
    runWorld(world, undefined, [{ kind: 'reboot-backup', atMs: 800 }, { kind: 'crash', role: 'primary', atMs: 1800 }]);
    const rep = world.replication!;
    const r = summarize(world);
    expect(rep.failovers.reduce((n, f) => n + f.stats.supervisorRestarts, 0)).toBe(1);
    expect(r.reprotections).toBeGreaterThanOrEqual(1);
    expect(r.failovers).toBe(1);
    expect(rep.vmLoss.lost).toBe(false);
    expect(r.streamVerified).toBe(true);
  });

  it('an old primary that comes back fenced serves as a spare: after a second failover it is the backup again', () => {
    const world = buildWorld(config({ ...scenario, mode: 'spec', faults: { crashPrimaryAtMs: null } }));
    // host-a is cut off and replaced by host-b (host-c, the spare, joins); it comes back under the old term. When
    // host-b then dies, host-c is promoted and only host-a is left to protect it.
    runWorld(world, undefined, [{ kind: 'isolate-primary', fromMs: 800, toMs: 1000 }, { kind: 'crash', role: 'primary', atMs: 2000 }]);
    const rep = world.replication!;
    const r = summarize(world);
    expect(r.failovers).toBe(2);
    expect(rep.failover!.primaryHost).toBe('host-c');
    expect(rep.failover!.backupHost).toBe('host-a');
    expect(rep.failover!.state).toBe('protected');
    expect(rep.vmLoss.lost).toBe(false);
    expect(r.streamVerified).toBe(true);
  });
});
