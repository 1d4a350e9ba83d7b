import { describe, expect, it } from 'vitest';
import { PLANTED_BUGS, type PlantedBug } from '../../sim/planted-bugs.js';
import { runVoprSeed } from '../../sim/vopr.js';

/** CI runs a slice of seeds; `npm run vopr` runs ten thousand. */
const CI_SEEDS = 150;
/** Each planted bug must be found within this many seeds. */
const SEED_BUDGET = 80;

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
