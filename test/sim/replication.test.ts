import { describe, expect, it } from 'vitest';
import { MODES } from '../../lib/config/run-config.js';
import { buildWorld, runWorld } from '../../sim/world.js';
import { config, sim } from '../support/run.js';

const GBIT = 1e9;
const paperPoint = { link: { bandwidthBitsPerSec: GBIT, rttMs: 1 }, epochMs: 25 } as const;

describe('output commit', () => {
  for (const mode of MODES.filter((m) => m !== 'native')) {
    for (const workload of [{ kind: 'bulk', totalBytes: 0 }, { kind: 'rr', requestBytes: 200, responseBytes: 30_000 }] as const) {
      it(`holds for every segment in ${mode} mode with the ${workload.kind} workload`, () => {
        const world = buildWorld(config({ mode, workload, durationS: 1, link: { bandwidthBitsPerSec: 200e6, rttMs: 2, lossRate: 0.002 }, epochMs: 20 }));
        runWorld(world); // the auditor throws on the first early byte
        expect(world.replication!.auditor.stats.segmentsChecked).toBeGreaterThan(100);
        expect(world.client.stats.streamVerified).toBe(true);
        expect(world.client.stats.bytesDelivered).toBeGreaterThan(0);
      });
    }
  }
});

describe('the paper point: 1 Gbit/s, 1 ms RTT, 25 ms epochs, bulk', () => {
  const durationS = 4;
  const results = Object.fromEntries(MODES.map((mode) => [mode, sim({ ...paperPoint, mode, durationS })]));

  it('verifies every byte in every mode', () => {
    for (const mode of MODES) expect(results[mode]!.streamVerified).toBe(true);
  });

  it('gives spec at least 2x the goodput of remus, which lets out at most one plug of output per epoch', () => {
    expect(results.spec!.goodputBitsPerSec).toBeGreaterThanOrEqual(2 * results.remus!.goodputBitsPerSec);
    // Every epoch releases at most the plug's limit (IP bytes, so payload is less): goodput ≤ limit / (epoch + RTT).
    const plugBitsPerEpoch = 8 * config({ ...paperPoint, mode: 'remus' }).buffers.heldBytesMax;
    expect(results.remus!.goodputBitsPerSec).toBeLessThanOrEqual(plugBitsPerEpoch / ((paperPoint.epochMs + paperPoint.link.rttMs) / 1000));
  });

  it('gives spec an order of magnitude over remus at 100 ms epochs, where an epoch outgrows the plug', () => {
    const at100 = (mode: 'spec' | 'remus') => sim({ ...paperPoint, epochMs: 100, mode, durationS: 2 });
    expect(at100('spec').goodputBitsPerSec).toBeGreaterThanOrEqual(10 * at100('remus').goodputBitsPerSec);
  });

  it('gives spec-racc at least 90% of native goodput', () => {
    expect(results['spec-racc']!.goodputBitsPerSec).toBeGreaterThanOrEqual(0.9 * results.native!.goodputBitsPerSec);
  });

  it('commits a checkpoint per epoch in replicated modes', () => {
    for (const mode of ['remus', 'spec', 'spec-racc'] as const) {
      const r = results[mode]!;
      // Each epoch lasts epochMs of running time plus its stop-and-copy pause.
      expect(r.checkpoints).toBeGreaterThan((0.8 * durationS * 1000) / 25);
      expect(r.checkpoints).toBeLessThanOrEqual((durationS * 1000) / 25);
    }
  });
});

describe("the paper point under the paper's speculative window (--spec-window client)", () => {
  const durationS = 4;
  const run = (mode: 'spec' | 'spec-racc', specBufferBytes?: number) =>
    sim({ ...paperPoint, mode, durationS, buffers: { specWindow: 'client', ...(specBufferBytes === undefined ? {} : { specBufferBytes }) } });
  const native = sim({ ...paperPoint, mode: 'native', durationS });
  const spec = run('spec');
  const racc = run('spec-racc');

  it('verifies every byte, and drops what does not fit the buffer unacknowledged', () => {
    for (const r of [spec, racc]) expect(r.streamVerified).toBe(true);
    // A standard TCP waits out its retransmission timer for the missing ACKs; RACC probes on its short one.
    expect(spec.timeouts).toBeGreaterThan(0);
    expect(racc.timeouts).toBeGreaterThan(spec.timeouts);
  });

  it('gives spec-racc at least 90% of native goodput, and spec less: spec < spec-racc ≈ native (the paper)', () => {
    expect(racc.goodputBitsPerSec).toBeGreaterThanOrEqual(0.9 * native.goodputBitsPerSec);
    // 1.40 with the default 16 MiB buffer: it drains in 134 ms at 1 Gbit/s, against a 200 ms timeout (docs/racc.md).
    expect(racc.goodputBitsPerSec).toBeGreaterThanOrEqual(1.3 * spec.goodputBitsPerSec);
  });

  it('gives spec-racc 1.5x spec and more once the buffer drains within a timeout (8 MiB)', () => {
    const small = { spec: run('spec', 8 * 1024 * 1024), racc: run('spec-racc', 8 * 1024 * 1024) };
    expect(small.racc.goodputBitsPerSec).toBeGreaterThanOrEqual(1.5 * small.spec.goodputBitsPerSec);
    expect(small.racc.goodputBitsPerSec).toBeGreaterThanOrEqual(0.9 * native.goodputBitsPerSec);
  });
});

describe('remus against analysis', () => {
  it('is limited to window / (epoch + RTT) with a 64 KiB window', () => {
    const windowBytes = 65_535;
    const epochMs = 25;
    const rttMs = 1;
    const r = sim({ mode: 'remus', epochMs, link: { bandwidthBitsPerSec: GBIT, rttMs }, tcp: { rcvBufBytes: windowBytes, windowScaling: false }, durationS: 5 });
    const model = (windowBytes * 8) / ((epochMs + rttMs) / 1000);
    expect(r.streamVerified).toBe(true);
    expect(Math.abs(r.goodputBitsPerSec - model) / model).toBeLessThan(0.1);
  });
});

describe('request/response latency', () => {
  for (const mode of ['remus', 'spec', 'spec-racc'] as const) {
    it(`is at least one epoch under ${mode}: a response waits for the end of its epoch and the commit`, () => {
      const epochMs = 25;
      const r = sim({ mode, epochMs, link: { bandwidthBitsPerSec: GBIT, rttMs: 1 }, durationS: 2, workload: { kind: 'rr', requestBytes: 64, responseBytes: 16_384 } });
      expect(r.streamVerified).toBe(true);
      expect(r.requestsCompleted).toBeGreaterThan(10);
      // One request at a time: each arrives just after a commit, so its response waits a whole epoch.
      expect(r.latencyMsP50!).toBeGreaterThanOrEqual(epochMs);
      expect(r.latencyMsP50!).toBeGreaterThan(sim({ mode: 'native', link: { bandwidthBitsPerSec: GBIT, rttMs: 1 }, durationS: 1, workload: { kind: 'rr', requestBytes: 64, responseBytes: 16_384 } }).latencyMsP99!);
    });
  }
});
