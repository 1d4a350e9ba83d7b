import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import { Command, InvalidArgumentError, Option } from 'commander';
import { MODES, runConfigSchema, type Mode, type RunConfig } from '../../lib/config/run-config.js';
import { ConfigError } from '../../lib/errors.js';
import { collectRows, describePoint, expandSweep, experimentReport, DEFAULT_WORKLOADS, WORKLOADS, type ExperimentRow, type PointKey, type SweepSpec, type Variant, type WorkloadKind } from '../../sim/experiment/index.js';
import { runPoints, SweepPointsFailedError, type PointOutcome } from '../experiment/pool.js';
import { EXIT_FAILED, EXIT_OK } from '../exit-codes.js';
import { addScenarioOptions, FLAG_FOR_PATH, num, scenarioConfig, type ScenarioFlags } from '../run-options.js';
import { checkOutputFile, prepareOutputFolder, writeOutputFile } from '../validate.js';

/** Simulated seconds per point by default: the whole default sweep stays well under a minute on 2 cores. */
export const DEFAULT_DURATION_S = 5;
const DEFAULT_EPOCHS_MS = [10, 25, 50, 100, 200];

interface ExperimentFlags extends Omit<ScenarioFlags, 'workload'> {
  sweep: string[];
  modes: Mode[];
  epochsMs: number[];
  rttsMs: number[];
  workloads: WorkloadKind[];
  seed: number;
  workers: number;
  out: string;
  format: 'table' | 'json';
}

/** A strict comma list: no empty items, no duplicates, every item parsed by `item`. */
function commaList<T>(item: (s: string) => T): (value: string) => T[] {
  return (value) => {
    const parts = value.split(',').map((s) => s.trim());
    if (parts.some((s) => s === '')) throw new InvalidArgumentError(`'${value}' has an empty item`);
    const seen = new Set<string>();
    for (const s of parts) {
      if (seen.has(s)) throw new InvalidArgumentError(`'${s}' is listed twice`);
      seen.add(s);
    }
    return parts.map(item);
  };
}

function oneOf<T extends string>(choices: readonly T[]): (s: string) => T {
  return (s) => {
    if (!(choices as readonly string[]).includes(s)) throw new InvalidArgumentError(`'${s}' is not one of ${choices.join(', ')}`);
    return s as T;
  };
}

const workerCount = (value: string): number => {
  const n = num(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`'${value}' is not a positive integer`);
  return n;
};

/** A scenario option swept over values: its flag (without dashes), the flags object's key, the parsed values. */
interface SweptOption {
  readonly flag: string;
  readonly attribute: string;
  readonly values: readonly (string | number)[];
}

/** Options a sweep cannot take: they have their own list flags, or name the run rather than its scenario. */
const NOT_SWEPT = new Set(['workload', 'vm']);

/**
 * Parses `--sweep flag=v1,v2,…` against the scenario options: each value
 * goes through the option's own parser (numbers, choices), so a sweep
 * accepts exactly what the flag does, with the same message when it does not.
 */
function sweptOptions(specs: readonly string[], scenario: readonly Option[]): SweptOption[] {
  const byFlag = new Map(scenario.filter((o) => o.long !== undefined && o.required && !NOT_SWEPT.has(o.long.slice(2))).map((o) => [o.long!.slice(2), o]));
  const swept: SweptOption[] = [];
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const flag = (eq < 0 ? spec : spec.slice(0, eq)).replace(/^--/, '');
    const option = byFlag.get(flag);
    if (option === undefined) throw new ConfigError(`--sweep ${spec}: '${flag}' is not a scenario option with a value; one of: ${[...byFlag.keys()].join(', ')}`);
    if (eq < 0) throw new ConfigError(`--sweep ${spec}: give the values, as ${flag}=a,b,c`);
    if (swept.some((o) => o.flag === flag)) throw new ConfigError(`--sweep: '${flag}' is swept twice`);
    let values: (string | number)[];
    try {
      values = commaList((v): string | number => (option.parseArg ? (option.parseArg(v, undefined) as unknown as string | number) : v))(spec.slice(eq + 1));
    } catch (err) {
      throw new ConfigError(`--sweep ${spec}: ${err instanceof Error ? err.message : String(err)}`);
    }
    swept.push({ flag, attribute: option.attributeName(), values });
  }
  return swept;
}

