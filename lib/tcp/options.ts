import { z } from 'zod';
import { KiB, MiB } from '../units.js';

/**
 * TCP defaults follow Linux (net.ipv4.tcp_* sysctls of a 6.x kernel); each is
 * documented with its source in docs/defaults.md.
 */
export const tcpOptionsSchema = z.object({
  /** 1500-byte MTU − 20 IP − 20 TCP − 12 timestamp option. */
  mssBytes: z.number().int().min(64).max(65_495).default(1448),
  /** tcp_wmem max. */
  sndBufBytes: z.number().int().min(2 * KiB).default(4 * MiB),
  /** tcp_rmem max. */
  rcvBufBytes: z.number().int().min(2 * KiB).default(6 * MiB),
  /** RFC 7323 window scaling (tcp_window_scaling=1). */
  windowScaling: z.boolean().default(true),
  /** RFC 6928 initial window, in segments. */
  initialWindowSegments: z.number().int().min(1).max(100).default(10),
  /** racc is the guest's replication-aware variant; the spec-racc mode selects it. */
  congestionControl: z.enum(['newreno', 'cubic', 'racc']).default('newreno'),
  delayedAck: z.boolean().default(true),
  /** Linux TCP_DELACK_MIN. */
  delayedAckUs: z.number().int().min(1).default(40_000),
  /** Linux TCP_RTO_MIN (RFC 6298 suggests 1 s; Linux uses 200 ms). */
  minRtoUs: z.number().int().min(1_000).default(200_000),
  /** RFC 6298 §2.1. */
  initialRtoUs: z.number().int().min(1_000).default(1_000_000),
  /** Linux TCP_RTO_MAX. */
  maxRtoUs: z.number().int().min(1_000).default(120_000_000),
  /** tcp_slow_start_after_idle=1 (RFC 5681 §4.1). */
  slowStartAfterIdle: z.boolean().default(true),
  /** Nagle's algorithm; TCP_NODELAY turns it off. */
  nagle: z.boolean().default(true),
});

export type TcpOptions = z.infer<typeof tcpOptionsSchema>;
export const defaultTcpOptions = (overrides: Partial<TcpOptions> = {}): TcpOptions => tcpOptionsSchema.parse(overrides);
