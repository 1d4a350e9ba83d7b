import { assert } from '../assert.js';
import type { Segment } from '../codec/messages.js';
import { Transmitter } from './transmitter.js';
import { wireBytesOf } from './link-direction.js';
import { MAX_SACK_BLOCKS_SENT } from '../tcp/receiver.js';
import { sackOptionBytes, TCP_IP_HEADER_BYTES } from '../tcp/header.js';

/** Linux's tcp_limit_output_bytes: the most one socket keeps queued in its qdisc and NIC (TCP small queues). */
export const TCP_LIMIT_OUTPUT_BYTES = 1 << 20;

export interface LocalNicStats {
  /** Times a data segment found no room and stayed in TCP. */
  throttles: number;
}

/**
 * A local sender's own NIC, where its client link begins (the native
 * guest's, and the acker's wire side in the speculative modes): a
 * transmitter at the link's rate behind the link's device queue, mirrored
 * with the link's own arithmetic (every segment the sender emits is admitted
 * here exactly when the link admits it). A local sender is never dropped by
 * its own queue in Linux: TCP small queues keep at most
 * TCP_LIMIT_OUTPUT_BYTES of a socket queued, and a full qdisc pushes back
 * into the socket. So a data segment goes only while it fits under both;
 * otherwise it stays in TCP, and the sender tries again once the queue has
 * drained to half its limit (one wake-up per half queue, where Linux's
 * handler runs on every completion: the same throughput, fewer events).
 * The first segment into an empty queue always fits.
 */
export class LocalNic {
  readonly stats: LocalNicStats = { throttles: 0 };
  readonly #transmitter: Transmitter;
  /** What data segments may fill: the device queue, at most TCP small queues' limit. */
  readonly limitBytes: number;

  constructor(
    rateBitsPerSec: number,
    /** The device queue (the link's drop-tail bound), bytes of IP packets. */
    readonly queueBytes: number,
  ) {
    assert(queueBytes > 0, () => `a local NIC queue of ${queueBytes} B`);
    this.#transmitter = new Transmitter(rateBitsPerSec);
    this.limitBytes = Math.min(TCP_LIMIT_OUTPUT_BYTES, queueBytes);
  }

  /** Whether a data segment of `payloadBytes` fits now (counted with the most SACK option bytes an ACK carries). */
  hasRoom(payloadBytes: number, nowUs: number): boolean {
    const queued = this.#transmitter.queuedBytesAt(nowUs);
    if (queued === 0 || queued + payloadBytes + TCP_IP_HEADER_BYTES + sackOptionBytes(MAX_SACK_BLOCKS_SENT) <= this.limitBytes) return true;
    this.stats.throttles++;
    return false;
  }

  /** A segment the guest emitted: queued as the link queues it (a segment the link's queue drops is not). */
  sent(seg: Segment, nowUs: number): void {
    const bytes = wireBytesOf(seg);
    if (this.#transmitter.queuedBytesAt(nowUs) + bytes > this.queueBytes) return;
    this.#transmitter.admit(bytes, nowUs);
  }

  /** When the wake-up asked for by `admits` is due, while one is pending. */
  #wakeAtUs: number | null = null;

  /**
   * Whether a data segment of `payloadBytes` may go now; if not, `wakeAt`
   * is called with the time to try again, unless an earlier wake-up is
   * already pending. The owner calls `woken` when that time comes and then
   * lets its senders try again.
   */
  admits(payloadBytes: number, nowUs: number, wakeAt: (atUs: number) => void): boolean {
    if (this.hasRoom(payloadBytes, nowUs)) return true;
    const atUs = this.roomAtUs(nowUs);
    assert(atUs > nowUs, () => `a full local NIC that drains at ${atUs} µs, now ${nowUs} µs`);
    if (this.#wakeAtUs === null || atUs < this.#wakeAtUs) {
      this.#wakeAtUs = atUs;
      wakeAt(atUs);
    }
    return false;
  }

  /** The wake-up `admits` asked for came. */
  woken(): void {
    this.#wakeAtUs = null;
  }

  /** When a sender that found no room should try again: once half the limit has drained, or the queue is empty if it holds less already (a limit below two segments). */
  roomAtUs(nowUs: number): number {
    const halfUs = this.#transmitter.drainedToUs(Math.floor(this.limitBytes / 2), nowUs);
    return halfUs > nowUs ? halfUs : this.#transmitter.drainedToUs(0, nowUs);
  }
}
