/** `specula run --plot`: the run's JSON on stdout as without it, and a picture of the run where asked. */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../dist/cli/specula.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'specula-run-plot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('specula run --plot', () => {
  it('draws goodput over time with the crash, the promotion and the re-protection marked', () => {
    const file = join(dir, 'run.svg');
    const r = spawnSync(process.execPath, [CLI, 'run', '--mode', 'spec', '--duration-s', '2', '--bandwidth-mbps', '100', '--crash-primary-at-ms', '800', '--plot', file], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { failovers: number; reprotections: number; streamVerified: boolean };
    expect(result.streamVerified).toBe(true);
    expect(result.failovers).toBe(1);
    // The spare's base image (64 MiB) crosses the 10 Gbit/s replication link within the run: the third mark is owed.
    expect(result.reprotections).toBe(1);
    expect(r.stderr).toContain(`wrote ${file}`);
    const svg = readFileSync(file, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    for (const label of ['crash', 'promoted', 're-protected']) expect(svg).toContain(`>${label}</text>`);
    expect(svg).toContain('goodput (Mbit/s)');
  });
});
