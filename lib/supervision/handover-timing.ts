import { assert } from '../assert.js';

/**
 * Pacing of the speculative-buffer handover at a promotion (docs/failover.md).
 * The acker asks its guest for the backup's buffer and asks again, with a
 * doubling wait, while nothing arrives, up to `bus.handoverRetryMaxMs`; the
 * guest backs off its answers in the same way, since each answer is the
 * whole buffer (up to specBufferBytes) and the requests may repeat (a lost
 * answer, a duplicate, a hostile publisher).
 */

/** The acker's longest wait between two requests, µs: never shorter than its first (the config schema refuses one that is). */
export function handoverRetryMaxUs(bus: { readonly handoverRetryMs: number; readonly handoverRetryMaxMs: number }): number {
  assert(bus.handoverRetryMaxMs >= bus.handoverRetryMs, () => `a longest handover wait of ${bus.handoverRetryMaxMs} ms below the first, ${bus.handoverRetryMs} ms`);
  return bus.handoverRetryMaxMs * 1_000;
}

/**
 * The longest a guest waits between two answers of one promotion. It waits
 * the acker's first retry interval after its first answer, then twice as
 * long after each further one, up to this: half the acker's longest wait,
 * so a lost answer costs at most one more request.
 */
export function handoverAnswerIntervalMaxUs(retryMaxUs: number): number {
  return retryMaxUs / 2;
}
