import { describe, expect, it } from 'vitest';
import { goodputSpec, latencySpec, paretoSpec, renderSvg } from '../../../cli/experiment/plot.js';
import { goodputSeries, timelineSpec } from '../../../cli/plot/timeline.js';
import { MODES } from '../../../lib/config/run-config.js';
import type { RunTimeline } from '../../../lib/results/timeline.js';
import type { ExperimentRow } from '../../../sim/experiment/sweep.js';

const EPOCHS = [10, 25, 50];

/** A sweep where spec and spec-racc measure the same, as they do at the paper point. */
function rows(): ExperimentRow[] {
  const out: ExperimentRow[] = [];
  for (const mode of MODES) {
    for (const epochMs of mode === 'native' ? [null] : EPOCHS) {
      const goodput = mode === 'native' ? 940e6 : mode === 'remus' ? 100e6 / (epochMs! / 10) : 870e6;
      for (const workload of ['bulk', 'rr'] as const) {
        const latencyMs = mode === 'native' ? 1.1 : epochMs! + 0.05;
        out.push({ point: { mode, workload, epochMs, rttMs: 1, seed: 1, variant: {} }, result: { goodputBitsPerSec: goodput, latencyMsP50: latencyMs, latencyMsP99: latencyMs + 1 } } as unknown as ExperimentRow);
      }
    }
  }
  return out;
}

type Datum = { mode: string; epochMs: number; value: number };
const values = (spec: object) => (spec as { data: { values: Datum[] } }).data.values;
const encoding = (spec: object) => (spec as { encoding: Record<string, { scale?: { type?: string; range?: unknown[] } }> }).encoding;

describe('experiment plots', () => {
  it('draw goodput and latency on log axes', () => {
    expect(encoding(goodputSpec(rows(), EPOCHS)).y!.scale!.type).toBe('log');
    expect(encoding(latencySpec(rows(), EPOCHS)!).y!.scale!.type).toBe('log');
  });

  it('keep modes with equal figures apart: each its own shape and dash, and points shifted sideways', () => {
    const spec = goodputSpec(rows(), EPOCHS);
    const e = encoding(spec);
    expect(new Set(e.shape!.scale!.range!.map(String)).size).toBe(MODES.length);
    expect(new Set(e.strokeDash!.scale!.range!.map(String)).size).toBe(MODES.length);
    const at25 = (mode: string) => values(spec).find((d) => d.mode === mode && Math.abs(Math.log(d.epochMs / 25)) < 0.2)!;
    expect(at25('spec').value).toBe(at25('spec-racc').value);
    expect(at25('spec').epochMs).not.toBe(at25('spec-racc').epochMs);
    // A few per cent, not enough to be read as another epoch.
    expect(Math.abs(at25('spec').epochMs / at25('spec-racc').epochMs - 1)).toBeLessThan(0.1);
  });

  it('leave out points a log axis cannot show', () => {
    const r = rows();
    (r.find((x) => x.point.mode === 'remus' && x.point.workload === 'bulk')!.result as { goodputBitsPerSec: number }).goodputBitsPerSec = 0;
    expect(values(goodputSpec(r, EPOCHS)).every((d) => d.value > 0)).toBe(true);
  });

  it('render with a legend that names every mode', async () => {
    const svg = await renderSvg(goodputSpec(rows(), EPOCHS));
    for (const mode of MODES) expect(svg).toMatch(new RegExp(`<text[^>]*>${mode}</text>`));
  });
});

