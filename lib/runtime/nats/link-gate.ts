import { assert } from '../../assert.js';
import type { WireMessage } from '../../codec/messages.js';
import { wireBytesOf } from '../../link/link-direction.js';
import { addTo, type Histogram } from '../../results/histogram.js';
import { DROPPED, type Hop } from '../sim/sim-runtime.js';
import type { Clock } from './clock.js';

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
 * setTimeout has 1 ms granularity; the last part of a wait shorter than this
 * polls with setImmediate instead (I/O keeps flowing between polls), so a
 * 1.01 ms link delay costs 1.01 ms and not 2 ms.
 */
const POLL_BELOW_US = 1_000;
/**
 * Between polls, a wait with more than POLL_SLEEP_MARGIN_US left sleeps
 * (Atomics.wait: no CPU) for up to POLL_SLEEP_US, short of the margin, then
 * lets I/O in. Polling alone spent much of a native run's CPU in the client
 * and the guest at 100 Mbit/s (each message waits most of a 1 ms link on
 * the poll); the sleeps took a quarter of the client's off (3.4 → 2.6 CPU
 * seconds in 5 s) and an eighth of the guest's, at the same goodput and
 * median delivery. A sleep holds the process's other input back by at most
 * POLL_SLEEP_US: 100 µs steps cost native at 1 Gbit/s a few percent, 50 µs
 * ones nothing measurable. The margin covers the kernel's timer slack
 * (50 µs): a sleep never makes a delivery early (docs/nats.md, Links).
 */
const POLL_SLEEP_US = 50;
const POLL_SLEEP_MARGIN_US = 50;
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));

/**
 * An emulated link in front of a receiving core: each message goes through
 * the hop when it arrives from the bus and is handed on at the hop's arrival
 * time, or dropped. One FIFO, one timer: the hop (LinkDirection) never
 * reorders, so the head is always the next message due. A message is never
 * delivered early; it is late by the event loop's lag only (setTimeout for
 * whole milliseconds, then setImmediate polls for the rest).
 */
export class LinkGate {
  readonly counters: LinkGateCounters = { accepted: 0, delivered: 0, hopDrops: 0, overflowDrops: 0, overflowByteDrops: 0, maxPending: 0, maxPendingBytes: 0 };
  /** How long after the link's arrival time each message was handed on, µs: a bus slower than the link, and the event loop's lag. */
  readonly lateUs: Histogram = {};
  readonly #fifo: Pending[] = [];
  #head = 0;
  /** wireBytesOf of what is held. */
  #pendingBytes = 0;
  #timer: NodeJS.Timeout | null = null;
  #poll: NodeJS.Immediate | null = null;
  #timerAtUs = 0;
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
    if (this.pending === 1) this.#arm(at, nowUs);
  }

  /** Discards everything held and the timer. */
  stop(): void {
    this.#stopped = true;
    this.#disarm();
    this.#fifo.length = 0;
    this.#head = 0;
    this.#pendingBytes = 0;
  }

  #arm(atUs: number, nowUs: number): void {
    if ((this.#timer !== null || this.#poll !== null) && this.#timerAtUs <= atUs) return;
    this.#disarm();
    this.#timerAtUs = atUs;
    const waitUs = atUs - nowUs;
    // setTimeout may fire up to a loop iteration early; #drain re-arms, then polls.
    if (waitUs < POLL_BELOW_US) this.#poll = setImmediate(() => this.#pollOnce());
    else this.#timer = setTimeout(() => this.#drain(), Math.floor(waitUs / 1000));
  }

  #disarm(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    if (this.#poll !== null) clearImmediate(this.#poll);
    this.#timer = null;
    this.#poll = null;
  }

  /** One poll of a wait under POLL_BELOW_US: a sleep short of the deadline, then a drain (which polls again if it is not yet due). */
  #pollOnce(): void {
    const leftUs = this.#timerAtUs - this.clock.nowUs();
    if (leftUs > POLL_SLEEP_MARGIN_US) Atomics.wait(SLEEPER, 0, 0, Math.min(POLL_SLEEP_US, leftUs - POLL_SLEEP_MARGIN_US) / 1000);
    this.#drain();
  }

  #drain(): void {
    this.#timer = null;
    this.#poll = null;
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
    this.#arm(fifo[this.#head]!.atUs, nowUs);
  }
}
