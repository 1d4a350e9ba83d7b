import { z } from 'zod';

/** Where a NATS client connects when neither a flag nor NATS_URL says otherwise. */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

export const natsConnectionOptionsSchema = z.object({
  /** One URL or several separated by commas; NATS_URL, then DEFAULT_NATS_URL, when absent. */
  servers: z.string().min(1).default(() => process.env.NATS_URL || DEFAULT_NATS_URL),
  /** Connection name, as the server's monitoring shows it. */
  name: z.string().min(1).default('specula'),
  /** Reconnect after losing an established connection (the first connect never retries). */
  reconnect: z.boolean().default(true),
  /** Reconnect attempts per server before giving up; -1 retries forever. */
  maxReconnectAttempts: z.number().int().min(-1).default(10),
  reconnectTimeWaitMs: z.number().int().min(0).default(1_000),
  /** How long the first connect may take before it fails. */
  connectTimeoutMs: z.number().int().positive().default(5_000),
});

export type NatsConnectionOptionsInput = z.input<typeof natsConnectionOptionsSchema>;
export type NatsConnectionOptions = z.infer<typeof natsConnectionOptionsSchema>;

/** Bounds of a shell; each limit says what happens when it is reached. */
export const natsShellLimitsSchema = z.object({
  /**
   * Messages held by an emulated link (queued, in transmission or in
   * propagation). The link's own drop-tail queue normally bounds this; beyond
   * it a message is dropped and counted (the gate's `overflowDrops`).
   */
  maxPendingDeliveries: z.number().int().positive().default(100_000),
  /**
   * Bytes (IP packets, wireBytesOf) held by an emulated link that brings no
   * byte bound of its own, when its service names none (InboundLink.maxPendingBytes: the client links name one).
   * 2 GiB: twice the replication link's 1 GiB queue, the most any link's own
   * queue lets it hold, so that only a hostile publisher gets here; beyond it
   * a message is dropped and counted (`overflowByteDrops`, in `overflowDrops`).
   */
  maxPendingDeliveryBytes: z.number().int().positive().default(2 * 1024 ** 3),
  /**
   * Lease-store calls running at once. The failover core waits for each
   * answer before it asks again, so this only bites when the store hangs;
   * beyond it an op is answered `unavailable` at once (`leaseRefused`).
   */
  maxLeaseOpsInFlight: z.number().int().positive().default(16),
  /**
   * A lease op the store has not answered by then is answered `unavailable`
   * (outcome unknown), so a hung store cannot leave a core waiting forever.
   * Above the KV store's own request timeout (2 s), which normally answers first.
   */
  leaseOpTimeoutMs: z.number().int().positive().default(5_000),
});
export type NatsShellLimits = z.infer<typeof natsShellLimitsSchema>;
