/**
 * Bugs the simulator must be able to find, each planted behind a flag that
 * only tests set (never the CLI or a config file). A test plants one and
 * shows that `vopr` catches it within its seed budget.
 */
export const PLANTED_BUGS = ['release-before-commit', 'no-fencing', 'spec-buffer-not-replicated', 'stale-term-accepted', 'ignore-permit-expiry'] as const;
export type PlantedBug = (typeof PLANTED_BUGS)[number];

/** What a test may add to the options a service builds from the run's configuration. */
export interface ServiceExtras {
  /** Keep image digests on both hosts (checkpoint exactness tests). */
  readonly recordDigests?: boolean;
  readonly plantedBug?: PlantedBug;
}
