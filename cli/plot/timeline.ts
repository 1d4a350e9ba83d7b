import type { TopLevelSpec } from 'vega-lite';
import type { RunTimeline } from '../../lib/results/timeline.js';
import { BITS_PER_BYTE, US_PER_S } from '../../lib/units.js';

/** About this many goodput points across a run: finer bins are mostly epoch bursts. */
const TARGET_POINTS = 250;
const WIDTH_PX = 720;
const HEIGHT_PX = 260;
/** Commit ticks rise this share of the plot from its floor. */
const COMMIT_TICK_SHARE = 0.06;
const EVENTS = ['epoch commit', 'crash', 'promoted', 're-protected'] as const;
const EVENT_COLOURS = ['#b0b0b0', '#d62728', '#ff7f0e', '#2ca02c'];
/** Each kind of event labels its rules on a row of its own (px from the top), so that a crash and its promotion 50 ms later stay readable. */
const LABEL_ROW_PX: Record<string, number> = { crash: 10, promoted: 24, 're-protected': 38 };

/** The client's goodput in bins of a whole number of timeline bins, in Mbit/s at each bin's end. */
export function goodputSeries(t: RunTimeline): { tS: number; mbitPerS: number }[] {
  const per = Math.max(1, Math.round(t.durationUs / t.binUs / TARGET_POINTS));
  const widthUs = per * t.binUs;
  const series: { tS: number; mbitPerS: number }[] = [];
  for (let i = 0; i * per < t.deliveredPerBin.length; i++) {
    const bytes = t.deliveredPerBin.slice(i * per, (i + 1) * per).reduce((a, b) => a + b, 0);
    series.push({ tS: ((i + 1) * widthUs) / US_PER_S, mbitPerS: (bytes * BITS_PER_BYTE) / widthUs });
  }
  return series;
}

/**
 * Goodput over time, with every epoch's commit as a tick along the floor and
 * the crash, each promotion and each re-protection as a labelled rule.
 */
export function timelineSpec(t: RunTimeline, title: string): TopLevelSpec {
  const series = goodputSeries(t);
  const top = Math.max(1, ...series.map((p) => p.mbitPerS));
  const at = (us: number) => us / US_PER_S;
  const ticks = t.committedAtUs.map((us) => ({ tS: at(us), event: 'epoch commit', y: 0, y2: top * COMMIT_TICK_SHARE }));
  const events = [
    ...(t.crashAtUs === null ? [] : [{ tS: at(t.crashAtUs), event: 'crash' }]),
    ...t.promotedAtUs.map((us) => ({ tS: at(us), event: 'promoted' })),
    ...t.reprotectedAtUs.map((us) => ({ tS: at(us), event: 're-protected' })),
  ].map((e) => ({ ...e, labelY: LABEL_ROW_PX[e.event]! }));
  const x = { field: 'tS', type: 'quantitative' as const, title: 'time (s)', scale: { domain: [0, t.durationUs / US_PER_S] } };
  const colour = { field: 'event', type: 'nominal' as const, title: 'event', scale: { domain: [...EVENTS], range: EVENT_COLOURS } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    background: 'white',
    width: WIDTH_PX,
    height: HEIGHT_PX,
    layer: [
      { data: { values: series }, mark: { type: 'line', color: '#1f77b4', interpolate: 'step-before' }, encoding: { x, y: { field: 'mbitPerS', type: 'quantitative', title: 'goodput (Mbit/s)' } } },
      { data: { values: ticks }, mark: { type: 'rule', opacity: 0.5 }, encoding: { x, y: { field: 'y', type: 'quantitative' }, y2: { field: 'y2' }, color: colour } },
      { data: { values: events }, mark: { type: 'rule', strokeWidth: 2, strokeDash: [6, 3] }, encoding: { x, color: colour } },
      { data: { values: events }, mark: { type: 'text', align: 'left', dx: 4 }, encoding: { x, y: { field: 'labelY', type: 'quantitative', scale: null }, text: { field: 'event' }, color: colour } },
    ],
  } as TopLevelSpec;
}
