import { assert } from '../assert.js';
import type { Segment } from '../codec/messages.js';
import { MAX_SACK_BLOCKS_SENT } from '../tcp/receiver.js';
import { sackOptionBytes, TCP_IP_HEADER_BYTES } from '../tcp/header.js';
import { MTU_BYTES, serializedBytesOf, wireBytesOf } from './link-direction.js';
import { BITS_PER_BYTE, msToUs, US_PER_S } from '../units.js';
import { GSO_MAX_BYTES, type RunConfig } from '../config/run-config.js';

/** Linux's tcp_limit_output_bytes: the most one socket keeps queued in its qdisc and NIC (TCP small queues), whatever its rate. */
export const TCP_LIMIT_OUTPUT_BYTES = 1 << 20;
/** Linux's sk_pacing_shift: TCP small queues and TSO autosizing count about 1 ms (2^-10 s) of the pacing rate. */
const PACING_SHIFT = 10;
/** Linux's tcp_tso_rtt_log: each halving of the min RTT below 2^r × 512 µs adds gso_max_size >> r to a TSO packet. */
const TSO_RTT_LOG = 9;
/** Linux's tcp_min_tso_segs. */
const MIN_TSO_SEGS = 2;

/** sk_pacing_rate >> sk_pacing_shift: about 1 ms of the pacing rate, bytes. */
const pacingShiftBytes = (pacingBitsPerSec: number): number => Math.floor(pacingBitsPerSec / BITS_PER_BYTE / 2 ** PACING_SHIFT);

/**
 * The packets of one TSO packet as Linux sizes it (tcp_tso_autosize, with
 * the min-RTT term of 5.18 on): about 1 ms of the pacing rate, more for a
 * short round trip, at most 64 KiB, at least two segments.
 */
export function tsoAutosizeSegments(pacingBitsPerSec: number, mssBytes: number, minRttUs: number): number {
  assert(pacingBitsPerSec > 0 && mssBytes > 0 && minRttUs >= 0, () => `TSO packets at ${pacingBitsPerSec} bit/s, MSS ${mssBytes} B, min RTT ${minRttUs} µs`);
  let bytes = pacingShiftBytes(pacingBitsPerSec);
  const r = Math.floor(minRttUs / 2 ** TSO_RTT_LOG);
  if (r < 32) bytes += GSO_MAX_BYTES >> r;
  bytes = Math.min(bytes, GSO_MAX_BYTES);
  return Math.max(Math.floor(bytes / mssBytes), MIN_TSO_SEGS);
}

/**
 * What one socket may keep queued in its qdisc and NIC, IP bytes: Linux's
 * tcp_small_queue_check allows two of its TSO packets (2 × truesize) or
 * 1 ms of its pacing rate, whichever is more, capped at
 * tcp_limit_output_bytes. The model takes the link's rate for the pacing
 * rate (what a sender that keeps the link busy paces at), the link's round
 * trip for the min RTT, and a packet's IP bytes for its truesize. At 1 Gbit/s
 * that is about 1.1 ms of the link; at 100 Mbit/s and 2 ms, 3.4 ms; on slower
 * or shorter links the two TSO packets are longer still.
 */
export function tcpSmallQueueLimitBytes(rateBitsPerSec: number, mssBytes: number, minRttUs: number): number {
  const tsoPacketBytes = tsoAutosizeSegments(rateBitsPerSec, mssBytes, minRttUs) * (mssBytes + TCP_IP_HEADER_BYTES);
  return Math.min(TCP_LIMIT_OUTPUT_BYTES, Math.max(2 * tsoPacketBytes, pacingShiftBytes(rateBitsPerSec)));
}

export interface LocalNicOptions {
  readonly rateBitsPerSec: number;
  /** The device queue (the link's drop-tail bound), bytes of IP packets. */
  readonly queueBytes: number;
  /** The sender's MSS and the link's round trip: what Linux sizes TSO packets, and so TCP small queues, by. */
  readonly mssBytes: number;
  readonly minRttUs: number;
}

/** A data segment's bytes beyond its payload at most: headers and the SACK blocks an ACK may carry. */
const MAX_DATA_HEADER_BYTES = TCP_IP_HEADER_BYTES + sackOptionBytes(MAX_SACK_BLOCKS_SENT);
/** Whether a data segment of `payloadBytes` fits beside `queuedBytes` under `limitBytes` (the first one always does). */
const fitsUnder = (queuedBytes: number, payloadBytes: number, limitBytes: number): boolean => queuedBytes === 0 || queuedBytes + payloadBytes + MAX_DATA_HEADER_BYTES <= limitBytes;
/** Departures a socket's queue keeps before it drops the ones already gone from the front of its arrays. */
const COMPACT_AFTER = 256;

export interface LocalNicStats {
  /** Times a data segment found no room and stayed in TCP. */
  throttles: number;
}

/**
 * One socket's packets on the link, oldest first: when each leaves the
 * transmitter, and the IP bytes the socket had sent up to and including it
 * (cumulative, so when it drains to a level is a binary search: a sender
 * refused asks that once per segment).
 */
