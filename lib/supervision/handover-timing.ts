/**
 * Pacing of the speculative-buffer handover at a promotion (docs/failover.md).
 * The acker asks its guest for the backup's buffer and asks again, with a
 * doubling wait, while nothing arrives; the guest backs off its answers in
 * the same way, since each answer is the whole buffer (up to
 * specBufferBytes) and the requests may repeat (a lost answer, a
 * duplicate, a hostile publisher).
 */
/** The longest wait between an acker's requests: a large buffer over a slow bus is not asked for again while it arrives. */
export const HANDOVER_RETRY_MAX_US = 500_000;
/**
 * The longest a guest waits between two answers of one promotion. It waits
 * the acker's first retry interval after its first answer, then twice as
 * long after each further one, up to this: half the acker's longest wait,
 * so a lost answer costs at most one more request.
 */
export const HANDOVER_ANSWER_INTERVAL_MAX_US = HANDOVER_RETRY_MAX_US / 2;
