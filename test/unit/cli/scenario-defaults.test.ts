/**
 * The flags of `specula run` and `experiment` repeat the configuration
 * schema's defaults (commander prints them in --help): with no flag given,
 * the configuration they build must be exactly the schema's own defaults,
 * so that docs/defaults.md's "each default once, in the schemas" stays true.
 */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { runConfigSchema } from '../../../lib/config/run-config.js';
import { addScenarioOptions, scenarioConfig, type ScenarioFlags } from '../../../cli/run-options.js';
import { runCommand } from '../../../cli/commands/run.js';

describe('the scenario flags, left at their defaults', () => {
  it('build the configuration the schema gives with nothing set, for every mode', () => {
    const flags = addScenarioOptions(new Command()).parse([], { from: 'user' }).opts<ScenarioFlags>();
    for (const mode of ['native', 'remus', 'spec', 'spec-racc'] as const) {
      const point = { mode, epochMs: 25, rttMs: 1, seed: 1 };
      const fromFlags = runConfigSchema.parse(scenarioConfig(flags, point));
      const fromSchema = runConfigSchema.parse({ mode, epochMs: 25, seed: 1, link: { rttMs: 1 } });
      expect(fromFlags, mode).toEqual(fromSchema);
    }
  });

  it("of `specula run` (mode, epoch, RTT, seed and the rest) build the schema's defaults too", () => {
    const run = runCommand();
    const flags = run.opts<ScenarioFlags & { mode: 'native'; epochMs: number; rttMs: number; seed: number }>();
    const fromFlags = runConfigSchema.parse(scenarioConfig(flags, { mode: flags.mode, epochMs: flags.epochMs, rttMs: flags.rttMs, seed: flags.seed }));
    expect(fromFlags).toEqual(runConfigSchema.parse({}));
  });
});
