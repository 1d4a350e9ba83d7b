import { assert } from '../assert.js';
import type { Segment } from '../codec/messages.js';
import { MAX_SACK_BLOCKS_SENT } from '../tcp/receiver.js';
import { sackOptionBytes, TCP_IP_HEADER_BYTES } from '../tcp/header.js';
import { MTU_BYTES, serializedBytesOf, wireBytesOf } from './link-direction.js';
import { BITS_PER_BYTE, US_PER_S } from '../units.js';

/** Linux's tcp_limit_output_bytes: the most one socket keeps queued in its qdisc and NIC (TCP small queues). */
export const TCP_LIMIT_OUTPUT_BYTES = 1 << 20;
/** A data segment's bytes beyond its payload at most: headers and the SACK blocks an ACK may carry. */
const MAX_DATA_HEADER_BYTES = TCP_IP_HEADER_BYTES + sackOptionBytes(MAX_SACK_BLOCKS_SENT);

export interface LocalNicStats {
  /** Times a data segment found no room and stayed in TCP. */
  throttles: number;
}

/**
 * A local sender's own NIC, where its client link begins (the native
 * guest's, and the acker's wire side in the speculative modes). A local
 * sender is never dropped by its own queue in Linux: TCP small queues keep
 * at most TCP_LIMIT_OUTPUT_BYTES of a socket queued, and a full qdisc
 * pushes back into the socket. So a data segment goes only while it fits
 * under both that limit and the link's device queue; otherwise it stays in
 * TCP, and the sender tries again once the queue has drained to half its
 * limit (one wake-up per half queue, where Linux's handler runs on every
 * completion: the same throughput, fewer events). The first segment into
 * an empty queue always fits.
 *
 * What the link holds is bounded, in O(1) per segment, from when its
 * transmitter will be idle: every segment the sender emits goes into that
 * time as the link serializes it, so the queued IP bytes are at most the
 * wire bytes still to send plus one packet (the one in transmission counts
 * whole). The bound never reads less than the link holds, so the link never
 * drops what this let through (unless a fault slows the link down).
 */
export class LocalNic {
  readonly stats: LocalNicStats = { throttles: 0 };
  /** What data segments may fill: the device queue, at most TCP small queues' limit. */
  readonly limitBytes: number;
  readonly #usPerByte: number;
  /** When the link's transmitter finishes everything this sender put on it (fractional µs, as the link keeps it). */
  #busyUntilUs = 0;
  /** When the wake-up asked for by `admits` is due, while one is pending. */
  #wakeAtUs: number | null = null;

  constructor(
    rateBitsPerSec: number,
    /** The device queue (the link's drop-tail bound), bytes of IP packets. */
    readonly queueBytes: number,
  ) {
    assert(queueBytes > 0 && rateBitsPerSec > 0, () => `a local NIC of ${rateBitsPerSec} bit/s and ${queueBytes} B`);
    this.#usPerByte = (BITS_PER_BYTE * US_PER_S) / rateBitsPerSec;
    this.limitBytes = Math.min(TCP_LIMIT_OUTPUT_BYTES, queueBytes);
  }

  /** At least the IP bytes the link holds from this sender at `nowUs` (0 once its transmitter is idle). */
  queuedBytesAtMost(nowUs: number): number {
    return this.#busyUntilUs > nowUs ? (this.#busyUntilUs - nowUs) / this.#usPerByte + MTU_BYTES : 0;
  }

  /** Whether a data segment of `payloadBytes` fits now. */
  hasRoom(payloadBytes: number, nowUs: number): boolean {
    const queued = this.queuedBytesAtMost(nowUs);
    if (queued === 0 || queued + payloadBytes + MAX_DATA_HEADER_BYTES <= this.limitBytes) return true;
    this.stats.throttles++;
    return false;
  }

  /**
   * Whether a data segment of `payloadBytes` may go now; if not, `wakeAt`
   * is called with the time to try again, unless a wake-up is already
   * pending. The owner calls `woken` when that time comes and then lets its
   * senders try again.
   */
  admits(payloadBytes: number, nowUs: number, wakeAt: (atUs: number) => void): boolean {
    if (this.hasRoom(payloadBytes, nowUs)) return true;
    // A pending wake-up is never later than a new one: what was queued since only pushes the drain later.
    if (this.#wakeAtUs !== null) return false;
    const atUs = this.roomAtUs(nowUs);
    assert(atUs > nowUs, () => `a full local NIC that drains at ${atUs} µs, now ${nowUs} µs`);
    this.#wakeAtUs = atUs;
    wakeAt(atUs);
    return false;
  }

  /** The wake-up `admits` asked for came. */
  woken(): void {
    this.#wakeAtUs = null;
  }

  /** A segment the sender emitted, any kind: it occupies the link's transmitter as the link serializes it. */
  sent(seg: Segment, nowUs: number): void {
    this.#busyUntilUs = Math.max(nowUs, this.#busyUntilUs) + serializedBytesOf(wireBytesOf(seg)) * this.#usPerByte;
  }

  /** When a sender that found no room should try again: once at most half the limit is queued, or the queue is empty if the limit is below two packets. */
  roomAtUs(nowUs: number): number {
    const halfUs = Math.min(this.#busyUntilUs, this.#busyUntilUs - (this.limitBytes / 2 - MTU_BYTES) * this.#usPerByte);
    return Math.ceil(halfUs > nowUs ? halfUs : this.#busyUntilUs);
  }
}
