import type { CollectedSpan } from '../../lib/tracing/collector.js';
import { groupBy } from '../../lib/tracing/group.js';

const BAR_COLUMNS = 40;

const ms = (us: number) => (us / 1000).toFixed(3);

/**
 * One trace as a terminal waterfall: each span under its parent, with where
 * it ran, when it started after the trace's first span, how long it took,
 * and a bar on the trace's time axis (and its term, when the trace crosses
 * a failover). Spans whose parent is elsewhere (a lost report) are shown at
 * the top level.
 */
export function waterfall(spans: readonly CollectedSpan[]): string {
  if (spans.length === 0) return '(no spans)';
  const t0 = Math.min(...spans.map((s) => s.startUs));
  const t1 = Math.max(...spans.map((s) => s.endUs));
  const widthUs = Math.max(1, t1 - t0);
  const ids = new Set(spans.map((s) => s.spanId));
  // A trace across a failover: say which term each step ran in.
  const showTerm = new Set(spans.map((s) => s.attributes['specula.term'])).size > 1;
  const children = groupBy(spans, (s): string | null => (s.parentSpanId !== null && ids.has(s.parentSpanId) ? s.parentSpanId : null));
  for (const list of children.values()) list.sort((a, b) => a.startUs - b.startUs || a.endUs - b.endUs);
  const rows: [string, string, string, string, string][] = [];
  const visit = (parent: string | null, depth: number) => {
    for (const s of children.get(parent) ?? []) {
      const from = Math.min(BAR_COLUMNS - 1, Math.floor(((s.startUs - t0) / widthUs) * BAR_COLUMNS));
      const to = Math.max(from + 1, Math.ceil(((s.endUs - t0) / widthUs) * BAR_COLUMNS));
      const bar = ' '.repeat(from) + (s.endUs === s.startUs ? '│' : '█'.repeat(Math.min(BAR_COLUMNS, to) - from));
      const reason = s.attributes.reason !== undefined ? ` (${String(s.attributes.reason)})` : '';
      const where = (s.host === null ? s.service : `${s.service}@${s.host}`) + (showTerm ? ` term ${String(s.attributes['specula.term'])}` : '');
      rows.push([`${'  '.repeat(depth)}${s.name}${reason}`, where, `+${ms(s.startUs - t0)}`, ms(s.endUs - s.startUs), bar.padEnd(BAR_COLUMNS)]);
      visit(s.spanId, depth + 1);
    }
  };
  visit(null, 0);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length), ['span', 'where', 'start ms', 'ms'][i]!.length));
  const line = (r: readonly string[]) => `${r[0]!.padEnd(widths[0]!)}  ${r[1]!.padEnd(widths[1]!)}  ${r[2]!.padStart(widths[2]!)}  ${r[3]!.padStart(widths[3]!)}  |${r[4]}|`;
  return [line(['span', 'where', 'start ms', 'ms', ' '.repeat(BAR_COLUMNS)]), ...rows.map(line), `total ${ms(t1 - t0)} ms`].join('\n');
}
