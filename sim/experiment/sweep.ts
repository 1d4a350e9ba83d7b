import { isSpeculative, MODES, type Mode, type RunConfig } from '../../lib/config/run-config.js';
import { assert } from '../../lib/assert.js';
import type { RunResult } from '../../lib/results/run-result.js';

export const WORKLOADS = ['bulk', 'rr', 'mixed'] as const;
export type WorkloadKind = (typeof WORKLOADS)[number];
/** What a sweep runs unless told: the paper's two workloads. */
export const DEFAULT_WORKLOADS: readonly WorkloadKind[] = ['bulk', 'rr'];

/** Scenario options a point sets beyond the sweep's own dimensions, by flag name (`queue-packets`: 2000). */
export type Variant = Readonly<Record<string, string | number>>;

/**
 * The paper's sweep (DESIGN.md §9): modes × epoch lengths × RTTs × workloads,
 * one seed, and optionally × variants of any other scenario option (a queue
 * size, a congestion control).
 */
export interface SweepSpec {
  modes: readonly Mode[];
  epochsMs: readonly number[];
  rttsMs: readonly number[];
  workloads: readonly WorkloadKind[];
  seed: number;
  /** None or one `{}`: every point takes the scenario's options as given. */
  variants?: readonly Variant[];
}

/** Scenario options (by flag) that change only the speculative modes: the others run once whatever their value. */
export const SPECULATIVE_ONLY_FLAGS: ReadonlySet<string> = new Set(['spec-window', 'spec-buffer-bytes']);

/** Scenario options (by flag) that change only the replicated modes: native runs once whatever their value. */
export const REPLICATED_ONLY_FLAGS: ReadonlySet<string> = new Set(['epoch-policy', 'min-epoch-ms', 'quiet-us']);

/** The part of a variant that can change what `mode` does. */
export function variantFor(mode: Mode, variant: Variant): Variant {
  if (isSpeculative(mode)) return variant;
  const ignored = (flag: string) => SPECULATIVE_ONLY_FLAGS.has(flag) || (mode === 'native' && REPLICATED_ONLY_FLAGS.has(flag));
  return Object.fromEntries(Object.entries(variant).filter(([flag]) => !ignored(flag)));
}

/** What distinguishes one point of a sweep; `epochMs` is null for native, which has no epoch. */
export interface PointKey {
  mode: Mode;
  workload: WorkloadKind;
  epochMs: number | null;
  rttMs: number;
  seed: number;
  variant: Variant;
}

export interface SweepPoint extends PointKey {
  /** Position in the sweep's deterministic order. */
  index: number;
  config: RunConfig;
}

/** One finished point with its goodput relative to native of the same workload and RTT. */
export interface ExperimentRow {
  point: SweepPoint;
  result: RunResult;
  /** null when native is not part of the sweep or delivered nothing. */
  goodputRatioToNative: number | null;
}

/**
 * Every point of the sweep in a fixed order: workload, then RTT, then
 * variant, then mode (in the order of MODES), then epoch. Native runs once per
 * workload × RTT × variant since the epoch does not apply to it. `configFor`
 * turns a key into a validated config.
 */
export function expandSweep(spec: SweepSpec, configFor: (key: PointKey) => RunConfig): SweepPoint[] {
  const modes = MODES.filter((m) => spec.modes.includes(m));
  const variants = spec.variants === undefined || spec.variants.length === 0 ? [{}] : spec.variants;
  const points: SweepPoint[] = [];
  const seen = new Set<string>();
  for (const workload of spec.workloads) {
    for (const rttMs of spec.rttsMs) {
      for (const swept of variants) {
        for (const mode of modes) {
          const variant = variantFor(mode, swept);
          const epochs: readonly (number | null)[] = mode === 'native' ? [null] : spec.epochsMs;
          for (const epochMs of epochs) {
            const key: PointKey = { mode, workload, epochMs, rttMs, seed: spec.seed, variant };
            const id = JSON.stringify([mode, workload, epochMs, rttMs, variant]);
            if (seen.has(id)) continue; // an option this mode ignores: one run serves every value
            seen.add(id);
            points.push({ ...key, index: points.length, config: configFor(key) });
          }
        }
      }
    }
  }
  return points;
}

/**
 * A point's simulation cost relative to others, for handing the costliest
 * out first (so that two workers finish together rather than one waiting on
 * the last long point). Only the order matters: a bulk flow costs by the
 * bytes it moves, and replication moves them again (remus once through the
 * plug and the checkpoint, the speculative modes also through the acker's
 * buffer); request/response moves little.
 */
export function relativeCost(config: RunConfig): number {
  const moving = config.workload.kind === 'rr' ? 0.05 : 1;
  const replication = config.mode === 'native' ? 1 : isSpeculative(config.mode) ? 4 : 2;
  return config.durationS * (config.link.bandwidthBitsPerSec / 1e9) * moving * replication + config.durationS * 0.05;
}

/** Short human description of a point, for progress lines and error messages. */
export function describePoint(p: PointKey): string {
  const epoch = p.epochMs === null ? '' : ` epoch=${p.epochMs}ms`;
  const variant = Object.entries(p.variant).map(([flag, value]) => ` ${flag}=${value}`).join('');
  return `${p.mode} ${p.workload}${epoch} rtt=${p.rttMs}ms${variant} seed=${p.seed}`;
}

const ratioKey = (p: PointKey) => `${p.workload}/${p.rttMs}/${JSON.stringify(variantFor('native', p.variant))}`;
const RATIO_DECIMALS = 4;

/** Pairs results with their points (same order) and computes goodput ratios to native. */
export function collectRows(points: readonly SweepPoint[], results: readonly RunResult[]): ExperimentRow[] {
  assert(points.length === results.length, () => `${results.length} results for ${points.length} points`);
  const native = new Map<string, number>();
  points.forEach((p, i) => {
    if (p.mode === 'native') native.set(ratioKey(p), results[i]!.goodputBitsPerSec);
  });
  return points.map((point, i) => {
    const result = results[i]!;
    const base = native.get(ratioKey(point));
    const ratio = base === undefined || base <= 0 ? null : Number((result.goodputBitsPerSec / base).toFixed(RATIO_DECIMALS));
    return { point, result, goodputRatioToNative: ratio };
  });
}

/** A result without what depends on the machine that ran it (wall time). */
export type PortableResult = Omit<RunResult, 'wallMs'>;

export interface ExperimentReport {
  sweep: SweepSpec & { durationS: number | null };
  results: (PortableResult & { goodputRatioToNative: number | null; variant: Variant; config: RunConfig })[];
}

/** The experiment as JSON-ready data: the same seed gives the same report, byte for byte. */
export function experimentReport(spec: SweepSpec, rows: readonly ExperimentRow[]): ExperimentReport {
  return {
    sweep: {
      modes: MODES.filter((m) => spec.modes.includes(m)),
      epochsMs: [...spec.epochsMs],
      rttsMs: [...spec.rttsMs],
      workloads: [...spec.workloads],
      seed: spec.seed,
      ...(spec.variants === undefined ? {} : { variants: [...spec.variants] }),
      durationS: rows[0]?.point.config.durationS ?? null,
    },
    results: rows.map(({ point, result, goodputRatioToNative }) => {
      const { wallMs: _wallMs, ...portable } = result;
      return { ...portable, goodputRatioToNative, variant: point.variant, config: point.config };
    }),
  };
}
