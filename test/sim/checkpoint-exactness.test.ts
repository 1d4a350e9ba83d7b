import { describe, expect, it } from 'vitest';
import { buildWorld, runWorld } from '../../sim/world.js';
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
      const rep = world.replication!;
      const primaryDigests = world.guest.capture!.digests;
      const backupDigests = rep.backup!.digests;
      expect(backupDigests.size).toBeGreaterThanOrEqual(2000);
      for (const [epoch, backup] of backupDigests) {
        const primary = primaryDigests.get(epoch);
        expect(primary, `epoch ${epoch} captured`).toBeDefined();
        expect(backup.memory, `memory at epoch ${epoch}`).toBe(primary!.memory);
        expect(backup.state, `guest state at epoch ${epoch}`).toBe(primary!.state);
        if (mode === 'spec') expect(backup.spec, `speculative buffer at epoch ${epoch}`).toBe(rep.acker.digests.get(epoch));
      }
      expect(world.client.stats.streamVerified).toBe(true);
    });
  }

  it('rejects a corrupted chunk, gets it again, and applies only verified epochs', () => {
    let corrupted = 0;
    const world = buildWorld(config({ ...smallGuest, durationS: 1, mode: 'spec' }), {
      recordDigests: true,
      tamper: (subject, msg) => {
        if (corrupted >= 3 || !subject.endsWith('ckpt.data') || msg.type !== 'checkpointChunk' || msg.data.length === 0 || msg.epoch % 7 !== 0) return msg;
        corrupted++;
        const data = msg.data.slice();
        data[data.length >> 1] = data[data.length >> 1]! ^ 0x5a;
        return { ...msg, data };
      },
    });
    runWorld(world);
    const rep = world.replication!;
    expect(corrupted).toBe(3);
    expect(rep.backup!.stats.hashMismatches).toBe(3);
    expect(rep.primary.stats.nacks).toBe(3);
    expect(rep.backup!.stats.appliedEpoch).toBeGreaterThan(100);
    for (const [epoch, backup] of rep.backup!.digests) expect(backup.memory).toBe(world.guest.capture!.digests.get(epoch)!.memory);
  });
});

describe('XOR+RLE page deltas', () => {
  it('send fewer checkpoint bytes when the application changes small parts of pages', () => {
    const run = (pageDelta: boolean) => {
      const world = buildWorld(config({ ...smallGuest, durationS: 2, mode: 'remus', workload: { kind: 'rr', requestBytes: 64, responseBytes: 1000 }, checkpoint: { pageDelta } }));
      runWorld(world);
      return world.replication!.primary.stats;
    };
    const withDelta = run(true);
    const raw = run(false);
    // Without deltas every page travels whole (plus record headers); with them, mostly the changed bytes.
    expect(raw.checkpointBytesTotal).toBeGreaterThanOrEqual(raw.checkpointRawBytesTotal);
    expect(withDelta.checkpointBytesTotal).toBeLessThan(0.5 * withDelta.checkpointRawBytesTotal);
  });
});
