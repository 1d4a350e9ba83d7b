import { describe, expect, it } from 'vitest';
import { natsModesConfig } from '../../bench/nats-modes-config.js';
import { runConfigSchema, type Mode } from '../../lib/config/run-config.js';
import { sim } from '../support/run.js';

/** The point every mode runs at over NATS (100 Mbit/s, 2 ms, 25 ms epochs, 5 s), with the bus's jitter. */
const point = (mode: Mode, busJitterUs: number) => sim({ ...natsModesConfig(mode), busJitterUs });

describe('bus jitter (--bus-jitter-us)', () => {
  it('replays the same seed exactly', () => {
    expect(point('spec', 3_000)).toEqual(point('spec', 3_000));
  });

  it('lengthens every commit by the hops of the checkpoint path, and output commit holds', () => {
    const calm = point('remus', 0);
    const jittery = point('remus', 4_000);
    // Barrier, staged parts, transfer, acknowledgement, commit: five hops of 2 ms on average.
    expect(jittery.commitLatencyMsP50!).toBeGreaterThan(calm.commitLatencyMsP50! + 5);
    // The simulator's auditor throws at the first early byte; the run got here, and the client saw every byte once.
    expect(jittery.streamVerified).toBe(true);
  });

  it('costs remus more than speculative ACKs: HyStart takes the commits\' jitter for a queue and ends slow start early', () => {
    const remus = [point('remus', 0), point('remus', 4_000)] as const;
    const spec = [point('spec', 0), point('spec', 4_000)] as const;
    expect(remus[1].slowStartExitSegments!).toBeLessThan(remus[0].slowStartExitSegments!);
    const remusKept = remus[1].goodputBitsPerSec / remus[0].goodputBitsPerSec;
    const specKept = spec[1].goodputBitsPerSec / spec[0].goodputBitsPerSec;
    expect(remusKept).toBeLessThan(0.75);
    expect(specKept).toBeGreaterThan(remusKept);
  });

  it("gives the speculative guest no spurious fast retransmit where the free buffer is larger than the window field carries", () => {
    // The paper's point with the default 16 MiB buffer, which is more than the 8 MiB a window field carries at the
    // client's scale: client ACKs the bus lets overtake a speculative ACK must not reach the guest as duplicates.
    const paperPoint = (busJitterUs: number) => sim({ mode: 'spec', epochMs: 25, durationS: 5, busJitterUs, link: { bandwidthBitsPerSec: 1e9, rttMs: 1 } });
    const calm = paperPoint(0);
    const jittery = paperPoint(5_000);
    expect(runConfigSchema.parse({}).buffers.specBufferBytes).toBe(16 * 1024 * 1024);
    // Nothing is lost on the bus or the link: a fast retransmit would be of bytes the acker holds.
    expect(jittery.fastRetransmits).toBe(0);
    expect(jittery.goodputBitsPerSec).toBeGreaterThan(0.6 * calm.goodputBitsPerSec);
  });

  it('leaves native alone: its only messages cross the client\'s link, which has its own jitter option', () => {
    expect(point('native', 4_000)).toEqual(point('native', 0));
  });
});
