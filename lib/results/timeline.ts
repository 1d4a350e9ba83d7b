/**
 * What happened when in one run, for a picture of it: the client's delivery
 * per bin, each epoch's commit, the crash, each promotion and each
 * re-protection, all in µs from the run's start.
 */
export interface RunTimeline {
  readonly durationUs: number;
  readonly binUs: number;
  /** Bytes the client received in each bin. */
  readonly deliveredPerBin: readonly number[];
  /** Commits of every primary that ran (up to the run's latency-sample bound). */
  readonly committedAtUs: readonly number[];
  readonly crashAtUs: number | null;
  /** When each promoted primary first reported in. */
  readonly promotedAtUs: readonly number[];
  /** When each new backup held a complete image. */
  readonly reprotectedAtUs: readonly number[];
}
