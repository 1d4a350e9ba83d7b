import { describe, expect, it } from 'vitest';
import { backupHostOf, buildWorld, primaryHostOf, runWorld, type World } from '../../sim/world.js';

/** The primary's VM, acker and checkpointer, and the backup's image, at the end of a run. */
const sides = (world: World) => {
  const p = primaryHostOf(world)!.services;
  return { capture: p.guest.vm!.capture!, acker: p.acker, checkpointer: p.checkpointer.primary!, backup: backupHostOf(world)!.services.guest.standby! };
};
import { config } from '../support/run.js';

/** A small guest so that thousands of epochs stay cheap; the app dirties pages all the time. */
const smallGuest = {
  durationS: 12,
  epochMs: 5,
  link: { bandwidthBitsPerSec: 50e6, rttMs: 2, lossRate: 0.001 },
  guest: { memoryBytes: 2 * 1024 * 1024, appDirtyPagesPerSec: 20_000 },
  tcp: { sndBufBytes: 256 * 1024 },
  buffers: { specBufferBytes: 512 * 1024, heldBytesMax: 1024 * 1024 },
  checkpoint: { chunkBytes: 64 * 1024 },
} as const;

describe('checkpoint restore is exact', () => {
  for (const mode of ['remus', 'spec'] as const) {
    it(`leaves the backup's image equal to the primary's state at every one of thousands of epochs (${mode})`, () => {
      const world = buildWorld(config({ ...smallGuest, mode }), { recordDigests: true });
      runWorld(world);
      const { capture, acker, backup } = sides(world);
      const primaryDigests = capture.digests;
      const backupDigests = backup.digests;
      expect(backupDigests.size).toBeGreaterThanOrEqual(2000);
      for (const [epoch, digest] of backupDigests) {
        const primary = primaryDigests.get(epoch);
        expect(primary, `epoch ${epoch} captured`).toBeDefined();
        expect(digest.memory, `memory at epoch ${epoch}`).toBe(primary!.memory);
        expect(digest.state, `guest state at epoch ${epoch}`).toBe(primary!.state);
        if (mode === 'spec') expect(digest.spec, `speculative buffer at epoch ${epoch}`).toBe(acker.digests.get(epoch));
      }
      expect(world.client.stats.streamVerified).toBe(true);
      // The byte bound on staged epochs holds whole checkpoints: a run without faults never reaches it.
      expect([backup.stats.stagingEvictedChunks, backup.stats.stagingFullDrops]).toEqual([0, 0]);
    });
  }

  it('rejects a corrupted chunk, gets it again, and applies only verified epochs', () => {
    let corrupted = 0;
    const world = buildWorld(config({ ...smallGuest, durationS: 1, mode: 'spec' }), {
      recordDigests: true,
      tamper: (subject, msg) => {
        if (corrupted >= 3 || !subject.includes('.ckpt.data.') || msg.type !== 'checkpointChunk' || msg.data.length === 0 || msg.epoch % 7 !== 0) return msg;
        corrupted++;
        const data = msg.data.slice();
        data[data.length >> 1] = data[data.length >> 1]! ^ 0x5a;
        return { ...msg, data };
      },
    });
    runWorld(world);
    const { capture, checkpointer, backup } = sides(world);
    expect(corrupted).toBe(3);
    expect(backup.stats.hashMismatches).toBe(3);
    expect(checkpointer.stats.nacks).toBe(3);
    expect(backup.stats.appliedEpoch).toBeGreaterThan(100);
    let compared = 0;
    for (const [epoch, digest] of backup.digests) {
      expect(digest.memory).toBe(capture.digests.get(epoch)!.memory);
      compared++;
    }
    expect(compared).toBeGreaterThan(100);
  });
});

describe('XOR+RLE page deltas', () => {
  it('send fewer checkpoint bytes when the application changes small parts of pages', () => {
    const run = (pageDelta: boolean) => {
      const world = buildWorld(config({ ...smallGuest, durationS: 2, mode: 'remus', workload: { kind: 'rr', requestBytes: 64, responseBytes: 1000 }, checkpoint: { pageDelta } }));
      runWorld(world);
      return sides(world).checkpointer.stats;
    };
    const withDelta = run(true);
    const raw = run(false);
    // Without deltas every page travels whole (plus record headers); with them, mostly the changed bytes.
    expect(raw.checkpointBytesTotal).toBeGreaterThanOrEqual(raw.checkpointRawBytesTotal);
    expect(withDelta.checkpointBytesTotal).toBeLessThan(0.5 * withDelta.checkpointRawBytesTotal);
  });
});