/** Every combination of the swept values, as variants keyed by flag; one empty variant when nothing is swept. */
function variantsOf(swept: readonly SweptOption[]): Variant[] {
  let variants: Variant[] = [{}];
  for (const o of swept) variants = variants.flatMap((v) => o.values.map((value) => ({ ...v, [o.flag]: value })));
  return variants;
}

/** The flag a config path came from, as `experiment` spells it. */
const EXPERIMENT_FLAG_FOR_PATH: Record<string, string> = { ...FLAG_FOR_PATH, mode: '--modes', epochMs: '--epochs-ms', 'link.rttMs': '--rtts-ms' };

/** Validates one point's config; the error names the point and the flag. */
function pointConfig(flags: ExperimentFlags, swept: readonly SweptOption[], key: PointKey): RunConfig {
  const overrides = Object.fromEntries(swept.filter((o) => o.flag in key.variant).map((o) => [o.attribute, key.variant[o.flag]]));
  const input = scenarioConfig({ ...flags, ...overrides, workload: key.workload }, { mode: key.mode, epochMs: key.epochMs ?? 0, rttMs: key.rttMs, seed: key.seed });
  // Native has no epoch: leave the schema's default rather than borrow one of the sweep's.
  if (key.epochMs === null) delete input.epochMs;
  const parsed = runConfigSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const path = issue.path.join('.');
    return `${EXPERIMENT_FLAG_FOR_PATH[path] ?? path}: ${issue.message}`;
  });
  throw new ConfigError(`${problems.join('; ')} (point ${describePoint(key)})`);
}

const mbps = (bitsPerSec: number) => (bitsPerSec / 1e6).toFixed(1);
const ms = (v: number | null) => (v === null ? '-' : v.toFixed(2));

function formatRows(rows: readonly ExperimentRow[], swept: readonly SweptOption[]): string {
  const table = new Table({
    style: { head: [], border: [] },
    // No rule between rows: a sweep is many rows.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    head: ['mode', 'workload', 'epoch ms', 'rtt ms', ...swept.map((o) => o.flag), 'goodput Mbit/s', 'bulk Mbit/s', 'x native', 'lat p50 ms', 'lat p99 ms', 'checkpoints', 'verified'],
  });
  for (const { point, result: r, goodputRatioToNative } of rows) {
    table.push([point.mode, point.workload, point.epochMs ?? '-', point.rttMs, ...swept.map((o) => String(point.variant[o.flag] ?? '-')), mbps(r.goodputBitsPerSec), r.bulkGoodputBitsPerSec === null ? '-' : mbps(r.bulkGoodputBitsPerSec), goodputRatioToNative === null ? '-' : goodputRatioToNative.toFixed(2), ms(r.latencyMsP50), ms(r.latencyMsP99), r.checkpoints, r.streamVerified ? 'yes' : 'NO']);
  }
  return table.toString();
}

/** Progress on stderr: a bar on a terminal, one line per finished point otherwise (CI logs). */
function progressReporter(total: number): { onPointDone: (o: PointOutcome, finished: number) => void; stop: () => void } {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar({ stream: process.stderr, format: 'experiment [{bar}] {value}/{total} points | {last}', hideCursor: true, clearOnComplete: false }, cliProgress.Presets.shades_classic);
    bar.start(total, 0, { last: '' });
    return {
      onPointDone: (o, finished) => bar.update(finished, { last: `${describePoint(o.point)}${o.error ? ' FAILED' : ''}` }),
      stop: () => bar.stop(),
    };
  }
  return {
    onPointDone: (o, finished) => {
      const what = o.error ? `FAILED: ${o.error.message}` : `${mbps(o.result.goodputBitsPerSec)} Mbit/s, ${(o.result.wallMs / 1000).toFixed(1)} s wall`;
      process.stderr.write(`[${finished}/${total}] ${describePoint(o.point)}: ${what}\n`);
    },
    stop: () => {},
  };
}

