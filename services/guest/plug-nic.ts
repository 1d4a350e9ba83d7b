import { assert } from '../../lib/assert.js';
import type { Segment } from '../../lib/codec/messages.js';
import { plugBytesOf } from '../../lib/tcp/header.js';

export interface PlugNicStats {
  /** Segments that waited in the NIC for room in the plug. */
  segmentsQueued: number;
  /** Segments dropped because the NIC's own queue was full too (TCP recovers them). */
  queueDrops: number;
  maxQueuedSegments: number;
  /** Commits of an epoch committed already (the checkpointer repeats each commit), taken as no-ops. */
  staleCommits: number;
}

/**
 * The guest's NIC in front of a plug that pushes back (remus with
 * `buffers.plugFull: backpressure`): a segment goes to the plug only while
 * the output of uncommitted epochs leaves it room under the plug's limit;
 * otherwise it waits here, in order, and goes once a commit has freed the
 * room, in the epoch then running: it reaches the plug after that epoch's
 * marker, as a packet that waited in a VM's ring does under sch_plug, so it
 * is held until that epoch commits. The plug counts a segment as the
 * netbuffer does (payload + TCP/IP headers). The queue is bounded: beyond
 * it a segment is dropped and counted, as a full device ring drops.
 */
export class PlugNic {
  readonly stats: PlugNicStats = { segmentsQueued: 0, queueDrops: 0, maxQueuedSegments: 0, staleCommits: 0 };
  /** Bytes sent to the plug in epochs not yet committed, in all and per epoch (a few epochs: those in flight). */
  #heldBytes = 0;
  readonly #heldByEpoch = new Map<number, number>();
  #committedEpoch = 0;
  readonly #queue: Segment[] = [];

  constructor(
    readonly limitBytes: number,
    readonly maxQueuedSegments: number,
  ) {
    assert(limitBytes > 0 && maxQueuedSegments > 0, () => `a plug NIC of ${limitBytes} B and ${maxQueuedSegments} segments`);
  }

  get heldBytes(): number {
    return this.#heldBytes;
  }
  get queuedSegments(): number {
    return this.#queue.length;
  }

  /** A segment the guest's TCP transmitted: to the plug (`send`) if it fits behind what waits, else it waits. */
  transmit(seg: Segment, send: (seg: Segment) => void): void {
    if (this.#queue.length === 0 && this.#fits(seg)) {
      this.#admit(seg, send);
      return;
    }
    if (this.#queue.length >= this.maxQueuedSegments) {
      this.stats.queueDrops++;
      return;
    }
    this.#queue.push(seg);
    this.stats.segmentsQueued++;
    if (this.#queue.length > this.stats.maxQueuedSegments) this.stats.maxQueuedSegments = this.#queue.length;
  }

  /** The checkpointer committed `epoch`, during `runningEpoch`: the plug let out everything up to it; what waits goes while it fits. */
  committed(epoch: number, runningEpoch: number, send: (seg: Segment) => void): void {
    if (epoch <= this.#committedEpoch) {
      this.stats.staleCommits++;
      return;
    }
    this.#committedEpoch = epoch;
    for (const [e, bytes] of this.#heldByEpoch) {
      if (e > epoch) continue;
      this.#heldBytes -= bytes;
      this.#heldByEpoch.delete(e);
    }
    assert(this.#heldBytes >= 0, () => `the plug NIC counts ${this.#heldBytes} B held`);
    while (this.#queue.length > 0 && this.#fits(this.#queue[0]!)) {
      const waited = this.#queue.shift()!;
      this.#admit(waited.epoch === runningEpoch ? waited : { ...waited, epoch: runningEpoch }, send);
    }
  }

  /** An empty plug takes any segment, so that one larger than the limit cannot wait for ever. */
  #fits(seg: Segment): boolean {
    return this.#heldBytes === 0 || this.#heldBytes + plugBytesOf(seg) <= this.limitBytes;
  }

  #admit(seg: Segment, send: (seg: Segment) => void): void {
    // A segment of a committed epoch leaves the plug at once: it holds no room.
    if (seg.epoch > this.#committedEpoch) {
      const bytes = plugBytesOf(seg);
      this.#heldBytes += bytes;
      this.#heldByEpoch.set(seg.epoch, (this.#heldByEpoch.get(seg.epoch) ?? 0) + bytes);
    }
    send(seg);
  }
}
