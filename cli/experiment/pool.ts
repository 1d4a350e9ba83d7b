import { Piscina } from 'piscina';
import { SpeculaError } from '../../lib/errors.js';
import type { RunConfig } from '../../lib/config/run-config.js';
import type { RunResult } from '../../lib/results/run-result.js';
import { describePoint, relativeCost, type SweepPoint } from '../../sim/experiment/sweep.js';

/** One or more points of a sweep threw; the message names each with its config. */
export class SweepPointsFailedError extends SpeculaError {
  readonly code = 'SWEEP_POINTS_FAILED';
  readonly retryable = false;
  constructor(readonly failures: readonly { point: SweepPoint; error: Error }[]) {
    super(failures.map(({ point, error }) => `point ${point.index} (${describePoint(point)}) failed: ${error.message}\n  config: ${JSON.stringify(point.config)}`).join('\n'));
  }
}

export type PointOutcome = { point: SweepPoint; result: RunResult; error?: undefined } | { point: SweepPoint; result?: undefined; error: Error };

export interface RunPointsOptions {
  /** Worker threads at most (fewer when there are fewer points). */
  workers: number;
  /** The compiled worker module; defaults to the one next to this module in dist/. */
  workerUrl?: URL;
  /** Called once per point, in completion order. */
  onPointDone?: (outcome: PointOutcome, finished: number, total: number) => void;
}

/**
 * The compiled worker next to this module. Run from source (vitest), this
 * module is cli/experiment/pool.ts and the worker is taken from dist/, which
 * `npm test` builds first.
 */
export function defaultWorkerUrl(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../../dist/cli/experiment/worker.js', here) : new URL('./worker.js', here);
}

/**
 * Runs every point on a pool of worker threads, the costliest first (the
 * workers then finish together). Results come back in the points' order
 * whatever order they finish in. All points run even when some fail; then
 * the failures are thrown together.
 */
export async function runPoints(points: readonly SweepPoint[], options: RunPointsOptions): Promise<RunResult[]> {
  if (points.length === 0) return [];
  const threads = Math.max(1, Math.min(options.workers, points.length));
  const pool = new Piscina<RunConfig, RunResult>({ filename: (options.workerUrl ?? defaultWorkerUrl()).href, minThreads: threads, maxThreads: threads });
  const results: (RunResult | undefined)[] = new Array<RunResult | undefined>(points.length);
  const failures: { point: SweepPoint; error: Error }[] = [];
  let finished = 0;
  try {
    const costliestFirst = points.map((point, i) => ({ point, i, cost: relativeCost(point.config) })).sort((a, b) => b.cost - a.cost || a.i - b.i);
    await Promise.all(
      costliestFirst.map(async ({ point, i }) => {
        let outcome: PointOutcome;
        try {
          const result = await pool.run(point.config);
          results[i] = result;
          outcome = { point, result };
        } catch (err) {
          const error = err instanceof Error ? err : new Error(String(err));
          failures.push({ point, error });
          outcome = { point, error };
        }
        finished += 1;
        options.onPointDone?.(outcome, finished, points.length);
      }),
    );
  } finally {
    await pool.close();
  }
  if (failures.length > 0) throw new SweepPointsFailedError(failures.sort((a, b) => a.point.index - b.point.index));
  return results.map((r) => r!);
}