interface SocketQueue {
  readonly departUs: number[];
  readonly sentBytesThrough: number[];
  head: number;
  /** IP bytes of every packet the socket sent, and of those that have left. */
  sentBytes: number;
  departedBytes: number;
}

/** The local NIC at the head of the client link of a run (the native guest's, or the speculative acker's wire side). */
export function localNicOptionsFor(config: Pick<RunConfig, 'link' | 'tcp'>): LocalNicOptions {
  return { rateBitsPerSec: config.link.bandwidthBitsPerSec, queueBytes: config.link.queueBytes, mssBytes: config.tcp.mssBytes, minRttUs: msToUs(config.link.rttMs) };
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
  /** What one socket may keep queued (tcpSmallQueueLimitBytes). */
  readonly socketLimitBytes: number;
  readonly #usPerByte: number;
  /** When the link's transmitter finishes everything this sender put on it (fractional µs, as the link keeps it). */
  #busyUntilUs = 0;
  /** When the wake-up asked for by `admits` is due, while one is pending. */
  #wakeAtUs: number | null = null;
  readonly #sockets = new Map<number, SocketQueue>();

  /** The device queue (the link's drop-tail bound), bytes of IP packets. */
  readonly queueBytes: number;

  constructor(options: LocalNicOptions) {
    const { rateBitsPerSec, queueBytes, mssBytes, minRttUs } = options;
    assert(queueBytes > 0 && rateBitsPerSec > 0, () => `a local NIC of ${rateBitsPerSec} bit/s and ${queueBytes} B`);
    assert(mssBytes > 0 && minRttUs >= 0, () => `a local NIC for an MSS of ${mssBytes} B and a round trip of ${minRttUs} µs`);
    this.queueBytes = queueBytes;
    this.#usPerByte = (BITS_PER_BYTE * US_PER_S) / rateBitsPerSec;
    this.socketLimitBytes = tcpSmallQueueLimitBytes(rateBitsPerSec, mssBytes, minRttUs);
  }

  /** At least the IP bytes the link holds from this sender at `nowUs` (0 once its transmitter is idle). */
  queuedBytesAtMost(nowUs: number): number {
    return this.#busyUntilUs > nowUs ? (this.#busyUntilUs - nowUs) / this.#usPerByte + MTU_BYTES : 0;
  }

  /** The IP bytes of socket `connId` still on the link at `nowUs`. */
  socketQueuedBytes(connId: number, nowUs: number): number {
    const q = this.#sockets.get(connId);
    if (q === undefined) return 0;
    while (q.head < q.departUs.length && q.departUs[q.head]! <= nowUs) q.departedBytes = q.sentBytesThrough[q.head++]!;
    if (q.head > 0 && (q.head === q.departUs.length || q.head >= COMPACT_AFTER)) {
      q.departUs.splice(0, q.head);
      q.sentBytesThrough.splice(0, q.head);
      q.head = 0;
    }
    const queuedBytes = q.sentBytes - q.departedBytes;
    assert(queuedBytes >= 0 && (queuedBytes === 0) === (q.departUs.length === 0), () => `socket ${connId} counts ${queuedBytes} B queued in ${q.departUs.length} packets`);
    return queuedBytes;
  }

  /** Whether a data segment of `payloadBytes` of socket `connId` fits now. */
  hasRoom(connId: number, payloadBytes: number, nowUs: number): boolean {
    if (this.#socketFits(connId, payloadBytes, nowUs) && this.#deviceFits(payloadBytes, nowUs)) return true;
    this.stats.throttles++;
    return false;
  }

  #socketFits(connId: number, payloadBytes: number, nowUs: number): boolean {
    return fitsUnder(this.socketQueuedBytes(connId, nowUs), payloadBytes, this.socketLimitBytes);
  }

  #deviceFits(payloadBytes: number, nowUs: number): boolean {
    return fitsUnder(this.queuedBytesAtMost(nowUs), payloadBytes, this.queueBytes);
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
    const ipBytes = wireBytesOf(seg);
    this.#busyUntilUs = Math.max(nowUs, this.#busyUntilUs) + serializedBytesOf(ipBytes) * this.#usPerByte;
    let q = this.#sockets.get(seg.connId);
    if (q === undefined) {
      q = { departUs: [], sentBytesThrough: [], head: 0, sentBytes: 0, departedBytes: 0 };
      this.#sockets.set(seg.connId, q);
    }
    q.sentBytes += ipBytes;
    q.departUs.push(this.#busyUntilUs);
    q.sentBytesThrough.push(q.sentBytes);
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
    // The first packet whose departure leaves at most leftBytes queued (the last one, if leftBytes < 0).
    const sentBytesThroughAtLeast = q.sentBytes - leftBytes;
    let lo = q.head;
    let hi = q.departUs.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (q.sentBytesThrough[mid]! >= sentBytesThroughAtLeast) hi = mid;
      else lo = mid + 1;
    }
    return q.departUs[lo]!;
  }

  /** When the device's bound reads at most `leftBytes` (its transmitter idle if never before). */
  #deviceDrainedUs(leftBytes: number): number {
    const atUs = this.#busyUntilUs - (leftBytes - MTU_BYTES) * this.#usPerByte;
    return leftBytes > MTU_BYTES ? atUs : this.#busyUntilUs;
  }
}
