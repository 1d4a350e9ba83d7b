/** The invariants of DESIGN §5 the auditor checks on the bus. */
export const AUDITED_INVARIANTS = ['output-commit', 'one-primary'] as const;
export type AuditedInvariant = (typeof AUDITED_INVARIANTS)[number];

/** The rule within an invariant that broke. */
export type ViolationRule =
  /** A segment of an epoch not yet committed reached the client's link. */
  | 'segment-before-commit'
  /** A byte of an epoch not yet committed reached the client's link. */
  | 'byte-before-commit'
  /** A byte reached the client's link that no guest ever emitted. */
  | 'byte-never-emitted'
  /** The primary committed an epoch its backup had not acknowledged. */
  | 'commit-without-ack'
  /** A promotion restored an image that ends before bytes the client was already sent (a failover lost output). */
  | 'promoted-image-behind-output'
  /** Output of an older term after a newer term had released output. */
  | 'older-term-after-newer'
  /** Two hosts ran as primary under one term (a term names one lease holder). */
  | 'term-on-two-hosts'
  /** Output of a term from a host that does not hold it. */
  | 'output-from-non-holder'
  /** Output from a host at a moment of its clock after its release permit ended. */
  | 'output-without-permit';

export interface Violation {
  readonly invariant: AuditedInvariant;
  readonly rule: ViolationRule;
  /** Simulated (or wall) time at which it was seen, µs. */
  readonly atUs: number;
  /** The host whose message showed it, when known. */
  readonly host: string | null;
  /** That message's publisher's clock at publication, µs (equal to `atUs` where it carries no stamp): a late arrival shows. */
  readonly localUs: number;
  readonly detail: string;
}
