/** The median of `xs` (of an even count, the mean of the two middle values). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('the median of no values');
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median of `repeats` timed calls (after one warm-up), in wall milliseconds, with the fastest and slowest. */
export function medianWallMs<T>(repeats: number, fn: () => T): { medianMs: number; minMs: number; maxMs: number; last: T } {
  let last = fn(); // warm-up: JIT and slab allocation
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    last = fn();
    samples.push(performance.now() - t0);
  }
  return { medianMs: median(samples), minMs: Math.min(...samples), maxMs: Math.max(...samples), last };
}

export interface BenchRecord {
  name: string;
  metrics: Record<string, number>;
  target?: { metric: string; op: '<=' | '>='; value: number; met: boolean };
  /** When it ran (ISO 8601) and on what: latest.json mixes records of partial runs. */
  measuredAt?: string;
  machine?: { node: string; cpu: string; cores: number };
}

export function withTarget(record: Omit<BenchRecord, 'target'>, metric: string, op: '<=' | '>=', value: number): BenchRecord {
  const actual = record.metrics[metric]!;
  return { ...record, target: { metric, op, value, met: op === '<=' ? actual <= value : actual >= value } };
}
