import { describe, expect, it } from 'vitest';
import { rssSlopesMiBPerMin, SoakSampler, troughSlopesMiBPerMin, type RssSeries } from '../../../bench/soak/sampler.js';
import type { ReportCollector } from '../../../cli/launcher/reports.js';
import type { ServiceReport } from '../../../lib/codec/messages.js';

/** One point a second from `fromS` to `toS`, MiB given by `mib(t)`. */
const series = (fromS: number, toS: number, mib: (tS: number) => number): [number, number][] => Array.from({ length: toS - fromS + 1 }, (_, i) => [fromS + i, mib(fromS + i)]);

describe("the soak's memory growth per process", () => {
  it('is measured in the window only: memory taken with a role before it is not growth, a leak is', () => {
    const rss: RssSeries = new Map([
      // Takes its role's memory (100 MiB) at 300 s, then flat.
      ['host-a guest 1', series(1, 600, (t) => (t < 300 ? 100 : t < 360 ? 100 + (100 * (t - 300)) / 60 : 200))],
      // Leaks 2 MiB a minute all along.
      ['- failover 1', series(1, 600, (t) => 80 + (2 * t) / 60)],
      // Restarted inside the window: too few samples there to judge.
      ['host-b acker 3', series(560, 600, () => 90)],
    ]);
    const slopes = rssSlopesMiBPerMin(rss, 420, 144);
    expect(slopes.get('host-a guest 1')).toBeCloseTo(0, 6);
    expect(slopes.get('- failover 1')).toBeCloseTo(2, 6);
    expect(slopes.has('host-b acker 3')).toBe(false);
  });
});

describe("the soak's memory growth judged on troughs", () => {
  /** A sawtooth: climbs 30 MiB over `periodS`, falls back, shifted by `phaseS`; plus `leakMiBPerMin`. */
  const sawtooth = (periodS: number, phaseS: number, leakMiBPerMin: number) => (t: number) => 75 + (30 * ((t + phaseS) % periodS)) / periodS + (leakMiBPerMin * t) / 60;

  it('reads a leak-free sawtooth as level wherever the window falls, where a straight line through it does not', () => {
    let worstLine = 0;
    for (const phaseS of [0, 20, 40, 60, 80]) {
      const rss: RssSeries = new Map([['host-a acker 1', series(0, 1_200, sawtooth(100, phaseS, 0))]]);
      expect(Math.abs(troughSlopesMiBPerMin(rss, 400, 150, 4).get('host-a acker 1')!)).toBeLessThan(0.5);
      const shortWindow = new Map([['host-a acker 1', series(1_080, 1_200, sawtooth(100, phaseS, 0))]]) as RssSeries;
      worstLine = Math.max(worstLine, Math.abs(rssSlopesMiBPerMin(shortWindow, 1_080, 100).get('host-a acker 1')!));
    }
    expect(worstLine).toBeGreaterThan(5); // two minutes of the same sawtooth, read by a straight line
  });

  it('finds a leak of 1 MiB/min under the sawtooth', () => {
    const rss: RssSeries = new Map([['host-a acker 1', series(0, 1_200, sawtooth(100, 30, 1))]]);
    expect(troughSlopesMiBPerMin(rss, 400, 150, 4).get('host-a acker 1')).toBeCloseTo(1, 0);
  });

  it('judges no process with fewer full stretches than asked for', () => {
    const rss: RssSeries = new Map([['host-b guest 2', series(900, 1_200, () => 90)]]);
    expect(troughSlopesMiBPerMin(rss, 400, 150, 4).has('host-b guest 2')).toBe(false);
  });
});

describe("the soak's memory growth after a process's warm-up", () => {
  it('judges a process started late only once it has levelled off', () => {
    // Started at 300 s, its heap fills for 400 s (+30 MiB), then a level sawtooth.
    const climb = (t: number) => 75 + Math.min(30, (30 * (t - 300)) / 400) + (10 * (t % 100)) / 100;
    const rss: RssSeries = new Map([['host-c netbuffer 2', series(300, 1_500, climb)]]);
    expect(troughSlopesMiBPerMin(rss, 400, 150, 4).get('host-c netbuffer 2')!).toBeGreaterThan(1); // the climb, read as growth
    expect(Math.abs(troughSlopesMiBPerMin(rss, 400, 150, 4, 450).get('host-c netbuffer 2')!)).toBeLessThan(0.2);
  });
});

describe("the soak's sampler", () => {
  it('counts a process that runs several services once, under all their names', () => {
    const reading = (processId: string, services: string[], rssMiB: number) => ({ processId, services, cpuUs: 1, rssBytes: rssMiB * 1024 * 1024, heapUsedBytes: 0, eventLoopLagMsP99: 0, eventLoopLagMsMax: 0 });
    const entry = (service: ServiceReport['service'], process: ReturnType<typeof reading>, incarnation: number) => ({ report: { type: 'serviceReport', vmId: 'vm1', host: 'host-a', service, incarnation, atUs: 1_000_000, final: false, statsJson: '' } as ServiceReport, stats: { process } as Record<string, unknown> });
    const grouped = reading('7@1', ['guest', 'checkpointer', 'netbuffer', 'acker'], 400);
    const entries = [entry('guest', grouped, 1), entry('checkpointer', grouped, 2), entry('netbuffer', grouped, 3), entry('acker', grouped, 4), entry('host-agent', reading('8@1', ['host-agent'], 60), 5)];
    const collector = { reports: () => entries, view: () => undefined } as unknown as ReportCollector;
    const sample = new SoakSampler(collector, ['vm1'], 5_000).sample(1, 1_000_000);
    expect(sample.rssMiBTotal).toBe(460);
    expect(sample.rssMiBMax).toBe(400);
  });
});
