import { assert } from '../assert.js';
import type { Segment } from '../codec/messages.js';
import { MAX_SACK_BLOCKS_SENT } from '../tcp/receiver.js';
import { sackOptionBytes, TCP_IP_HEADER_BYTES } from '../tcp/header.js';
import { MTU_BYTES, serializedBytesOf, wireBytesOf } from './link-direction.js';
import { BITS_PER_BYTE, US_PER_S } from '../units.js';

/** Linux's tcp_limit_output_bytes: the most one socket keeps queued in its qdisc and NIC (TCP small queues), whatever its rate. */
export const TCP_LIMIT_OUTPUT_BYTES = 1 << 20;
/**
 * Below that, Linux's tcp_small_queue_check lets a socket queue about 1 ms
 * of its pacing rate (sk_pacing_rate >> sk_pacing_shift, shift 10), and at
 * least two packets. The model takes the link's rate for the pacing rate:
 * what a sender that keeps the link busy paces at.
 */
export const TSQ_WINDOW_US = 1000;
/** A data segment's bytes beyond its payload at most: headers and the SACK blocks an ACK may carry. */
const MAX_DATA_HEADER_BYTES = TCP_IP_HEADER_BYTES + sackOptionBytes(MAX_SACK_BLOCKS_SENT);
/** Departures a socket's queue keeps before it drops the ones already gone from the front of its arrays. */
const COMPACT_AFTER = 256;

export interface LocalNicStats {
  /** Times a data segment found no room and stayed in TCP. */
  throttles: number;
}

/** One socket's packets on the link, oldest first: when each leaves the transmitter, and its IP bytes. */
interface SocketQueue {
  readonly departUs: number[];
  readonly ipBytes: number[];
  head: number;
  queuedBytes: number;
}

/**
 * A local sender's own NIC, where its client link begins (the native
 * guest's, and the acker's wire side in the speculative modes). A local
 * sender is never dropped by its own queue in Linux: TCP small queues keep
 * each socket's share of the qdisc and NIC small (socketLimitBytes), and a
 * full qdisc pushes back into the socket. So a data segment goes only
 * while it fits under both its socket's limit and the link's device queue;
 * otherwise it stays in TCP, and the sender tries again once what stopped
 * it has drained to half (one wake-up per half limit, where Linux's handler
 * runs on every completion: the same throughput, fewer events). The first
 * segment of a socket with nothing queued fits its socket's limit, and the
 * first into an empty device fits the device. The per-socket limit is what
 * lets a second connection's segments (a response beside a bulk transfer)
 * in at once, rather than behind the bulk flow's whole share of the device.
 *
 * What the device holds is bounded, in O(1) per segment, from when its
 * transmitter will be idle: every segment the sender emits goes into that
 * time as the link serializes it, so the queued IP bytes are at most the
 * wire bytes still to send plus one packet (the one in transmission counts
 * whole). The bound never reads less than the link holds, so the link never
 * drops what this let through (unless a fault slows the link down). A
 * socket's share is counted exactly, from each of its packets' departures.
 */
export class LocalNic {
  readonly stats: LocalNicStats = { throttles: 0 };
  /** What one socket may keep queued (TCP small queues at the link's rate). */
  readonly socketLimitBytes: number;
  readonly #usPerByte: number;
  /** When the link's transmitter finishes everything this sender put on it (fractional µs, as the link keeps it). */
  #busyUntilUs = 0;
  /** When the wake-up asked for by `admits` is due, while one is pending. */
  #wakeAtUs: number | null = null;
  readonly #sockets = new Map<number, SocketQueue>();

  constructor(
    rateBitsPerSec: number,
    /** The device queue (the link's drop-tail bound), bytes of IP packets. */
    readonly queueBytes: number,
  ) {
    assert(queueBytes > 0 && rateBitsPerSec > 0, () => `a local NIC of ${rateBitsPerSec} bit/s and ${queueBytes} B`);
    this.#usPerByte = (BITS_PER_BYTE * US_PER_S) / rateBitsPerSec;
    this.socketLimitBytes = Math.min(TCP_LIMIT_OUTPUT_BYTES, Math.max(2 * MTU_BYTES, Math.floor((rateBitsPerSec / BITS_PER_BYTE) * (TSQ_WINDOW_US / US_PER_S))));
  }

  /** At least the IP bytes the link holds from this sender at `nowUs` (0 once its transmitter is idle). */
  queuedBytesAtMost(nowUs: number): number {
    return this.#busyUntilUs > nowUs ? (this.#busyUntilUs - nowUs) / this.#usPerByte + MTU_BYTES : 0;
  }

