import { assert } from '../../assert.js';
import type { WireMessage } from '../../codec/messages.js';
import { wireBytesOf } from '../../link/link-direction.js';
import { addTo, type Histogram } from '../../results/histogram.js';
import { DROPPED, type Hop } from '../sim/sim-runtime.js';
import type { Clock } from './clock.js';
import { PreciseTimer } from './precise-timer.js';

export interface LinkGateCounters {
  /** Messages the hop accepted and the gate delivered or still holds. */
  accepted: number;
  delivered: number;
  /** The hop dropped them (drop-tail queue or random loss). */
  hopDrops: number;
  /** The gate held `maxPending` messages, or `maxPendingBytes` bytes, already (either bound). */
  overflowDrops: number;
  /** Of `overflowDrops`, those the byte bound refused. */
  overflowByteDrops: number;
  /** Most messages, and most bytes (wireBytesOf), held at once. */
  maxPending: number;
  maxPendingBytes: number;
}

interface Pending {
  readonly atUs: number;
  readonly subject: string;
  readonly msg: WireMessage;
  readonly bytes: number;
}

/** Compacts the FIFO once this many delivered slots sit at its head. */
const COMPACT_AFTER = 4096;

/**
 * An emulated link in front of a receiving core: each message goes through
 * the hop when it arrives from the bus and is handed on at the hop's arrival
 * time, or dropped. One FIFO, one timer: the hop (LinkDirection) never
 * reorders, so the head is always the next message due. A message is never
 * delivered early; it is late by the event loop's lag only (PreciseTimer).
 */
export class LinkGate {
  readonly counters: LinkGateCounters = { accepted: 0, delivered: 0, hopDrops: 0, overflowDrops: 0, overflowByteDrops: 0, maxPending: 0, maxPendingBytes: 0 };
  /** How long after the link's arrival time each message was handed on, µs: a bus slower than the link, and the event loop's lag. */
  readonly lateUs: Histogram = {};
  readonly #fifo: Pending[] = [];
  #head = 0;
  /** wireBytesOf of what is held. */
  #pendingBytes = 0;
  readonly #timer: PreciseTimer;
  #stopped = false;
  /** When the latest message entered the hop: entries never go back, whatever the senders' stamps say. */
  #lastEntryUs = 0;

  constructor(
    readonly hop: Hop,
    readonly maxPending: number,
    /**
     * Bytes (IP packets, as the link counts them: wireBytesOf) held at once.
     * The message bound alone lets a hostile publisher of max_payload messages
     * make the process hold 100 GB behind a hop with no byte bound of its own
     * (the client's down link, whose queue is the plug).
     */
    readonly maxPendingBytes: number,
    readonly clock: Clock,
    readonly deliver: (subject: string, msg: WireMessage) => void,
  ) {
    assert(maxPending > 0, 'a link gate must hold something');
    assert(maxPendingBytes > 0, 'a link gate must hold some bytes');
    this.#timer = new PreciseTimer(clock, () => this.#drain());
  }

  get pending(): number {
    return this.#fifo.length - this.#head;
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * A message from the bus. `sentUs` (this gate's clock): when its sender
   * sent it, if its stamp says; the hop then takes it from that time, so the
   * bus's own delay counts as part of the link's instead of adding to it,
   * as in the simulator. It never enters before an earlier message, nor
   * after now: a bus slower than the link delivers it late, never early.
   */
  offer(subject: string, msg: WireMessage, sentUs?: number): void {
    if (this.#stopped) return;
    if (this.pending >= this.maxPending) {
      this.counters.overflowDrops++;
      return;
    }
    const bytes = wireBytesOf(msg);
    // Checked before the hop: a refused message must not take the link's time or queue.
    if (this.#pendingBytes + bytes > this.maxPendingBytes) {
      this.counters.overflowDrops++;
      this.counters.overflowByteDrops++;
      return;
    }
    const nowUs = this.clock.nowUs();
    const entryUs = Math.min(nowUs, Math.max(sentUs ?? nowUs, this.#lastEntryUs));
    assert(entryUs >= this.#lastEntryUs && entryUs <= nowUs, () => `link entry at ${entryUs} µs outside [${this.#lastEntryUs}, ${nowUs}]`);
    this.#lastEntryUs = entryUs;
    const atUs = this.hop.transit(msg, entryUs);
    if (atUs === DROPPED) {
      this.counters.hopDrops++;
      return;
    }
    const last = this.#fifo[this.#fifo.length - 1];
    // Keep FIFO order even for a hop that would reorder: never deliver before the previous message.
    const at = last !== undefined && this.pending > 0 ? Math.max(atUs, last.atUs) : atUs;
    this.#fifo.push({ atUs: at, subject, msg, bytes });
    this.#pendingBytes += bytes;
    this.counters.accepted++;
    if (this.pending > this.counters.maxPending) this.counters.maxPending = this.pending;
    if (this.#pendingBytes > this.counters.maxPendingBytes) this.counters.maxPendingBytes = this.#pendingBytes;
    if (this.pending === 1) this.#arm(at);
  }

  /** Discards everything held and the timer. */
  stop(): void {
    this.#stopped = true;
    this.#disarm();
    this.#fifo.length = 0;
    this.#head = 0;
    this.#pendingBytes = 0;
  }

  #arm(atUs: number): void {
    if (this.#timer.armed && this.#timer.atUs <= atUs) return;
    this.#timer.arm(atUs);
  }

  #disarm(): void {
    this.#timer.cancel();
  }

  #drain(): void {
    const fifo = this.#fifo;
    let nowUs = this.clock.nowUs();
    while (!this.#stopped && this.#head < fifo.length) {
      const next = fifo[this.#head]!;
      if (next.atUs > nowUs) break;
      this.#head++;
      this.#pendingBytes -= next.bytes;
      this.counters.delivered++;
      addTo(this.lateUs, nowUs - next.atUs);
      this.deliver(next.subject, next.msg);
      nowUs = this.clock.nowUs();
    }
    if (this.#stopped) return;
    if (this.#head === fifo.length) {
      fifo.length = 0;
      this.#head = 0;
      return;
    }
    if (this.#head >= COMPACT_AFTER) {
      fifo.splice(0, this.#head);
      this.#head = 0;
    }
    this.#arm(fifo[this.#head]!.atUs);
  }
}