export function experimentCommand(): Command {
  const cmd = new Command('experiment').description("run the paper's sweep (modes x epochs x RTTs x workloads) on worker threads; table, JSON and SVG plots");
  const list = <T>(flags: string, description: string, item: (s: string) => T, defaults: readonly T[]) =>
    new Option(flags, description).argParser(commaList(item)).default([...defaults], defaults.join(','));
  cmd
    .addOption(list('--modes <list>', 'replication modes', oneOf(MODES), MODES))
    .addOption(list('--epochs-ms <list>', 'checkpoint epoch lengths (replicated modes)', num, DEFAULT_EPOCHS_MS))
    .addOption(list('--rtts-ms <list>', 'round-trip propagation delays', num, [1]))
    .addOption(list('--workloads <list>', 'workloads: bulk, rr, mixed (both flows at once in one guest)', oneOf(WORKLOADS), DEFAULT_WORKLOADS))
    .option('--seed <n>', 'seed of every point', num, 1)
    .addOption(new Option('--workers <n>', 'worker threads').argParser(workerCount).default(availableParallelism(), `this machine's cores, ${availableParallelism()}`))
    .option('--out <dir>', 'directory for experiment.json and the SVG plots', 'results')
    .addOption(new Option('--format <format>', 'stdout: table, or the experiment JSON').choices(['table', 'json']).default('table'))
    .addOption(
      new Option('--sweep <flag=values>', 'also sweep a scenario option over values, e.g. queue-packets=500,1000,2000 or cc=newreno,cubic (repeatable: every combination)')
        .argParser((value: string, previous: string[]) => [...previous, value])
        .default([], 'none'),
    );
  // The scenario flags of `run`, less --workload (this command takes a list) and with a shorter default duration.
  const scenario = addScenarioOptions(new Command()).options.filter((o) => o.long !== '--workload');
  for (const option of scenario) {
    if (option.long === '--duration-s') option.default(DEFAULT_DURATION_S);
    cmd.addOption(option);
  }
  cmd.action(async (flags: ExperimentFlags) => {
    const swept = sweptOptions(flags.sweep, scenario);
    const spec: SweepSpec = { modes: flags.modes, epochsMs: flags.epochsMs, rttsMs: flags.rttsMs, workloads: flags.workloads, seed: flags.seed, ...(swept.length > 0 ? { variants: variantsOf(swept) } : {}) };
    const points = expandSweep(spec, (key) => pointConfig(flags, swept, key));
    // Before the sweep, which may take an hour: an output folder that cannot be made would lose it all.
    const outDir = prepareOutputFolder('--out', flags.out);
    const jsonFile = resolve(outDir, 'experiment.json');
    const plotFile = (name: string) => resolve(outDir, `experiment-${name}.svg`);
    const plotNames = ['goodput', 'latency', 'tradeoff', ...(swept.length === 1 ? [swept[0]!.flag] : [])];
    for (const file of [jsonFile, ...plotNames.map(plotFile)]) checkOutputFile('--out', file);
    const progress = progressReporter(points.length);
    const t0 = performance.now();
    let results;
    try {
      results = await runPoints(points, { workers: flags.workers, onPointDone: progress.onPointDone });
    } catch (err) {
      progress.stop();
      if (!(err instanceof SweepPointsFailedError)) throw err;
      process.stderr.write(`specula experiment: ${err.message}\n`);
      process.exitCode = EXIT_FAILED;
      return;
    }
    progress.stop();
    const wallS = (performance.now() - t0) / 1000;
    const rows = collectRows(points, results);
    const report = experimentReport(spec, rows);

    const written: [string, string][] = [['json', jsonFile]];
    writeOutputFile('--out', jsonFile, JSON.stringify(report, null, 2) + '\n');
    // vega is loaded only when plots are drawn: every command (a health probe too) starts through this module.
    const { goodputSpec, latencySpec, paretoSpec, renderSvg, sweepSpec } = await import('../experiment/plot.js');
    // The epochs' plots, a line per mode and swept value; and against one swept option, a plot over it too (none over two).
    const specOf = (name: string) => (name === 'goodput' ? goodputSpec(rows, spec.epochsMs) : name === 'latency' ? latencySpec(rows, spec.epochsMs) : name === 'tradeoff' ? paretoSpec(rows) : sweepSpec(rows, name));
    const plots = plotNames.map((name) => [name, specOf(name)] as const);
    for (const [name, plotSpec] of plots) {
      if (plotSpec === null) continue;
      const file = plotFile(name);
      writeOutputFile('--out', file, await renderSvg(plotSpec));
      written.push(['plot', file]);
    }

    // With --format json, stdout is the JSON alone; file paths go to stderr.
    const out = flags.format === 'json' ? process.stderr : process.stdout;
    if (flags.format === 'json') process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else process.stdout.write(formatRows(rows, swept) + '\n');
    process.stderr.write(`${points.length} points on ${Math.min(flags.workers, points.length)} workers in ${wallS.toFixed(1)} s wall\n`);
    for (const [kind, file] of written) out.write(`${kind}: ${file}\n`);
    process.exitCode = rows.every((r) => r.result.streamVerified) ? EXIT_OK : EXIT_FAILED;
  });
  return cmd;
}
