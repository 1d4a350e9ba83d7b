/**
 * Pacing of the speculative-buffer handover at a promotion (docs/failover.md).
 * The acker asks its guest for the backup's buffer and asks again, with a
 * doubling wait, while nothing arrives; the guest answers one term's request
 * at most once per answer interval, since each answer is the whole buffer
 * (up to specBufferBytes) and the requests may repeat (a lost answer, a
 * duplicate, a hostile publisher).
 */
/** The longest wait between an acker's requests: a large buffer over a slow bus is not asked for again while it arrives. */
export const HANDOVER_RETRY_MAX_US = 500_000;
/** The shortest time between two answers of a guest: half the acker's longest wait, so a lost answer costs at most one more. */
export const HANDOVER_ANSWER_INTERVAL_US = HANDOVER_RETRY_MAX_US / 2;
