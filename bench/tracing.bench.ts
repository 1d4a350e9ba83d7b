import { runConfigSchema } from '../lib/config/run-config.js';
import { SpanCollector } from '../lib/tracing/collector.js';
import { simulate } from '../sim/run.js';
import { serviceOfActor } from '../sim/actors.js';
import { medianWallMs, withTarget, type BenchRecord } from './measure.js';

const RUNS = 3;

/**
 * What tracing costs the simulator: a 10 s spec run at 1 Gbit/s with tracing
 * off and with 1% of the guest's segments and every epoch traced (the spans
 * kept for export). Target: 1% sampling costs at most 10% of the wall time.
 */
export function tracingCost(): BenchRecord {
  const input = { mode: 'spec' as const, epochMs: 25, durationS: 10, link: { bandwidthBitsPerSec: 1e9, rttMs: 1 } };
  const off = medianWallMs(RUNS, () => simulate(runConfigSchema.parse(input)));
  let spans = 0;
  const on = medianWallMs(RUNS, () => {
    const collector = new SpanCollector(2_000_000);
    const result = simulate(runConfigSchema.parse({ ...input, tracing: { segmentSampleRate: 0.01, epochs: true } }), { onSpan: (span, from) => collector.add(span, serviceOfActor(from.actor), from.host) });
    spans = collector.dropped + collector.count;
    return result;
  });
  return withTarget(
    {
      name: 'sim.tracing-cost-spec-1gbit-10s',
      metrics: {
        offWallMs: Math.round(off.medianMs),
        onePercentWallMs: Math.round(on.medianMs),
        spans,
        onePercentCostShare: Number((on.medianMs / off.medianMs - 1).toFixed(3)),
        // Tracing must not change the run: 0.
        goodputDeltaBitsPerSec: on.last.goodputBitsPerSec - off.last.goodputBitsPerSec,
      },
    },
    'onePercentCostShare',
    '<=',
    0.1,
  );
}
