import { assert } from '../assert.js';
import type { LeaseRecord, LeaseStore } from './types.js';

/** However far a record's expiry lies (a clock far off, a long lease), the wait for a renewal ends after this long. */
export const MAX_LIVE_LEASE_WAIT_MS = 10_000;

export interface LiveLeaseOptions {
  /** Unix time on this machine, ms (the clock the holders' expiries are compared with). */
  readonly nowMs: () => number;
  readonly sleepMs: (ms: number) => Promise<void>;
  /** How often a live holder renews (its heartbeat interval): the store is read again this often. */
  readonly renewIntervalMs: number;
  /** Bound on clock disagreement between the holder and this machine. */
  readonly clockSkewMs: number;
}

/**
 * The VM's lease record if a live holder keeps it: unexpired when read, and
 * written again before it expires. A record the processes of an earlier run
 * left (a `specula up` ended, a deployment torn down) expires unrenewed
 * within a lease duration: null, and it may be forgotten. Forgetting a live
 * holder's lease instead would run a second copy of its VM beside it.
 */
export async function liveLease(store: Pick<LeaseStore, 'get'>, vmId: string, options: LiveLeaseOptions): Promise<LeaseRecord | null> {
  assert(options.renewIntervalMs > 0, () => `renewal interval ${options.renewIntervalMs} ms`);
  const first = await store.get(vmId);
  if (first === null) return null;
  const startMs = options.nowMs();
  const expiredAtMs = first.record.expiresAtMs + options.clockSkewMs;
  // Bounded: MAX_LIVE_LEASE_WAIT_MS / renewIntervalMs reads at most.
  for (let reads = 0; reads < Math.ceil(MAX_LIVE_LEASE_WAIT_MS / options.renewIntervalMs); reads++) {
    const nowMs = options.nowMs();
    if (nowMs >= expiredAtMs || nowMs - startMs >= MAX_LIVE_LEASE_WAIT_MS) return null;
    await options.sleepMs(Math.min(options.renewIntervalMs, expiredAtMs - nowMs));
    const again = await store.get(vmId);
    if (again === null) return null;
    if (again.revision !== first.revision) return again.record;
  }
  return null;
}
