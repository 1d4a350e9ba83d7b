import { expiresAtMs } from './holder.js';
import type { LeaseRecord } from './types.js';

/**
 * The failover service's side of the fencing rule. A take-over writes the
 * successor under the next term by compare-and-set (no backup yet); the
 * successor may start only once the record it replaced has expired on the
 * failover service's clock plus the clock-skew bound, by which time the old
 * holder has stopped on its own clock (docs/fencing.md).
 */
export function takeOverRecord(successor: string, term: number, nowUs: number, leaseDurationUs: number, replaced: LeaseRecord | null = null): LeaseRecord {
  // What the old primary committed stays known: the successor's image continues from an epoch at most that far.
  return { primaryHost: successor, term, expiresAtMs: expiresAtMs(nowUs, leaseDurationUs), backupHost: '', ...(replaced?.committedEpoch === undefined ? {} : { committedEpoch: replaced.committedEpoch }) };
}

/**
 * The first instant (µs of the failover service's clock) at which the
 * successor of `replaced` may be told to run. Rounded up: a record's
 * fractional milliseconds must never move it earlier than the expiry.
 */
export function successorMayStartAtUs(replaced: LeaseRecord | null, clockSkewUs: number): number {
  return Math.ceil((replaced?.expiresAtMs ?? 0) * 1000) + clockSkewUs;
}

/** The same record naming another backup: only the failover service changes membership. */
export function withBackup(record: LeaseRecord, backupHost: string): LeaseRecord {
  return { ...record, backupHost };
}

/** Whether two records are the same write (a take-over answered `unavailable` may have applied). */
export function sameWrite(a: LeaseRecord, b: LeaseRecord): boolean {
  return a.primaryHost === b.primaryHost && a.term === b.term && a.expiresAtMs === b.expiresAtMs;
}