  /** The IP bytes of socket `connId` still on the link at `nowUs`. */
  socketQueuedBytes(connId: number, nowUs: number): number {
    const q = this.#sockets.get(connId);
    if (q === undefined) return 0;
    while (q.head < q.departUs.length && q.departUs[q.head]! <= nowUs) q.queuedBytes -= q.ipBytes[q.head++]!;
    if (q.head === q.departUs.length || q.head >= COMPACT_AFTER) {
      q.departUs.splice(0, q.head);
      q.ipBytes.splice(0, q.head);
      q.head = 0;
    }
    assert(q.queuedBytes >= 0 && (q.queuedBytes === 0) === (q.departUs.length === 0), () => `socket ${connId} counts ${q.queuedBytes} B queued in ${q.departUs.length} packets`);
    return q.queuedBytes;
  }

  /** Whether a data segment of `payloadBytes` of socket `connId` fits now. */
  hasRoom(connId: number, payloadBytes: number, nowUs: number): boolean {
    if (this.#socketFits(connId, payloadBytes, nowUs) && this.#deviceFits(payloadBytes, nowUs)) return true;
    this.stats.throttles++;
    return false;
  }

  #socketFits(connId: number, payloadBytes: number, nowUs: number): boolean {
    const queued = this.socketQueuedBytes(connId, nowUs);
    return queued === 0 || queued + payloadBytes + MAX_DATA_HEADER_BYTES <= this.socketLimitBytes;
  }

  #deviceFits(payloadBytes: number, nowUs: number): boolean {
    const queued = this.queuedBytesAtMost(nowUs);
    return queued === 0 || queued + payloadBytes + MAX_DATA_HEADER_BYTES <= this.queueBytes;
  }

  /**
   * Whether a data segment of `payloadBytes` of socket `connId` may go now;
   * if not, `wakeAt` is called with the time to try again, unless a wake-up
   * at or before it is already pending (then every sender tries again at
   * that one, and a sender still refused asks anew). The owner calls
   * `woken` when that time comes and then lets its senders try again.
   */
  admits(connId: number, payloadBytes: number, nowUs: number, wakeAt: (atUs: number) => void): boolean {
    if (this.hasRoom(connId, payloadBytes, nowUs)) return true;
    const atUs = this.roomAtUs(connId, payloadBytes, nowUs);
    assert(atUs > nowUs, () => `a full local NIC that drains at ${atUs} µs, now ${nowUs} µs`);
    if (this.#wakeAtUs !== null && this.#wakeAtUs <= atUs) return false;
    this.#wakeAtUs = atUs;
    wakeAt(atUs);
    return false;
  }

  /** The wake-up `admits` asked for came. */
  woken(): void {
    this.#wakeAtUs = null;
  }

  /** A segment the sender emitted, any kind: it occupies the link's transmitter as the link serializes it, and counts in its socket's share until it has left. */
  sent(seg: Segment, nowUs: number): void {
    this.#busyUntilUs = Math.max(nowUs, this.#busyUntilUs) + serializedBytesOf(wireBytesOf(seg)) * this.#usPerByte;
    let q = this.#sockets.get(seg.connId);
    if (q === undefined) {
      q = { departUs: [], ipBytes: [], head: 0, queuedBytes: 0 };
      this.#sockets.set(seg.connId, q);
    }
    const ipBytes = wireBytesOf(seg);
    q.departUs.push(this.#busyUntilUs);
    q.ipBytes.push(ipBytes);
    q.queuedBytes += ipBytes;
  }

  /**
   * When a sender of socket `connId` that found no room for `payloadBytes`
   * should try again: once whatever stopped it (its socket's share, the
   * device, or both) has drained to half its limit, or emptied if half a
   * limit would not take the segment.
   */
  roomAtUs(connId: number, payloadBytes: number, nowUs: number): number {
    const need = payloadBytes + MAX_DATA_HEADER_BYTES;
    let atUs = nowUs;
    if (!this.#socketFits(connId, payloadBytes, nowUs)) atUs = Math.max(atUs, this.#socketDrainedUs(connId, Math.min(this.socketLimitBytes / 2, this.socketLimitBytes - need)));
    if (!this.#deviceFits(payloadBytes, nowUs)) atUs = Math.max(atUs, this.#deviceDrainedUs(Math.min(this.queueBytes / 2, this.queueBytes - need)));
    return Math.ceil(atUs);
  }

  /** When socket `connId` has at most `leftBytes` queued (its last departure if never before). */
  #socketDrainedUs(connId: number, leftBytes: number): number {
    const q = this.#sockets.get(connId);
    assert(q !== undefined && q.head < q.departUs.length, () => `socket ${connId} drains with nothing queued`);
    let queued = q.queuedBytes;
    for (let i = q.head; i < q.departUs.length; i++) {
      queued -= q.ipBytes[i]!;
      if (queued <= leftBytes) return q.departUs[i]!;
    }
    return q.departUs[q.departUs.length - 1]!;
  }

  /** When the device's bound reads at most `leftBytes` (its transmitter idle if never before). */
  #deviceDrainedUs(leftBytes: number): number {
    const atUs = this.#busyUntilUs - (leftBytes - MTU_BYTES) * this.#usPerByte;
    return leftBytes > MTU_BYTES ? atUs : this.#busyUntilUs;
  }
}
