import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { MODES } from '../../lib/config/run-config.js';
import type { ExperimentRow, WorkloadKind } from '../../sim/experiment/sweep.js';

/**
 * The sweep's figures as SVG strings: vega-lite compiled to vega and rendered
 * headless (renderer 'none', no canvas). Writing the files is the caller's job.
 */

interface PlotDatum {
  /** The series: the mode, and the swept options' values when the sweep has any ("spec, spec-window=client"). */
  mode: string;
  rttMs: number;
  epochMs: number;
  value: number;
}

const WIDTH_PX = 360;
const HEIGHT_PX = 240;
const BITS_PER_MBIT = 1e6;
/**
 * Each mode has its own dash, point shape and a small sideways shift, so
 * that modes with equal figures (spec and spec-racc; remus and spec in
 * latency) stay visible side by side rather than one under the other.
 * Native has no epoch: it is drawn flat across every epoch of the sweep.
 */
const MODE_DASH: Record<string, number[]> = { native: [5, 4], remus: [1, 0], spec: [8, 3], 'spec-racc': [2, 2] };
const MODE_SHAPE: Record<string, string> = { native: 'cross', remus: 'square', spec: 'circle', 'spec-racc': 'triangle-up' };
/** Multiplicative shift on the log epoch axis per mode: a few pixels apart. */
const MODE_DODGE = 0.045;
/** Room on the log epoch axis beyond the first and last epoch, for the shifted points. */
const EPOCH_MARGIN_FACTOR = 1.25;

/**
 * One datum per point of `workload`, native repeated at each epoch so it
 * draws as a flat reference line in the mode's colour.
 */
function plotData(rows: readonly ExperimentRow[], workload: WorkloadKind, epochsMs: readonly number[], value: (row: ExperimentRow) => number | null): PlotDatum[] {
  const data: PlotDatum[] = [];
  for (const row of rows) {
    if (row.point.workload !== workload) continue;
    const v = value(row);
    // A log axis has no zero: a point that measured nothing is left out.
    if (v === null || v <= 0) continue;
    const epochs = row.point.epochMs === null ? epochsMs : [row.point.epochMs];
    const dodge = Math.pow(1 + MODE_DODGE, MODES.indexOf(row.point.mode) - (MODES.length - 1) / 2);
    const series = [row.point.mode, ...Object.entries(row.point.variant).map(([flag, value]) => `${flag}=${value}`)].join(', ');
    for (const epochMs of epochs) data.push({ mode: series, rttMs: row.point.rttMs, epochMs: epochMs * dodge, value: v });
  }
  return data;
}

function lineSpec(data: PlotDatum[], epochsMs: readonly number[], title: string, yTitle: string): TopLevelSpec {
  // Series in the order of their modes, then as they came; each keeps its mode's dash and point shape.
  const baseMode = (series: string) => series.split(', ')[0]!;
  const modes = [...new Set(data.map((d) => d.mode))].sort((a, b) => MODES.indexOf(baseMode(a) as (typeof MODES)[number]) - MODES.indexOf(baseMode(b) as (typeof MODES)[number]));
  const rtts = [...new Set(data.map((d) => d.rttMs))];
  const modeScale = { domain: modes };
  const layer = {
    name: 'lines',
    mark: { type: 'line' as const, point: { filled: true, size: 45 }, strokeWidth: 1.6 },
    encoding: {
      x: { field: 'epochMs', type: 'quantitative' as const, title: 'checkpoint epoch (ms)', scale: { type: 'log' as const, nice: false, domain: [Math.min(...epochsMs) * EPOCH_MARGIN_FACTOR ** -1, Math.max(...epochsMs) * EPOCH_MARGIN_FACTOR] }, axis: { values: [...epochsMs] } },
      // Log: remus (tens of Mbit/s) and spec (hundreds) on one readable axis; latencies from 1 to hundreds of ms likewise.
      y: { field: 'value', type: 'quantitative' as const, title: yTitle, scale: { type: 'log' as const } },
      color: { field: 'mode', type: 'nominal' as const, title: 'mode', sort: modes, scale: modeScale },
      strokeDash: { field: 'mode', type: 'nominal' as const, sort: modes, scale: { domain: modes, range: modes.map((m) => MODE_DASH[baseMode(m)] ?? [1, 0]) } },
      shape: { field: 'mode', type: 'nominal' as const, sort: modes, scale: { domain: modes, range: modes.map((m) => MODE_SHAPE[baseMode(m)] ?? 'circle') } },
    },
    width: WIDTH_PX,
    height: HEIGHT_PX,
  };
  const common = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', title, data: { values: data }, background: 'white' };
  if (rtts.length <= 1) return { ...common, ...layer } as TopLevelSpec;
  const { width, height, ...inner } = layer;
  return {
    ...common,
    facet: { column: { field: 'rttMs', type: 'ordinal', title: 'RTT (ms)', sort: rtts } },
    spec: { ...inner, width, height },
    resolve: { scale: { y: 'independent' } },
  } as TopLevelSpec;
}

