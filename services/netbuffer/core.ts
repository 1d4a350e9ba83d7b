import { assert } from '../../lib/assert.js';
import type { Segment } from '../../lib/codec/messages.js';
import type { Core, Effect, Input } from '../../lib/runtime/types.js';
import { TCP_IP_HEADER_BYTES } from '../../lib/tcp/header.js';

export interface NetbufferOptions {
  readonly vmId: string;
  /** The guest's segments. */
  readonly txSubject: string;
  readonly commitSubject: string;
  /** Released output goes here (the wire). */
  readonly outSubject: string;
  /** Bound on held bytes; a segment beyond it is refused and counted (TCP retransmits it). */
  readonly heldBytesMax: number;
  /**
   * Hold data segments too (remus). In speculative modes the acker owns the
   * data and its delivery; the netbuffer plugs the rest (ACKs, SYN, FIN).
   */
  readonly holdData: boolean;
  /** Tests only: a planted bug that releases output without waiting for its commit. */
  readonly plantedReleaseBeforeCommit?: boolean;
}

export interface NetbufferStats {
  heldBytes: number;
  heldBytesMax: number;
  segmentsReleased: number;
  segmentsRefused: number;
  lastCommittedEpoch: number;
  /** Commits and segments of another term (a deposed primary, or our successor), dropped. */
  staleTermDrops: number;
  /** Exact copies of a segment already held (the bus repeated it), dropped. */
  duplicatesDropped: number;
}

interface EpochQueue {
  readonly epoch: number;
  readonly segments: Segment[];
  /** What identifies each held segment: a copy the bus delivered twice is held once. */
  readonly keys: Set<string>;
}

/** Every field the guest sets: two segments equal in all of them are one segment delivered twice. */
const segmentKey = (seg: Segment): string => `${seg.seq}/${seg.payload.length}/${seg.flags}/${seg.ack}/${seg.window}/${seg.tsValUs}/${seg.tsEcrUs}`;

/**
 * Output commit, like Linux sch_plug: each epoch's segments are held until
 * the backup has that epoch, then the whole epoch is released in order.
 */
export class NetbufferCore implements Core {
  readonly name = 'netbuffer';
  readonly subscriptions: readonly string[];
  readonly stats: NetbufferStats = { heldBytes: 0, heldBytesMax: 0, segmentsReleased: 0, segmentsRefused: 0, lastCommittedEpoch: 0, staleTermDrops: 0, duplicatesDropped: 0 };
  /** The fencing term this host serves under. */
  term = 0;
  /** Ascending by epoch. */
  readonly #queues: EpochQueue[] = [];
  /** Set when the host lost its lease: nothing more leaves (another host may be primary). */
  fenced = false;

  constructor(readonly options: NetbufferOptions) {
    this.subscriptions = [options.txSubject, options.commitSubject];
  }

  handle(input: Input, _nowUs: number): Effect[] {
    if (input.kind !== 'message') return [];
    const msg = input.msg;
    if (msg.type === 'segment') {
      if (msg.term !== this.term) {
        this.stats.staleTermDrops++; // a fenced primary's guest
        return [];
      }
      return this.#onSegment(msg);
    }
    if (msg.type === 'epochCommit') {
      if (msg.term !== this.term) {
        this.stats.staleTermDrops++;
        return [];
      }
      return this.#onCommit(msg.epoch);
    }
    return [];
  }

  #onSegment(seg: Segment): Effect[] {
    if (!this.options.holdData && seg.payload.length > 0) return [];
    if ((seg.epoch <= this.stats.lastCommittedEpoch || this.options.plantedReleaseBeforeCommit) && !this.fenced) {
      // Its epoch is already on the backup (it overtook nothing): release at once.
      this.stats.segmentsReleased++;
      return [{ kind: 'send', subject: this.options.outSubject, msg: seg }];
    }
    const bytes = seg.payload.length + TCP_IP_HEADER_BYTES;
    const key = segmentKey(seg);
    if (this.#queues.find((q) => q.epoch === seg.epoch)?.keys.has(key)) {
      this.stats.duplicatesDropped++;
      return [];
    }
    if (this.stats.heldBytes + bytes > this.options.heldBytesMax) {
      this.stats.segmentsRefused++;
      return [];
    }
    let queue = this.#queues[this.#queues.length - 1];
    if (queue === undefined || queue.epoch < seg.epoch) {
      queue = { epoch: seg.epoch, segments: [], keys: new Set() };
      this.#queues.push(queue);
    } else if (queue.epoch > seg.epoch) {
      // Late segment of an older, still uncommitted epoch.
      queue = this.#queues.find((q) => q.epoch === seg.epoch) ?? this.#insertQueue(seg.epoch);
    }
    queue.segments.push(seg);
    queue.keys.add(key);
    this.stats.heldBytes += bytes;
    if (this.stats.heldBytes > this.stats.heldBytesMax) this.stats.heldBytesMax = this.stats.heldBytes;
    return [];
  }

  #insertQueue(epoch: number): EpochQueue {
    const queue = { epoch, segments: [], keys: new Set<string>() };
    const at = this.#queues.findIndex((q) => q.epoch > epoch);
    this.#queues.splice(at, 0, queue);
    return queue;
  }

  #onCommit(epoch: number): Effect[] {
    if (epoch <= this.stats.lastCommittedEpoch) return []; // duplicate commit
    this.stats.lastCommittedEpoch = epoch;
    if (this.fenced) return [];
    const effects: Effect[] = [];
    while (this.#queues.length > 0 && this.#queues[0]!.epoch <= epoch) {
      const queue = this.#queues.shift()!;
      for (const seg of queue.segments) {
        this.stats.heldBytes -= seg.payload.length + TCP_IP_HEADER_BYTES;
        effects.push({ kind: 'send', subject: this.options.outSubject, msg: seg });
      }
      this.stats.segmentsReleased += queue.segments.length;
    }
    assert(this.stats.heldBytes >= 0, `held bytes went negative: ${this.stats.heldBytes}`);
    return effects;
  }
}
