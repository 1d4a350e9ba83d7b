import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODES, runConfigSchema, type RunConfig } from '../../lib/config/run-config.js';
import type { RunResult } from '../../lib/results/run-result.js';
import { collectRows, expandSweep, type PointKey, type SweepSpec } from '../../sim/experiment/index.js';
import { defaultWorkerUrl, runPoints, SweepPointsFailedError } from '../../cli/experiment/index.js';
import { simulate } from '../../sim/run.js';

// The worker threads and the CLI run the compiled code: `npm test` builds dist/ first.
const ROOT = resolve(fileURLToPath(import.meta.url), '../../..');
const CLI = join(ROOT, 'dist/cli/specula.js');
const SHORT_S = 0.3;

const configFor = (key: PointKey): RunConfig =>
  runConfigSchema.parse({
    mode: key.mode,
    seed: key.seed,
    durationS: SHORT_S,
    link: { rttMs: key.rttMs },
    workload: key.workload === 'bulk' ? { kind: 'bulk', totalBytes: 0 } : { kind: 'rr', requestBytes: 64, responseBytes: 16_384, thinkTimeUs: 0 },
    ...(key.epochMs === null ? {} : { epochMs: key.epochMs }),
  });

const withoutWall = ({ wallMs: _wallMs, ...rest }: RunResult) => rest;

const cli = (args: string[]) => spawnSync(process.execPath, [CLI, 'experiment', ...args], { encoding: 'utf8', timeout: 60_000 });

let scratch: string;
beforeAll(() => {
  for (const file of [CLI, fileURLToPath(defaultWorkerUrl())]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` (npm test does) before these tests`);
  }
  scratch = mkdtempSync(join(tmpdir(), 'specula-experiment-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('experiment sweep expansion', () => {
  const spec: SweepSpec = { modes: MODES, epochsMs: [10, 25, 50, 100, 200], rttsMs: [1, 10], workloads: ['bulk', 'rr'], seed: 3 };
  const points = expandSweep(spec, configFor);

  it('runs native once per RTT and workload, and every replicated mode at every epoch', () => {
    // 2 workloads × 2 RTTs × (1 native + 3 replicated modes × 5 epochs)
    expect(points).toHaveLength(2 * 2 * (1 + 3 * 5));
    const native = points.filter((p) => p.mode === 'native');
    expect(native.map((p) => `${p.workload}/${p.rttMs}/${p.epochMs}`)).toEqual(['bulk/1/null', 'bulk/10/null', 'rr/1/null', 'rr/10/null']);
    for (const mode of ['remus', 'spec', 'spec-racc'] as const) {
      expect(points.filter((p) => p.mode === mode && p.workload === 'bulk' && p.rttMs === 1).map((p) => p.epochMs)).toEqual(spec.epochsMs);
    }
  });

  it('orders points by workload, RTT, mode, epoch and numbers them in that order', () => {
    expect(points.map((p) => p.index)).toEqual(points.map((_, i) => i));
    expect(points.slice(0, 7).map((p) => `${p.mode}@${p.epochMs}`)).toEqual(['native@null', 'remus@10', 'remus@25', 'remus@50', 'remus@100', 'remus@200', 'spec@10']);
    expect(points.at(-1)).toMatchObject({ workload: 'rr', rttMs: 10, mode: 'spec-racc', epochMs: 200 });
  });

  it('keeps the modes in their canonical order whatever order they are given in', () => {
    const reordered = expandSweep({ ...spec, modes: ['spec', 'native'], rttsMs: [1], workloads: ['bulk'] }, configFor);
    expect(reordered.map((p) => p.mode)).toEqual(['native', 'spec', 'spec', 'spec', 'spec', 'spec']);
  });

  it('gives each point a config with its own mode, workload, RTT and seed', () => {
    for (const p of points) {
      expect(p.config).toMatchObject({ mode: p.mode, seed: 3, link: { rttMs: p.rttMs }, workload: { kind: p.workload } });
      if (p.epochMs !== null) expect(p.config.epochMs).toBe(p.epochMs);
    }
  });
});

describe('experiment sweep on worker threads', () => {
  it('returns results in point order, identical to calling simulate directly', async () => {
    const points = expandSweep({ modes: MODES, epochsMs: [10, 50], rttsMs: [1, 5], workloads: ['bulk', 'rr'], seed: 7 }, configFor);
    const finished: number[] = [];
    const results = await runPoints(points, { workers: 2, onPointDone: (o) => finished.push(o.point.index) });
    expect(results).toHaveLength(points.length);
    expect([...finished].sort((a, b) => a - b)).toEqual(points.map((p) => p.index));
    results.forEach((r, i) => {
      // Measured on the worker around the simulation itself: a real duration, not a placeholder.
      expect(r.wallMs).toBeGreaterThan(0);
      expect(withoutWall(r)).toEqual(withoutWall(simulate(points[i]!.config)));
    });
  });

  it('computes goodput ratios against native of the same workload and RTT', async () => {
    const points = expandSweep({ modes: ['native', 'remus'], epochsMs: [10], rttsMs: [1, 5], workloads: ['bulk'], seed: 1 }, configFor);
    const results = await runPoints(points, { workers: 2 });
    const rows = collectRows(points, results);
    for (const row of rows) {
      const native = rows.find((n) => n.point.mode === 'native' && n.point.rttMs === row.point.rttMs)!;
      expect(row.goodputRatioToNative).toBeCloseTo(row.result.goodputBitsPerSec / native.result.goodputBitsPerSec, 4);
    }
  });

  it('fails the points whose worker throws, naming each with its config', async () => {
    const worker = join(scratch, 'failing-worker.mjs');
    writeFileSync(worker, "export default function (config) { if (config.mode === 'remus') throw new Error('boom'); return { mode: config.mode, wallMs: 0 }; }\n");
    const points = expandSweep({ modes: ['native', 'remus'], epochsMs: [10, 50], rttsMs: [1], workloads: ['bulk'], seed: 1 }, configFor);
    const outcomes: string[] = [];
    const run = runPoints(points, { workers: 2, workerUrl: new URL(`file://${worker}`), onPointDone: (o) => outcomes.push(o.error ? 'failed' : 'ok') });
    const err = await run.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SweepPointsFailedError);
    const failed = err as SweepPointsFailedError;
    expect(failed.failures.map((f) => f.point.index)).toEqual([1, 2]);
    expect(failed.message).toContain('remus bulk epoch=10ms rtt=1ms');
    expect(failed.message).toContain('boom');
    expect(failed.message).toContain(JSON.stringify(points[1]!.config));
    expect(outcomes.sort()).toEqual(['failed', 'failed', 'ok']);
  });
});