/** Renders a vega-lite spec to an SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec as vega.Spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Goodput vs epoch, one line per mode (bulk if the sweep has it, else rr); a facet per RTT when there are several. */
export function goodputSpec(rows: readonly ExperimentRow[], epochsMs: readonly number[]): TopLevelSpec {
  const workload: WorkloadKind = rows.some((r) => r.point.workload === 'bulk') ? 'bulk' : 'rr';
  const data = plotData(rows, workload, epochsMs, (r) => r.result.goodputBitsPerSec / BITS_PER_MBIT);
  return lineSpec(data, epochsMs, `${workload} goodput vs checkpoint epoch`, 'goodput (Mbit/s)');
}

/** Request/response p50 latency vs epoch, one line per mode; null when the sweep has no rr points. */
export function latencySpec(rows: readonly ExperimentRow[], epochsMs: readonly number[]): TopLevelSpec | null {
  if (!rows.some((r) => r.point.workload === 'rr')) return null;
  const data = plotData(rows, 'rr', epochsMs, (r) => r.result.latencyMsP50);
  return lineSpec(data, epochsMs, 'rr latency p50 vs checkpoint epoch', 'request latency p50 (ms)');
}

/**
 * Goodput against one swept scenario option (a queue size, a buffer), one
 * line per mode and epoch; log axes when the values are numbers, one
 * apart from another tenfold. The workload is bulk when the sweep has it.
 */
