import { runConfigSchema, type RunConfig, type RunConfigInput } from '../../lib/config/run-config.js';
import type { RunResult } from '../../lib/results/run-result.js';
import { simulate } from '../../sim/run.js';
import type { WorldHooks } from '../../sim/world.js';

/** A validated config from partial input, as the CLI would build it. */
export const config = (input: RunConfigInput = {}): RunConfig => runConfigSchema.parse(input);

/** Runs on the simulator; wallMs stays 0 so results compare exactly. */
export const sim = (input: RunConfigInput = {}, hooks: WorldHooks = {}): RunResult => simulate(config(input), hooks);
