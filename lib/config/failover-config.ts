import { z } from 'zod';

/** Failure detection, leases and promotion (replicated modes). */
export const failoverConfigSchema = z.object({
  heartbeatIntervalMs: z.number().positive().max(10_000).default(10).describe('Interval of host heartbeats and of the failover service\'s checks, ms'),
  missCount: z.number().int().min(1).max(100).default(3).describe('Heartbeats missed in a row before a host is declared silent'),
  leaseDurationMs: z.number().positive().max(60_000).default(30).describe('How long a primary\'s lease lasts after each renewal, ms'),
  leaseSafetyMs: z.number().min(0).default(5).describe('A primary stops releasing output this long before its lease expires, ms'),
  clockSkewMs: z.number().min(0).default(1).describe('Bound on clock disagreement between hosts and the lease store, ms'),
  leaseStoreLatencyMs: z.number().min(0).default(0.5).describe('Round trip to the lease store, ms'),
  restoreFixedMs: z.number().min(0).default(2).describe('Fixed cost of starting the guest from the backup image, ms'),
  restoreBytesPerSec: z.number().positive().default(4e9).describe('Speed of loading the backup image into the new guest, bytes/s'),
});
export type FailoverConfig = z.infer<typeof failoverConfigSchema>;

/** Faults scheduled into one run. */
export const faultsConfigSchema = z.object({
  crashPrimaryAtMs: z.number().positive().nullable().default(null).describe('Crash the primary host (all its services) at this simulated time, ms; null for none'),
});
export type FaultsConfig = z.infer<typeof faultsConfigSchema>;
