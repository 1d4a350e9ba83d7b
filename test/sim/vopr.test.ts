import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PLANTED_BUGS, type PlantedBug } from '../../lib/planted-bugs.js';
import { runVoprSeed } from '../../sim/vopr.js';

/** CI runs a slice of seeds; `npm run vopr` runs ten thousand. */
const CI_SEEDS = 150;
/** Each planted bug must be found within this many seeds. */
const SEED_BUDGET = 80;
/** The compiled CLI (npm test builds it first). */
const CLI = fileURLToPath(new URL('../../dist/cli/specula.js', import.meta.url));

describe('vopr: seeded faults, then safety and liveness', () => {
  it(`finds no invariant violation in ${CI_SEEDS} seeds`, () => {
    const failures = [];
    let failovers = 0;
    for (let seed = 1; seed <= CI_SEEDS; seed++) {
      const outcome = runVoprSeed(seed);
      failovers += outcome.failovers;
      if (!outcome.ok) failures.push({ seed, invariant: outcome.invariant, message: outcome.message });
    }
    expect(failures).toEqual([]);
    // The seeds do exercise failover, not only quiet runs.
    expect(failovers).toBeGreaterThan(CI_SEEDS / 10);
  });

  it('replays a seed bit for bit', () => {
    const a = runVoprSeed(1094);
    const b = runVoprSeed(1094);
    expect(b).toEqual(a);
    expect(runVoprSeed(1095).traceDigest).not.toBe(a.traceDigest);
  });

  it('prints the event log of a replay: the message types asked for, in time order, payloads as their length', () => {
    // Seed 919: the backup's heartbeats are lost, the primary dies, the failover service re-protects it onto host-c.
    const replay = spawnSync(process.execPath, [CLI, 'vopr', '--replay', '919', '--events', 'roleChange,checkpointChunk'], { encoding: 'utf8', timeout: 60_000, maxBuffer: 256 * 1024 * 1024 });
    expect(replay.status, replay.stderr).toBe(0);
    const printed = JSON.parse(replay.stdout) as { events: { atMs: number; type: string; host?: string; role?: string; data?: unknown }[]; outcome: { vmLost: boolean; traceDigest: string } };
    expect(new Set(printed.events.map((e) => e.type))).toEqual(new Set(['roleChange', 'checkpointChunk']));
    expect(printed.events.map((e) => e.atMs)).toEqual([...printed.events.map((e) => e.atMs)].sort((a, b) => a - b));
    expect(printed.events.find((e) => e.type === 'checkpointChunk')!.data).toEqual({ bytes: expect.any(Number) });
    expect(printed.events).toContainEqual(expect.objectContaining({ type: 'roleChange', host: 'host-c', role: 'backup' }));
    expect(printed.outcome).toMatchObject({ vmLost: true, traceDigest: runVoprSeed(919).traceDigest });
    const wrong = spawnSync(process.execPath, [CLI, 'vopr', '--replay', '919', '--events', 'heartbeats'], { encoding: 'utf8', timeout: 60_000 });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain('unknown message type "heartbeats"');
  });

  const expected: Record<PlantedBug, readonly string[]> = {
    'release-before-commit': ['output-commit'],
    'no-fencing': ['one-primary'],
    'spec-buffer-not-replicated': ['liveness', 'exactly-once'],
    'stale-term-accepted': ['liveness', 'exactly-once', 'output-commit', 'one-primary'],
  };
  for (const bug of PLANTED_BUGS) {
    it(`catches the planted bug "${bug}" within ${SEED_BUDGET} seeds`, () => {
      let found = null;
      for (let seed = 1; seed <= SEED_BUDGET && found === null; seed++) {
        const outcome = runVoprSeed(seed, bug);
        if (!outcome.ok) found = outcome;
      }
      expect(found, `${bug} went unnoticed for ${SEED_BUDGET} seeds`).not.toBeNull();
      expect(expected[bug]).toContain(found!.invariant);
    });
  }
});
