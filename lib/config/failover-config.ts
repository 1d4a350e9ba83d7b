import { z } from 'zod';

/** Failure detection, leases and promotion (replicated modes). */
export const failoverConfigSchema = z.strictObject({
  heartbeatIntervalMs: z.number().positive().max(10_000).default(10).describe('Interval of host heartbeats and of the failover service\'s checks, ms'),
  missCount: z.number().int().min(1).max(100).default(3).describe('Heartbeats missed in a row before a host is declared silent'),
  leaseDurationMs: z.number().positive().max(60_000).default(30).describe('How long a primary\'s lease lasts after each renewal, ms'),
  leaseSafetyMs: z.number().min(0).default(5).describe('A primary stops releasing output this long before its lease expires, ms'),
  clockSkewMs: z.number().min(0).default(1).describe('Bound on clock disagreement between hosts and the lease store, ms'),
  leaseStoreLatencyMs: z.number().min(0).default(0.5).describe('Round trip to the lease store, ms'),
  restoreFixedMs: z.number().min(0).default(2).describe('Fixed cost of starting the guest from the backup image, ms'),
  restoreBytesPerSec: z.number().positive().default(4e9).describe('Speed of loading the backup image into the new guest, bytes/s'),
  statusIntervalMs: z.number().positive().max(10_000).optional().describe('How often each service reports to its host agent when it has nothing new to say (a report that changes something goes at once), ms; default: the heartbeat interval'),
  serviceMissCount: z.number().int().min(2).max(1_000).default(10).describe('Status reports (one per status interval) a service misses in a row before its host agent takes it for dead: a dead process, not a lossy bus or a busy moment'),
  joinStallMs: z.number().positive().max(3_600_000).default(30_000).describe('A re-protection whose new backup shows no progress for this long (it never takes its join, or applies no epoch after it) is given up and started again with the next spare, ms: a join lost on the way or stuck on its host does not leave the VM unprotected for good'),
  serviceStartupMs: z.number().positive().max(600_000).default(5_000).describe('A host agent takes a service it has never heard from for dead after this long (processes start at their own pace), ms'),
});
export type FailoverConfig = z.infer<typeof failoverConfigSchema>;

/**
 * The interval of a service's periodic status report. It only says the
 * service lives (what changes is reported when it changes), so where
 * reports cost (one message per service per interval, per VM, over a real
 * bus) it can be much longer than the heartbeat, whose interval bounds
 * failover time.
 */
export function statusIntervalMs(f: FailoverConfig): number {
  return f.statusIntervalMs ?? f.heartbeatIntervalMs;
}

/** Clock rate errors beyond this are not clocks (the simulator refuses them). */
export const MAX_CLOCK_DRIFT_PPM = 100_000;

/** How one machine's clock differs from true time in the simulator. */
export const clockSkewSchema = z.strictObject({
  node: z.string().min(1).describe("A host name, 'failover' or 'client'"),
  offsetUs: z.number().int().min(0).max(60_000_000).describe('Added to true time, µs (never negative)'),
  driftPpm: z.number().min(-MAX_CLOCK_DRIFT_PPM).max(MAX_CLOCK_DRIFT_PPM).describe('Rate error, parts per million (+100: 100 µs/s fast)'),
});
export type ClockSkew = z.infer<typeof clockSkewSchema>;

/** Faults scheduled into one run. */
export const faultsConfigSchema = z.strictObject({
  crashPrimaryAtMs: z.number().positive().nullable().default(null).describe('Crash the primary host (all its services) at this simulated time, ms; null for none'),
  clocks: z.array(clockSkewSchema).max(64).default([]).describe('Simulator only: machines whose clocks run off true time (offset and drift); every other clock is exact'),
});
export type FaultsConfig = z.infer<typeof faultsConfigSchema>;
