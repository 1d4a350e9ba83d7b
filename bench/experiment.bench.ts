import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { withTarget, type BenchRecord } from './measure.js';

const CLI = fileURLToPath(new URL('../cli/specula.js', import.meta.url));
const PACKAGE_JSON = fileURLToPath(new URL('../../package.json', import.meta.url));

/** The arguments `npm start` gives the CLI after its build, read from package.json so the two cannot drift apart. */
function startArgs(): string[] {
  const start = (JSON.parse(readFileSync(PACKAGE_JSON, 'utf8')) as { scripts: { start: string } }).scripts.start;
  const [, args] = start.split('specula.js');
  if (args === undefined) throw new Error(`npm start does not run specula.js: ${start}`);
  return args.trim().split(/\s+/);
}

/** The paper sweep, exactly as `npm start` runs it after the build (target: under 45 s on 2 cores). */
export function defaultSweep(): BenchRecord {
  const out = mkdtempSync(join(tmpdir(), 'specula-bench-'));
  try {
    const t0 = performance.now();
    const run = spawnSync(process.execPath, [CLI, ...startArgs(), '--out', out, '--format', 'json'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const wallMs = Math.round(performance.now() - t0);
    if (run.status !== 0) throw new Error(`experiment failed (${run.status}): ${run.stderr.slice(-2000)}`);
    const report = JSON.parse(run.stdout) as { results: unknown[] };
    return withTarget({ name: 'experiment.default-sweep', metrics: { wallMs, points: report.results.length } }, 'wallMs', '<=', 45_000);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}
