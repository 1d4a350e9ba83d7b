/** Relative width of a bucket: percentiles read from a histogram are within this of the samples'. */
export const HISTOGRAM_RESOLUTION = 0.02;
const LOG_BASE = Math.log1p(HISTOGRAM_RESOLUTION);

/**
 * A sparse log-scale histogram of non-negative values (µs): bucket b holds
 * values in [(1+r)^b, (1+r)^(b+1)), bucket -1 holds zeros. Histograms of
 * several processes merge by adding counts, so a run's percentiles can come
 * from every service that reported, however many samples each took. Its size
 * grows with the spread of the values, not their count.
 */
export type Histogram = Record<string, number>;

export function bucketOf(value: number): number {
  return value < 1 ? -1 : Math.floor(Math.log(value) / LOG_BASE);
}

export function addTo(h: Histogram, value: number): void {
  const b = String(bucketOf(value));
  h[b] = (h[b] ?? 0) + 1;
}

export function histogramOf(values: readonly number[]): Histogram {
  const h: Histogram = {};
  for (const v of values) addTo(h, v);
  return h;
}

export function mergeHistograms(hs: readonly Histogram[]): Histogram {
  const out: Histogram = {};
  for (const h of hs) for (const [b, n] of Object.entries(h)) out[b] = (out[b] ?? 0) + n;
  return out;
}

/** The nearest-rank percentile, as the upper bound of its bucket (0 for zeros); null when empty. */
export function histogramPercentile(h: Histogram, p: number): number | null {
  const buckets = Object.entries(h).map(([b, n]) => [Number(b), n] as const).sort((a, b) => a[0] - b[0]);
  const total = buckets.reduce((n, [, c]) => n + c, 0);
  if (total === 0) return null;
  const rank = Math.min(total, Math.max(1, Math.ceil((p / 100) * total)));
  let seen = 0;
  for (const [b, n] of buckets) {
    seen += n;
    if (seen >= rank) return b < 0 ? 0 : Math.exp((b + 1) * LOG_BASE);
  }
  return null;
}
