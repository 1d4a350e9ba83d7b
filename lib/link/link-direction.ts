import { assert } from '../assert.js';
import { MAX_CONNECTIONS, type WireMessage } from '../codec/messages.js';
import { Rng } from '../rng.js';
import { sackOptionBytes, TCP_IP_HEADER_BYTES } from '../tcp/header.js';
import { DROPPED, type Hop } from '../runtime/sim/sim-runtime.js';
import type { RunConfig } from '../config/run-config.js';
import { BITS_PER_BYTE, msToUs, US_PER_S } from '../units.js';

export { TCP_IP_HEADER_BYTES };
/** Framing of a control or checkpoint message on the replication link (headers, protobuf fields). */
export const CONTROL_HEADER_BYTES = 96;

/** An Ethernet frame's bytes around its IP packet on the wire: preamble and SFD (8), header (14), FCS (4), inter-frame gap (12). */
export const ETHERNET_FRAMING_BYTES = 38;
/** The IP packet a frame carries at most. */
export const MTU_BYTES = 1500;

/** Bytes the transmitter spends on `packetBytes`: one frame per MTU, each with its framing (MSS 1448 with timestamps: 94.1% of the line rate is payload). */
export function serializedBytesOf(packetBytes: number): number {
  return packetBytes + Math.max(1, Math.ceil(packetBytes / MTU_BYTES)) * ETHERNET_FRAMING_BYTES;
}

/** Bytes a message occupies in a link's queue: its IP packets. */
export function wireBytesOf(msg: WireMessage): number {
  switch (msg.type) {
    case 'segment':
      return msg.payload.length + TCP_IP_HEADER_BYTES + sackOptionBytes(msg.sackBlocks.length / 2);
    case 'checkpointChunk':
      return msg.data.length + CONTROL_HEADER_BYTES;
    default:
      return CONTROL_HEADER_BYTES;
  }
}

export interface LinkOptions {
  readonly rateBitsPerSec: number;
  /** One-way propagation delay. */
  readonly delayUs: number;
  /** Drop-tail bound on bytes queued or in transmission; a packet that would exceed it is dropped. */
  readonly queueBytes: number;
  /** Independent per-packet loss probability on the wire. */
  readonly lossRate: number;
  /** Uniform extra delay in [0, jitterUs); packets are never reordered by it. */
  readonly jitterUs: number;
  /**
   * Also drop a packet that would wait longer than this before its transmission
   * starts: a queue bounded in time at the current rate. Queued packets keep the
   * rate they were accepted at, so without it a slow spell could leave a backlog
   * that drains at the slow rate long after the link is fast again.
   */
  readonly maxQueueDelayUs?: number;
}

export interface LinkStats {
  packets: number;
  wireBytes: number;
  queueDrops: number;
  randomLosses: number;
  maxQueuedBytes: number;
}

/**
 * One direction of an emulated link: a FIFO transmitter at a fixed rate behind
 * a drop-tail queue (of IP packets' bytes), sending Ethernet frames, then
 * propagation delay, random loss and jitter. Departure
 * times are computed when a packet enters, so a packet costs one event.
 */
export class LinkDirection implements Hop {
  readonly stats: LinkStats = { packets: 0, wireBytes: 0, queueDrops: 0, randomLosses: 0, maxQueuedBytes: 0 };
  #usPerByte: number;
  /** When the transmitter finishes the last accepted packet (fractional µs, so no drift). */
  #busyUntilUs = 0;
  #lastArrivalUs = 0;
  /** Finish times and sizes of packets still queued or in transmission. */
  readonly #finishUs: number[] = [];
  readonly #sizes: number[] = [];
  #head = 0;
  #queuedBytes = 0;

  constructor(
    readonly options: LinkOptions,
    readonly rng: Rng,
  ) {
    assert(options.rateBitsPerSec > 0, 'link rate must be positive');
    assert(options.queueBytes > 0, 'link queue must hold something');
    this.#usPerByte = (BITS_PER_BYTE * US_PER_S) / options.rateBitsPerSec;
  }

