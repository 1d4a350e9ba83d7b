import { ConfigError } from '../lib/errors.js';
import { runConfigSchema, type RunConfig, type RunConfigInput } from '../lib/config/run-config.js';
import { FLAG_FOR_PATH } from './run-options.js';

/** Validates a run configuration; errors name the flag the user typed. */
export function validateRunConfig(input: RunConfigInput): RunConfig {
  const result = runConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.join('.');
    return `${FLAG_FOR_PATH[path] ?? path}: ${issue.message}`;
  });
  throw new ConfigError(problems.join('; '));
}
