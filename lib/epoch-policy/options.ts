import { z } from 'zod';

/**
 * When an epoch ends (docs/adaptive-epochs.md). fixed: every epochMs.
 * adaptive: at the latest every epochMs, earlier once held output waits on a
 * connection the guest has gone quiet on, never before minEpochMs.
 */
export const EPOCH_POLICIES = ['fixed', 'adaptive'] as const;
export type EpochPolicyKind = (typeof EPOCH_POLICIES)[number];

export const epochPolicySchema = z.strictObject({
  kind: z.enum(EPOCH_POLICIES).default('fixed').describe('fixed: every epoch lasts epochMs. adaptive: epochMs at most; an epoch ends early when held output waits on a connection the guest has gone quiet on, and doing so gains that output more than a pause costs (docs/adaptive-epochs.md).'),
  minEpochMs: z.number().positive().max(10_000).default(2).describe('adaptive: shortest epoch, in ms, run to pause to pause (bounds the share of time the guest spends paused).'),
  quietUs: z.number().int().min(1).max(1_000_000).default(300).describe('adaptive: a connection with held output and no new output for this long is quiet, in µs (above the guest\'s gaps inside one burst).'),
  interactiveMs: z.number().min(0).max(3_600_000).default(100).describe('adaptive: for this long after output went quiet the guest counts as answering requests, in ms, and an epoch ends once the transfer of its checkpoint would hold a response longer than a pause costs (0: never).'),
  maxConnections: z.number().int().min(1).max(1_000_000).default(4096).describe('adaptive: connections with held output the netbuffer and the acker watch each; beyond it a connection is not watched (counted) and its output waits for the epoch\'s end.'),
});
export type EpochPolicyConfig = z.infer<typeof epochPolicySchema>;

/** What the checkpointer needs of the policy (times in µs). */
export interface EpochPolicyOptions {
  readonly kind: EpochPolicyKind;
  readonly minEpochUs: number;
  /** After output went quiet, this long the guest counts as answering requests (epochs are kept short, interactiveEpochCapUs). */
  readonly interactiveUs: number;
}

/** What the netbuffer and the acker need to report quiet output (null: they do not). */
export interface OutputWatchOptions {
  readonly quietUs: number;
  readonly maxConnections: number;
  /** Where the reports go: the checkpointer's subject. */
  readonly subject: string;
}
