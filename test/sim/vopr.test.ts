import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PLANTED_BUGS, type PlantedBug } from '../../lib/planted-bugs.js';
import { runVoprSeed } from '../../sim/vopr.js';

/** CI runs a slice of seeds; `npm run vopr` runs ten thousand. */
const CI_SEEDS = 100;
/** Seeds whose double failures lose the VM (liveness is not owed there): at most this share, or liveness goes unchecked too often. */
const MAX_VM_LOST_SHARE = 0.05;
/** Each planted bug must be found within this many seeds. */
const SEED_BUDGET = 80;
/** The compiled CLI (npm test builds it first). */
const CLI = fileURLToPath(new URL('../../dist/cli/specula.js', import.meta.url));

describe('vopr: seeded faults, then safety and liveness', () => {
  const outcomes = () => {
    const all = [];
    for (let seed = 1; seed <= CI_SEEDS; seed++) all.push(runVoprSeed(seed));
    return all;
  };
  let ran: ReturnType<typeof outcomes> | null = null;
  const ciOutcomes = () => (ran ??= outcomes());

  // A hang guard, not a speed target: 100 seeds take 1–3 minutes of one core, more on a loaded machine.
  it(`finds no invariant violation in ${CI_SEEDS} seeds`, { timeout: 900_000 }, () => {
    const all = ciOutcomes();
    expect(all.filter((o) => !o.ok).map((o) => ({ seed: o.seed, invariant: o.invariant, rule: o.rule, message: o.message }))).toEqual([]);
    // The seeds do exercise failover, not only quiet runs.
    expect(all.reduce((n, o) => n + o.failovers, 0)).toBeGreaterThan(CI_SEEDS / 10);
  });

  it(`loses the VM to a double failure in at most ${MAX_VM_LOST_SHARE * 100}% of those seeds, so liveness is checked on the rest`, () => {
    const lost = ciOutcomes().filter((o) => o.vmLost).length;
    expect(lost / CI_SEEDS).toBeLessThanOrEqual(MAX_VM_LOST_SHARE);
    // Double failures are planned too, and a lost VM is told apart from a liveness failure: seed 923 below.
  });

  it('passes the seeds where an agent restarted alone released output before its epoch was on the backup, or lost the VM it still held', () => {
    // 2023, 2069, 2144: the primary's new agent assigned from its configuration, and the checkpointer took that for a
    // change of backup, committing the epochs in flight locally. 1438, 2097: a checkpointer that ended its side so
    // took no later promotion. 1205, 1383, 2544, 2767: an agent restarted beside a primary that came back empty or a
    // backup not yet synced, which the failover service takes for a restarted host: double failures, now told so.
    // 2023 and 1383 have since also drawn a lease-store outage at the VM's creation; their first scenarios live on
    // as directed tests (test/sim/failover.test.ts, test/unit/auditor/vm-loss.test.ts).
    for (const seed of [2023, 2069, 2144, 1438, 2097, 1205, 1383, 2544, 2767]) {
      const o = runVoprSeed(seed);
      expect(o.faults.some((f) => f.kind === 'restart-agent'), `seed ${seed} restarts an agent`).toBe(true);
      expect({ seed, ok: o.ok, invariant: o.invariant, message: o.message }).toEqual({ seed, ok: true, invariant: null, message: null });
    }
  });

  it('passes the seed where a backup that rebooted unheard took the VM its restarted primary made anew, and promotes no one', () => {
    // 3515: the primary's host crashed and came back (its agent another process, deposed from the lease), the backup's
    // host rebooted and followed the VM made anew, both while the failover service was cut off and restarting; when
    // the primary's host crashed again, that backup was promoted at byte 0 behind 236 kB that had left.
    const o = runVoprSeed(3515);
    expect(o.faults.map((f) => f.kind)).toEqual(expect.arrayContaining(['reboot-backup', 'restart-failover', 'revive']));
    expect({ ok: o.ok, invariant: o.invariant, message: o.message, vmLost: o.vmLost, failovers: o.failovers }).toEqual({ ok: true, invariant: null, message: null, vmLost: true, failovers: 0 });
  });

  it('replays a seed bit for bit', () => {
    const a = runVoprSeed(1094);
    const b = runVoprSeed(1094);
    expect(b).toEqual(a);
    expect(runVoprSeed(1095).traceDigest).not.toBe(a.traceDigest);
  });

  it('prints the event log of a replay: the message types asked for, in time order, payloads as their length', () => {
    // Seed 923: the primary crashes, host-b takes over and re-protects the VM onto host-c, and crashes too before
    // host-c holds a complete image: the VM is lost (counted, not a failure: two hosts died).
    const replay = spawnSync(process.execPath, [CLI, 'vopr', '--replay', '923', '--events', 'roleChange,checkpointChunk'], { encoding: 'utf8', timeout: 60_000, maxBuffer: 256 * 1024 * 1024 });
    expect(replay.status, replay.stderr).toBe(0);
    const printed = JSON.parse(replay.stdout) as { events: { atMs: number; type: string; host?: string; role?: string; data?: unknown }[]; outcome: { vmLost: boolean; traceDigest: string } };
    expect(new Set(printed.events.map((e) => e.type))).toEqual(new Set(['roleChange', 'checkpointChunk']));
    expect(printed.events.map((e) => e.atMs)).toEqual([...printed.events.map((e) => e.atMs)].sort((a, b) => a - b));
    expect(printed.events.find((e) => e.type === 'checkpointChunk')!.data).toEqual({ bytes: expect.any(Number) });
    expect(printed.events).toContainEqual(expect.objectContaining({ type: 'roleChange', host: 'host-c', role: 'backup' }));
    expect(printed.outcome).toMatchObject({ vmLost: true, traceDigest: runVoprSeed(923).traceDigest });
    const wrong = spawnSync(process.execPath, [CLI, 'vopr', '--replay', '923', '--events', 'heartbeats'], { encoding: 'utf8', timeout: 60_000 });
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain('unknown message type "heartbeats"');
  });

  /** What each planted bug must be caught as: the invariant and, for an audited one, the rule. */
  const expected: Record<PlantedBug, readonly string[]> = {
    'release-before-commit': ['output-commit/segment-before-commit', 'output-commit/byte-before-commit'],
    'no-fencing': ['one-primary/older-term-after-newer'],
    'spec-buffer-not-replicated': ['liveness/', 'exactly-once/'],
    'stale-term-accepted': ['one-primary/term-on-two-hosts'],
    'ignore-permit-expiry': ['one-primary/output-without-permit'],
  };
  for (const bug of PLANTED_BUGS) {
    it(`catches the planted bug "${bug}" within ${SEED_BUDGET} seeds`, () => {
      let found = null;
      for (let seed = 1; seed <= SEED_BUDGET && found === null; seed++) {
        const outcome = runVoprSeed(seed, bug);
        if (!outcome.ok) found = outcome;
      }
      expect(found, `${bug} went unnoticed for ${SEED_BUDGET} seeds`).not.toBeNull();
      expect(expected[bug]).toContain(`${found!.invariant}/${found!.rule ?? ''}`);
    });
  }
});
