import type { LiveLeaseOptions } from '../lib/lease/live-lease.js';

/** LiveLeaseOptions on this machine's wall clock and timers, for the commands that read a lease before they act on it. */
export function wallClockLiveLease(renewIntervalMs: number, clockSkewMs: number): LiveLeaseOptions {
  return { nowMs: () => Date.now(), sleepMs: (ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)), renewIntervalMs, clockSkewMs };
}