describe('trade-off plot (rr latency p99 against bulk goodput)', () => {
  type ParetoDatum = { series: string; mode: string; epochMs: number | null; goodputMbps: number; latencyMsP99: number; label: string };
  const points = (spec: object) => (spec as { data: { values: ParetoDatum[] } }).data.values;

  it("pairs each configuration's bulk goodput with its rr p99, one point per mode and epoch, labelled by the epoch", () => {
    const data = points(paretoSpec(rows())!);
    expect(data).toHaveLength(1 + 3 * EPOCHS.length);
    expect(data.find((d) => d.mode === 'remus' && d.epochMs === 25)).toEqual({ series: 'as given', mode: 'remus', rttMs: 1, epochMs: 25, goodputMbps: 40, latencyMsP99: 26.05, label: '25' });
    expect(data.find((d) => d.mode === 'native')).toMatchObject({ goodputMbps: 940, latencyMsP99: 2.1, label: '' });
  });

  it('keeps swept values apart as series, pairs only equal configurations, and needs both workloads', () => {
    const r = rows().flatMap((row) => [row, { ...row, point: { ...row.point, variant: { 'epoch-policy': 'adaptive' } }, result: { ...row.result, latencyMsP99: 3 } } as ExperimentRow]);
    const data = points(paretoSpec(r)!);
    expect(new Set(data.filter((d) => d.mode === 'spec').map((d) => d.series))).toEqual(new Set(['as given', 'epoch-policy=adaptive']));
    expect(data.filter((d) => d.series.endsWith('adaptive')).every((d) => d.latencyMsP99 === 3)).toBe(true);
    expect(paretoSpec(rows().filter((row) => row.point.workload === 'bulk'))).toBeNull();
  });

  it('draws points of one series at one place once, labelled with each of their epochs', () => {
    const r = rows().map((row, i) => (row.point.mode === 'spec' ? ({ ...row, result: { ...row.result, goodputBitsPerSec: 900e6 + i, latencyMsP99: 2 } } as ExperimentRow) : row));
    const spec = points(paretoSpec(r)!).filter((d) => d.mode === 'spec');
    expect(spec).toEqual([expect.objectContaining({ latencyMsP99: 2, label: EPOCHS.join(',') })]); // a few bit/s apart is one place
  });

  it('takes both figures from one mixed run when the sweep has them: its bulk connection\'s goodput and its rr p99', () => {
    const mixed = rows()
      .filter((row) => row.point.workload === 'bulk')
      .map((row) => ({ ...row, point: { ...row.point, workload: 'mixed' }, result: { ...row.result, bulkGoodputBitsPerSec: row.result.goodputBitsPerSec - 10e6, latencyMsP99: (row.point.epochMs ?? 1) / 5 } }) as unknown as ExperimentRow);
    const data = points(paretoSpec([...rows(), ...mixed])!);
    expect(data).toHaveLength(1 + 3 * EPOCHS.length);
    expect(data.find((d) => d.mode === 'remus' && d.epochMs === 25)).toMatchObject({ goodputMbps: 30, latencyMsP99: 5 });
  });

  it('renders', async () => {
    expect(await renderSvg(paretoSpec(rows())!)).toContain('rr latency p99');
  });
});

describe('run timeline plot', () => {
  const timeline: RunTimeline = {
    durationUs: 5_000_000,
    binUs: 10_000,
    deliveredPerBin: Array.from({ length: 500 }, (_, i) => (i >= 200 && i < 210 ? 0 : 125_000)), // 100 Mbit/s, 100 ms outage at 2 s
    committedAtUs: [25_000, 50_000, 75_000],
    crashAtUs: 2_000_000,
    promotedAtUs: [2_060_000],
    reprotectedAtUs: [2_500_000],
  };

  it('bins the delivery to about 250 points, conserving every byte', () => {
    const series = goodputSeries(timeline);
    expect(series.length).toBe(250);
    const widthS = 0.02;
    const bits = series.reduce((n, p) => n + p.mbitPerS * 1e6 * widthS, 0);
    expect(bits).toBeCloseTo(timeline.deliveredPerBin.reduce((a, b) => a + b, 0) * 8, 0);
    expect(series[0]!.mbitPerS).toBeCloseTo(100, 6);
    expect(series.find((p) => p.tS > 2.0 && p.tS <= 2.1)!.mbitPerS).toBe(0);
  });

  it('marks every commit, the crash, the promotion and the re-protection, and renders', async () => {
    const spec = timelineSpec(timeline, 'spec');
    const layers = (spec as { layer: { data: { values: { event: string; tS: number }[] } }[] }).layer;
    const events = layers.flatMap((l) => l.data.values.filter((v) => 'event' in v).map((v) => `${v.event}@${v.tS}`));
    expect(events).toEqual(expect.arrayContaining(['epoch commit@0.025', 'epoch commit@0.075', 'crash@2', 'promoted@2.06', 're-protected@2.5']));
    const svg = await renderSvg(spec);
    for (const label of ['crash', 'promoted', 're-protected']) expect(svg).toContain(`>${label}</text>`);
  });
});