describe('specula experiment', () => {
  const args = (out: string) => ['--duration-s', String(SHORT_S), '--epochs-ms', '10,50', '--workers', '2', '--seed', '5', '--out', out];

  it('writes a deterministic experiment.json and one line per mode in each plot', () => {
    const outA = join(scratch, 'a');
    const outB = join(scratch, 'b');
    const a = cli(args(outA));
    expect(a.stderr).not.toMatch(/Error/);
    expect(a.status).toBe(0);
    expect(cli(args(outB)).status).toBe(0);

    const stdout = a.stdout;
    for (const mode of MODES) expect(stdout).toContain(mode);
    expect(stdout).toContain(`json: ${join(outA, 'experiment.json')}`);
    expect(stdout).toContain(`plot: ${join(outA, 'experiment-goodput.svg')}`);
    expect(stdout).toContain(`plot: ${join(outA, 'experiment-latency.svg')}`);

    const json = readFileSync(join(outA, 'experiment.json'), 'utf8');
    expect(readFileSync(join(outB, 'experiment.json'), 'utf8')).toBe(json);
    const report = JSON.parse(json) as { sweep: { modes: string[]; seed: number }; results: Record<string, unknown>[] };
    expect(report.sweep).toMatchObject({ modes: [...MODES], epochsMs: [10, 50], rttsMs: [1], workloads: ['bulk', 'rr'], seed: 5, durationS: SHORT_S });
    expect(report.results).toHaveLength(2 * (1 + 3 * 2));
    expect(json).not.toContain('wallMs');
    expect(report.results[0]).toMatchObject({ mode: 'native', workload: 'bulk', epochMs: null, goodputRatioToNative: 1 });

    for (const name of ['experiment-goodput.svg', 'experiment-latency.svg']) {
      const svg = readFileSync(join(outA, name), 'utf8');
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
      // Each line of a mode is one <path> labelled with its mode; the legend names every mode.
      const lines = [...svg.matchAll(/<path aria-label="[^"]*mode: ([a-z-]+)" role="graphics-symbol" aria-roledescription="line mark"/g)].map((m) => m[1]);
      expect(lines).toEqual([...MODES]);
      const labels = [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
      for (const mode of MODES) expect(labels).toContain(mode);
    }
  });

  it('sweeps any scenario option: one point per value and mode, ratios to native of the same value, the option in the table, the JSON and its plot', () => {
    const out = join(scratch, 'sweep');
    const r = cli(['--duration-s', String(SHORT_S), '--modes', 'native,remus', '--epochs-ms', '25', '--workloads', 'bulk', '--sweep', 'queue-packets=200,2000', '--sweep', 'cc=newreno,cubic', '--out', out]);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/queue-packets.*cc/);
    const report = JSON.parse(readFileSync(join(out, 'experiment.json'), 'utf8')) as { sweep: { variants: Record<string, unknown>[] }; results: { mode: string; variant: Record<string, unknown>; goodputRatioToNative: number; config: RunConfig }[] };
    expect(report.sweep.variants).toEqual([
      { 'queue-packets': 200, cc: 'newreno' },
      { 'queue-packets': 200, cc: 'cubic' },
      { 'queue-packets': 2000, cc: 'newreno' },
      { 'queue-packets': 2000, cc: 'cubic' },
    ]);
    expect(report.results).toHaveLength(4 * 2);
    for (const result of report.results) {
      // The variant reached the point's config.
      expect(result.config.link.queueBytes).toBe(Number(result.variant['queue-packets']) * 1500);
      expect(result.config.tcp.congestionControl).toBe(result.variant.cc);
      if (result.mode === 'native') expect(result.goodputRatioToNative).toBe(1);
    }
    // Two swept options: no plot over one of them; the epochs' plots, a line per mode and variant.
    expect(r.stdout).not.toMatch(/plot: .*experiment-(queue-packets|cc)\.svg/);
    expect(r.stdout).toMatch(/plot: .*experiment-goodput\.svg/);
    const one = cli(['--duration-s', String(SHORT_S), '--modes', 'native,spec', '--epochs-ms', '25', '--workloads', 'bulk', '--sweep', 'queue-packets=200,2000', '--out', join(scratch, 'sweep1')]);
    expect(one.status).toBe(0);
    const svg = readFileSync(join(scratch, 'sweep1', 'experiment-queue-packets.svg'), 'utf8');
    expect(svg).toContain('queue-packets');
    expect([...svg.matchAll(/aria-roledescription="line mark"/g)]).toHaveLength(2);
  });

  it('sweeps the epoch policy: native runs once, the replicated modes under each policy, and a trade-off plot pairs bulk goodput with rr p99', () => {
    const out = join(scratch, 'policy');
    const r = cli(['--duration-s', String(SHORT_S), '--modes', 'native,spec', '--epochs-ms', '25', '--sweep', 'epoch-policy=fixed,adaptive', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(readFileSync(join(out, 'experiment.json'), 'utf8')) as { results: { mode: string; workload: string; variant: Record<string, unknown>; latencyMsP50: number | null }[] };
    expect(report.results.filter((x) => x.mode === 'native').map((x) => x.variant)).toEqual([{}, {}]);
    const specRr = (policy: string) => report.results.find((x) => x.mode === 'spec' && x.workload === 'rr' && x.variant['epoch-policy'] === policy)!;
    expect(specRr('adaptive').latencyMsP50!).toBeLessThan(specRr('fixed').latencyMsP50! / 4);
    const svg = readFileSync(join(out, 'experiment-tradeoff.svg'), 'utf8');
    expect(svg).toContain('epoch-policy=adaptive');
  });

  it.each([
    [['--sweep', 'queue=5'], "'queue' is not a scenario option"],
    [['--sweep', 'queue-packets=10,x'], "'x' is not a number"],
    [['--sweep', 'cc=newreno,vegas'], 'Allowed choices are newreno, cubic'],
    [['--sweep', 'loss'], 'give the values'],
    [['--epochs-ms', '10,abc'], "'abc' is not a number"],
    [['--modes', 'native,paxos'], "'paxos' is not one of"],
    [['--workloads', 'bulk,'], 'has an empty item'],
    [['--epochs-ms', '0'], '--epochs-ms'],
  ])('exits 2 on %j, naming the flag', (bad, message) => {
    const r = cli([...bad, '--out', join(scratch, 'never')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(bad[0]);
    expect(r.stderr).toContain(message);
    expect(existsSync(join(scratch, 'never'))).toBe(false);
  });
});
