import { z } from 'zod';

/**
 * Timing of leases. The release window of one renewal is
 * `leaseDurationMs - clockSkewBoundMs - safetyMs` (see README.md); a holder
 * renewing every `renewIntervalMs` releases without a gap as long as a
 * renewal round trip takes less than the window minus the interval.
 */
export const leaseOptionsSchema = z
  .object({
    /** How far past the writer's wall time at send a record's `expiresAtMs` lies. */
    leaseDurationMs: z.number().int().positive().default(3_000),
    /** How often a holder renews. */
    renewIntervalMs: z.number().int().positive().default(1_000),
    /** Bound on the difference between any two hosts' wall clocks (each within half of it from true time). */
    clockSkewBoundMs: z.number().int().min(0).default(250),
    /**
     * Covers monotonic clock drift over one lease (≥ ρ·leaseDurationMs for
     * drift rate ρ) and the time between a `canRelease` check and the bytes
     * leaving the host.
     */
    safetyMs: z.number().int().min(0).default(100),
  })
  .refine((o) => o.renewIntervalMs < o.leaseDurationMs - o.clockSkewBoundMs - o.safetyMs, {
    message: 'renewIntervalMs must be shorter than the release window leaseDurationMs - clockSkewBoundMs - safetyMs',
    path: ['renewIntervalMs'],
  });

export type LeaseOptions = z.infer<typeof leaseOptionsSchema>;
export type LeaseOptionsInput = z.input<typeof leaseOptionsSchema>;
