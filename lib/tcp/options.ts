import { z } from 'zod';
import { KiB, MiB } from '../units.js';
import { MAX_SEGMENT_PAYLOAD_BYTES } from './header.js';

/**
 * TCP defaults follow Linux (net.ipv4.tcp_* sysctls of a 6.x kernel); each is
 * documented with its source in docs/defaults.md.
 */
export const tcpOptionsSchema = z.strictObject({
  mssBytes: z.number().int().min(64).max(MAX_SEGMENT_PAYLOAD_BYTES).default(1448).describe('Maximum segment size, in bytes: 1500-byte MTU − 20 IP − 20 TCP − 12 timestamp option.'),
  sndBufBytes: z.number().int().min(2 * KiB).default(4 * MiB).describe('Socket send buffer, in bytes (Linux tcp_wmem max).'),
  sndBufAutotune: z.boolean().default(true).describe('Grow the send buffer with the congestion window as Linux does (the default; tcp_sndbuf_expand: room for 2 × max(10, cwnd) segments of memory from establishment, more whenever an ACK leaves the window not full, never less) up to sndBufBytes. Off: all of sndBufBytes from the start, as an application that sets SO_SNDBUF.'),
  rcvBufBytes: z.number().int().min(2 * KiB).default(6 * MiB).describe('Socket receive buffer, in bytes (Linux tcp_rmem max); its free space is the advertised window.'),
  windowScaling: z.boolean().default(true).describe('RFC 7323 window scaling (Linux tcp_window_scaling=1); without it the window is 64 KiB at most.'),
  initialWindowSegments: z.number().int().min(1).max(100).default(10).describe('Initial congestion window, in segments (RFC 6928).'),
  congestionControl: z.enum(['newreno', 'cubic', 'racc']).default('cubic').describe('cubic (the Linux default, with HyStart), newreno (the Reno-style AIMD of the analytic models), or racc, the replication-aware variant of the guest that the spec-racc mode selects.'),
  sack: z.boolean().default(true).describe('Selective acknowledgements (RFC 2018), with loss recovery by RFC 6675 and PRR (RFC 6937) (Linux tcp_sack=1); used when both ends offer it.'),
  tlp: z.boolean().default(true).describe('Tail loss probes (RACK-TLP, RFC 8985 §7; Linux tcp_early_retrans=3): with SACK, an unacknowledged tail is probed after about two round trips instead of waiting for the retransmission timer.'),
  hystart: z.boolean().default(true).describe('CUBIC leaves slow start by HyStart, ACK trains and delay increase (Linux tcp_cubic hystart=1).'),
  delayedAck: z.boolean().default(true).describe('Delayed ACKs: acknowledge every second full-sized segment, else after delayedAckUs (RFC 5681 §4.2).'),
  delayedAckUs: z.number().int().min(1).default(40_000).describe('Delayed-ACK timeout, in µs (Linux TCP_DELACK_MIN).'),
  rtoBackoff: z.boolean().default(true).describe('Double the retransmission timeout on each expiry (RFC 6298 §5.5); the RACC guest turns it off for its host-local path.'),
  minRtoUs: z.number().int().min(1_000).default(200_000).describe('Lower bound of the retransmission timeout, in µs (Linux TCP_RTO_MIN; RFC 6298 suggests 1 s).'),
  initialRtoUs: z.number().int().min(1_000).default(1_000_000).describe('Retransmission timeout before the first RTT sample, in µs (RFC 6298 §2.1).'),
  maxRtoUs: z.number().int().min(1_000).default(120_000_000).describe('Upper bound of the retransmission timeout, in µs (Linux TCP_RTO_MAX).'),
  slowStartAfterIdle: z.boolean().default(true).describe('Restart slow start after an idle RTO (Linux tcp_slow_start_after_idle=1, RFC 5681 §4.1).'),
  nagle: z.boolean().default(true).describe('Nagle algorithm; TCP_NODELAY turns it off (the rr server sets it).'),
});

export type TcpOptions = z.infer<typeof tcpOptionsSchema>;
export const defaultTcpOptions = (overrides: Partial<TcpOptions> = {}): TcpOptions => tcpOptionsSchema.parse(overrides);
