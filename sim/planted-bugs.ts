/**
 * Bugs the simulator must be able to find, each planted behind a flag that
 * only tests set (never the CLI or a config file). A test plants one and
 * shows that `vopr` catches it within its seed budget.
 */
export const PLANTED_BUGS = ['release-before-commit', 'no-fencing', 'spec-buffer-not-replicated', 'stale-term-accepted'] as const;
export type PlantedBug = (typeof PLANTED_BUGS)[number];