export function sweepSpec(rows: readonly ExperimentRow[], flag: string): TopLevelSpec {
  const workload: WorkloadKind = rows.some((r) => r.point.workload === 'bulk') ? 'bulk' : 'rr';
  const plotted = rows.filter((r) => r.point.workload === workload && r.result.goodputBitsPerSec > 0);
  const values = [...new Set(plotted.flatMap((r) => (flag in r.point.variant ? [r.point.variant[flag]!] : [])))];
  // A mode the option does not change ran once: it is the same at every value.
  const data = plotted.flatMap((r) =>
    (flag in r.point.variant ? [r.point.variant[flag]!] : values).map((x) => ({ mode: r.point.mode, series: r.point.epochMs === null ? r.point.mode : `${r.point.mode}, ${r.point.epochMs} ms`, x, value: r.result.goodputBitsPerSec / BITS_PER_MBIT })),
  );
  const numeric = data.every((d) => typeof d.x === 'number');
  const series = [...new Set(data.map((d) => d.series))];
  const modes = MODES.filter((m) => data.some((d) => d.mode === m));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${workload} goodput vs ${flag}`,
    data: { values: data },
    background: 'white',
    mark: { type: 'line', point: { filled: true, size: 45 }, strokeWidth: 1.6 },
    encoding: {
      x: numeric ? { field: 'x', type: 'quantitative', title: flag, scale: { type: 'log', nice: false } } : { field: 'x', type: 'ordinal', title: flag },
      y: { field: 'value', type: 'quantitative', title: 'goodput (Mbit/s)', scale: { type: 'log' } },
      color: { field: 'mode', type: 'nominal', title: 'mode', sort: modes },
      strokeDash: { field: 'mode', type: 'nominal', sort: modes, scale: { domain: modes, range: modes.map((m) => MODE_DASH[m] ?? [1, 0]) } },
      shape: { field: 'mode', type: 'nominal', sort: modes, scale: { domain: modes, range: modes.map((m) => MODE_SHAPE[m] ?? 'circle') } },
      detail: { field: 'series', type: 'nominal', sort: series },
    },
    width: WIDTH_PX,
    height: HEIGHT_PX,
  } as TopLevelSpec;
}

/** A point of the trade-off plot: one configuration's bulk goodput and rr p99 latency. */
interface ParetoDatum {
  /** The swept values ("epoch-policy=adaptive"), or "as given". */
  series: string;
  mode: string;
  rttMs: number;
  epochMs: number | null;
  goodputMbps: number;
  latencyMsP99: number;
  label: string;
}

/** Places closer than this are one place (a figure that moved in its last digits). */
const GOODPUT_PLACE_MBPS = 0.1;
const LATENCY_PLACE_MS = 0.01;

/**
 * Request latency p99 against bulk goodput (the trade-off an epoch length
 * makes; docs/adaptive-epochs.md): each configuration (mode, epoch, swept
 * values) is one point: its mixed run (both flows in one guest) when the
 * sweep has that workload, else its bulk run and its rr run; a line per
 * series joins its epochs, each point labelled with its epoch. A panel per
 * mode, each with its own scales (remus and spec differ tenfold in
 * goodput). Down and right is better. Null unless the sweep has mixed, or
 * both bulk and rr.
 */
export function paretoSpec(rows: readonly ExperimentRow[]): TopLevelSpec | null {
  const keyOf = (r: ExperimentRow) => JSON.stringify([r.point.mode, r.point.epochMs, r.point.rttMs, r.point.seed, r.point.variant]);
  const mixed = rows.some((r) => r.point.workload === 'mixed');
  const rrByKey = new Map(rows.filter((r) => r.point.workload === (mixed ? 'mixed' : 'rr')).map((r) => [keyOf(r), r]));
  const data: ParetoDatum[] = [];
  for (const bulk of rows) {
    if (bulk.point.workload !== (mixed ? 'mixed' : 'bulk')) continue;
    const rr = rrByKey.get(keyOf(bulk));
    const p99 = rr?.result.latencyMsP99 ?? null;
    // A mixed run's total counts its responses too: its bulk connection's alone is the bulk figure.
    const goodputBitsPerSec = mixed ? (bulk.result.bulkGoodputBitsPerSec ?? 0) : bulk.result.goodputBitsPerSec;
    if (p99 === null || p99 <= 0 || goodputBitsPerSec <= 0) continue;
    const variant = Object.entries(bulk.point.variant).map(([flag, value]) => `${flag}=${value}`);
    data.push({
      series: variant.length === 0 ? 'as given' : variant.join(', '),
      mode: bulk.point.mode,
      rttMs: bulk.point.rttMs,
      epochMs: bulk.point.epochMs,
      goodputMbps: goodputBitsPerSec / BITS_PER_MBIT,
      latencyMsP99: p99,
      label: bulk.point.epochMs === null ? '' : `${bulk.point.epochMs}`,
    });
  }
  if (data.length === 0) return null;
  mergeEqualPoints(data);
  const series = [...new Set(data.map((d) => d.series))];
  const modes = MODES.filter((m) => data.some((d) => d.mode === m));
  const rtts = [...new Set(data.map((d) => d.rttMs))];
  const encoding = {
    x: { field: 'goodputMbps', type: 'quantitative' as const, title: 'bulk goodput (Mbit/s)', scale: { zero: false } },
    y: { field: 'latencyMsP99', type: 'quantitative' as const, title: 'rr latency p99 (ms)', scale: { type: 'log' as const } },
    color: { field: 'series', type: 'nominal' as const, title: 'configuration', sort: series, legend: { labelLimit: 320 } },
  };
  const layers = {
    layer: [
      { mark: { type: 'line' as const, point: { filled: true, size: 45 }, strokeWidth: 1.4 }, encoding: { ...encoding, order: { field: 'epochMs', type: 'quantitative' as const } } },
      { mark: { type: 'text' as const, align: 'left' as const, dx: 6, dy: -7, fontSize: 9 }, encoding: { ...encoding, text: { field: 'label', type: 'nominal' as const } } },
    ],
    width: PARETO_PANEL_WIDTH_PX,
    height: HEIGHT_PX,
  };
  const { width, height, ...inner } = layers;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: mixed ? 'rr latency p99 vs bulk goodput, both flows in one guest (labels: epoch, ms)' : 'rr latency p99 vs bulk goodput (labels: epoch, ms)',
    data: { values: data },
    background: 'white',
    facet: { column: { field: 'mode', type: 'nominal', title: null, sort: modes }, ...(rtts.length > 1 ? { row: { field: 'rttMs', type: 'ordinal', title: 'RTT (ms)', sort: rtts } } : {}) },
    spec: { ...inner, width, height },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  } as TopLevelSpec;
}

const PARETO_PANEL_WIDTH_PX = 260;

/** Points of one series at one place (an adaptive policy, whatever its longest epoch) draw once, labelled with every epoch. */
function mergeEqualPoints(data: ParetoDatum[]): void {
  const byPlace = new Map<string, ParetoDatum>();
  for (let i = 0; i < data.length; ) {
    const d = data[i]!;
    const place = JSON.stringify([d.mode, d.series, d.rttMs, Math.round(d.goodputMbps / GOODPUT_PLACE_MBPS), Math.round(d.latencyMsP99 / LATENCY_PLACE_MS)]);
    const first = byPlace.get(place);
    if (first === undefined) {
      byPlace.set(place, d);
      i++;
    } else {
      first.label = `${first.label},${d.label}`;
      data.splice(i, 1);
    }
  }
}
