/**
 * The netbuffer's plug as Linux's sch_plug (docs/design-notes.md, the
 * plug): its limit is checked when a segment is held, and a committed
 * epoch either leaves at line rate (paced: the plug is the NIC's queue) or
 * meets the device's drop-tail queue at once (burst: a plug on an IFB
 * device). 100 ms epochs at 1 Gbit/s produce ~4 MB of output an epoch
 * once the window has grown, more than the default plug of 1000 packets.
 */
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../../lib/results/run-result.js';
import { buildWorld, runWorld } from '../../sim/world.js';
import { config, sim } from '../support/run.js';

const POINT = { mode: 'remus', epochMs: 100, durationS: 3, link: { bandwidthBitsPerSec: 1e9, rttMs: 1 } } as const;
const point = (plugRelease: 'paced' | 'burst', heldBytesMax?: number): RunResult => sim({ ...POINT, buffers: { plugRelease, ...(heldBytesMax === undefined ? {} : { heldBytesMax }) } });

describe('the plug (remus, 1 Gbit/s, 100 ms epochs)', () => {
  const defaults = point('paced');
  const largePaced = point('paced', 32 * 1024 * 1024);
  const largeBurst = point('burst', 32 * 1024 * 1024);

  it('drops at its limit when a segment comes to be held, never at the link: a paced release meets no second bound', () => {
    expect(defaults.plugDrops).toBeGreaterThan(0);
    expect(defaults.linkQueueDrops).toBe(0);
    expect(defaults.heldBytesMax).toBeLessThanOrEqual(1_500_000);
    expect(defaults.streamVerified).toBe(true);
  });

  it('a larger plug, paced, drops nothing and lets remus grow; the same plug released as a burst overflows the device queue instead', () => {
    expect(largePaced.plugDrops).toBe(0);
    expect(largePaced.linkQueueDrops).toBe(0);
    expect(largePaced.heldBytesMax).toBeGreaterThan(1_500_000);
    expect(largeBurst.plugDrops).toBe(0);
    expect(largeBurst.linkQueueDrops).toBeGreaterThan(0);
    expect(largePaced.goodputBitsPerSec).toBeGreaterThan(2 * largeBurst.goodputBitsPerSec);
    for (const r of [largePaced, largeBurst]) expect(r.streamVerified).toBe(true);
  });
});

describe('a plug that pushes back (remus, 1 Gbit/s, 100 ms epochs, the default plug)', () => {
  it("drops nothing: what does not fit waits in the guest's NIC until a commit frees room, every byte arrives, output commit holds", () => {
    const world = buildWorld(config({ ...POINT, buffers: { plugFull: 'backpressure' } }));
    runWorld(world); // the auditor throws on the first early byte
    const netbuffer = world.hosts.get('host-a')!.services.netbuffer;
    const nic = world.hosts.get('host-a')!.services.guest.vm!.plugNic!;
    expect(netbuffer.stats.segmentsRefused).toBe(0);
    expect(netbuffer.stats.heldBytesMax).toBeLessThanOrEqual(1_500_000);
    expect(nic.stats.segmentsQueued).toBeGreaterThan(0);
    expect(nic.stats.queueDrops).toBe(0);
    expect(world.client.stats.streamVerified).toBe(true);
    expect(world.client.stats.bytesDelivered).toBeGreaterThan(0);
  });
});
