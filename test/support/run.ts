import { runConfigSchema, type RunConfig, type RunConfigInput } from '../../lib/config/run-config.js';
import type { RunResult } from '../../lib/results/run-result.js';
import { recycling } from '../../lib/memory/backing.js';
import { simulate } from '../../sim/run.js';
import type { WorldHooks } from '../../sim/world.js';

/** A validated config from partial input, as the CLI would build it. */
export const config = (input: RunConfigInput = {}): RunConfig => runConfigSchema.parse(input);

/**
 * Runs on the simulator; wallMs stays 0 so results compare exactly. Memories
 * are recycled from earlier runs of the worker, as a sweep's are: nothing of
 * the world outlives the call but its result.
 */
export const sim = (input: RunConfigInput = {}, hooks: WorldHooks = {}): RunResult => recycling(() => simulate(config(input), hooks));