  /** Changes the rate for packets accepted from now on (a degraded or restored link); queued ones keep their times. */
  setRate(rateBitsPerSec: number): void {
    assert(rateBitsPerSec > 0, () => `link rate ${rateBitsPerSec} bit/s`);
    this.#usPerByte = (BITS_PER_BYTE * US_PER_S) / rateBitsPerSec;
  }

  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  transit(msg: WireMessage, nowUs: number): number {
    const wireBytes = wireBytesOf(msg);
    this.#drainDeparted(nowUs);
    const startUs = Math.max(nowUs, this.#busyUntilUs);
    if (this.#queuedBytes + wireBytes > this.options.queueBytes || startUs - nowUs > (this.options.maxQueueDelayUs ?? Infinity)) {
      this.stats.queueDrops++;
      return DROPPED;
    }
    const finishUs = startUs + serializedBytesOf(wireBytes) * this.#usPerByte;
    this.#busyUntilUs = finishUs;
    this.#finishUs.push(finishUs);
    this.#sizes.push(wireBytes);
    this.#queuedBytes += wireBytes;
    if (this.#queuedBytes > this.stats.maxQueuedBytes) this.stats.maxQueuedBytes = this.#queuedBytes;
    this.stats.packets++;
    this.stats.wireBytes += wireBytes;
    if (this.rng.chance(this.options.lossRate)) {
      this.stats.randomLosses++;
      return DROPPED;
    }
    const jitterUs = this.options.jitterUs > 0 ? this.rng.next() * this.options.jitterUs : 0;
    const arrivalUs = Math.max(Math.ceil(finishUs + this.options.delayUs + jitterUs), this.#lastArrivalUs);
    this.#lastArrivalUs = arrivalUs;
    return arrivalUs;
  }

  #drainDeparted(nowUs: number): void {
    const finish = this.#finishUs;
    while (this.#head < finish.length && finish[this.#head]! <= nowUs) {
      this.#queuedBytes -= this.#sizes[this.#head]!;
      this.#head++;
    }
    if (this.#head > 4096 && this.#head * 2 > finish.length) {
      finish.splice(0, this.#head);
      this.#sizes.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

/** Down: guest → client (wire.out). Up: client → guest (wire.in). */
export type LinkSide = 'down' | 'up';

/**
 * One direction of a run's client link, the same under every runtime: the
 * simulator routes wire subjects through it, a NATS process applies it to
 * what it receives. Its randomness is the run seed's `link.<side>` stream.
 * Under remus with a paced plug the netbuffer's plug is the down
 * direction's queue (sch_plug as the NIC's root qdisc): everything on it
 * was admitted under the plug limit when it was held, and the NIC sends it
 * at line rate, so no second bound drops it. Otherwise (a burst release, or
 * the guest's or acker's own output) the link's drop-tail queue is the
 * device queue it meets.
 */
export function clientLinkFor(config: Pick<RunConfig, 'mode' | 'link' | 'seed' | 'buffers'>, side: LinkSide): LinkDirection {
  const link = config.link;
  const plugIsTheQueue = plugIsTheQueueOf(config, side);
  return new LinkDirection(
    { rateBitsPerSec: link.bandwidthBitsPerSec, delayUs: msToUs(link.rttMs / 2), queueBytes: plugIsTheQueue ? Infinity : link.queueBytes, lossRate: link.lossRate, jitterUs: msToUs(link.jitterMs) },
    new Rng(config.seed).fork(`link.${side}`),
  );
}

function plugIsTheQueueOf(config: Pick<RunConfig, 'mode' | 'buffers'>, side: LinkSide): boolean {
  return side === 'down' && config.mode === 'remus' && config.buffers.plugRelease === 'paced';
}

/** LinkGate's byte bound on a client link is this many times the most the link holds in normal operation. */
export const CLIENT_LINK_GATE_HEADROOM = 4;

/**
 * Bytes (wireBytesOf) a NATS process may hold of one client-link direction
 * (LinkGate.maxPendingBytes): CLIENT_LINK_GATE_HEADROOM times what the link
 * holds at most in normal operation, so that only a hostile publisher meets
 * it. The link holds what is in propagation (the one-way delay and the most
 * jitter, at line rate) and what waits in its queue: its drop-tail queue, or,
 * with the plug as the queue, what releases put there. A release carries at
 * most what the netbuffer holds (the plug's bound, twice it with
 * backpressure), and releases pile up only with data the guest's TCP has
 * not had acknowledged: a send buffer per connection at most. The headroom
 * covers retransmissions that repeat some of it. The simulator does not use
 * it: its link is as clientLinkFor builds it.
 */
export function clientLinkGateBytesFor(config: Pick<RunConfig, 'mode' | 'link' | 'buffers' | 'tcp'>, side: LinkSide): number {
  const link = config.link;
  const inFlightBytes = (link.bandwidthBitsPerSec / BITS_PER_BYTE) * (msToUs(link.rttMs / 2 + link.jitterMs) / US_PER_S);
  const queuedBytes = plugIsTheQueueOf(config, side) ? 2 * config.buffers.heldBytesMax + MAX_CONNECTIONS * config.tcp.sndBufBytes : link.queueBytes;
  return Math.ceil(CLIENT_LINK_GATE_HEADROOM * (inFlightBytes + queuedBytes));
}

/** Replication link queue: checkpoints are not dropped on it for its size, only delayed. */
const REPLICATION_QUEUE_BYTES = 1 << 30;
/**
 * ...but for time: a chunk that would wait more than a second (a link slowed
 * down by a fault) is dropped, and the checkpointer's ack timeout recovers it.
 * This bounds the backlog a slow spell leaves behind.
 */
const REPLICATION_QUEUE_DELAY_US = 1_000_000;

/**
 * Bytes a NATS process may hold of one replication-link direction
 * (LinkGate.maxPendingBytes): what the link holds at most, its line rate
 * over the longest a chunk waits in its queue plus the one-way delay,
 * CLIENT_LINK_GATE_HEADROOM times over. The hop drops what would wait
 * longer, so only a hostile publisher meets this bound.
 */
export function replicationLinkGateBytesFor(link: { readonly bandwidthBitsPerSec: number; readonly rttMs: number }): number {
  const heldUs = REPLICATION_QUEUE_DELAY_US + msToUs(link.rttMs / 2);
  return Math.ceil(CLIENT_LINK_GATE_HEADROOM * (link.bandwidthBitsPerSec / BITS_PER_BYTE) * (heldUs / US_PER_S));
}

/**
 * One direction of the replication link between primary and backup hosts
 * (its own NIC, as in Remus): 'down' carries checkpoints to the backup, 'up'
 * its acknowledgements. Both runtimes build it here, from the same seed.
 */
export function replicationLinkFor(link: { readonly bandwidthBitsPerSec: number; readonly rttMs: number }, seed: number, side: LinkSide): LinkDirection {
  return new LinkDirection(
    { rateBitsPerSec: link.bandwidthBitsPerSec, delayUs: msToUs(link.rttMs / 2), queueBytes: REPLICATION_QUEUE_BYTES, maxQueueDelayUs: REPLICATION_QUEUE_DELAY_US, lossRate: 0, jitterUs: 0 },
    new Rng(seed).fork(`replication.${side}`),
  );
}
