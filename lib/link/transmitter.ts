import { assert } from '../assert.js';
import { BITS_PER_BYTE, US_PER_S } from '../units.js';
import { serializedBytesOf } from './framing.js';

/** Entries of departed packets kept before the arrays are compacted. */
const COMPACT_AFTER_ENTRIES = 4096;

/**
 * A FIFO transmitter at a fixed rate and what waits in front of it: the
 * bytes (IP packets) queued or in transmission, and when each leaves. A
 * link direction puts one in front of its wire; a sender's NIC model keeps
 * its own (the same arithmetic, so the two agree on what is queued).
 */
export class Transmitter {
  #usPerByte: number;
  /** When the last accepted packet finishes (fractional µs, so no drift). */
  #busyUntilUs = 0;
  /** Finish times and sizes of packets still queued or in transmission. */
  readonly #finishUs: number[] = [];
  readonly #sizes: number[] = [];
  #head = 0;
  #queuedBytes = 0;

  constructor(rateBitsPerSec: number) {
    this.#usPerByte = Transmitter.#usPerByteOf(rateBitsPerSec);
  }

  static #usPerByteOf(rateBitsPerSec: number): number {
    assert(rateBitsPerSec > 0, () => `transmitter rate ${rateBitsPerSec} bit/s`);
    return (BITS_PER_BYTE * US_PER_S) / rateBitsPerSec;
  }

  /** Changes the rate for packets accepted from now on; queued ones keep their times. */
  setRate(rateBitsPerSec: number): void {
    this.#usPerByte = Transmitter.#usPerByteOf(rateBitsPerSec);
  }

  /** Bytes queued or in transmission at `nowUs` (never earlier than the last call). */
  queuedBytesAt(nowUs: number): number {
    this.#drainDeparted(nowUs);
    return this.#queuedBytes;
  }

  /** How long a packet accepted now waits before its transmission starts. */
  waitUs(nowUs: number): number {
    return Math.max(0, this.#busyUntilUs - nowUs);
  }

  /** Takes a packet of `packetBytes` (call queuedBytesAt first for the bound); returns when its last bit leaves. */
  admit(packetBytes: number, nowUs: number): number {
    const finishUs = Math.max(nowUs, this.#busyUntilUs) + serializedBytesOf(packetBytes) * this.#usPerByte;
    this.#busyUntilUs = finishUs;
    this.#finishUs.push(finishUs);
    this.#sizes.push(packetBytes);
    this.#queuedBytes += packetBytes;
    return finishUs;
  }

  /** The first time, from `nowUs`, at which at most `bytes` remain queued (`nowUs` if that holds already). */
  drainedToUs(bytes: number, nowUs: number): number {
    let queued = this.queuedBytesAt(nowUs);
    for (let i = this.#head; i < this.#finishUs.length && queued > bytes; i++) {
      queued -= this.#sizes[i]!;
      if (queued <= bytes) return Math.ceil(this.#finishUs[i]!);
    }
    return nowUs;
  }

  #drainDeparted(nowUs: number): void {
    const finish = this.#finishUs;
    while (this.#head < finish.length && finish[this.#head]! <= nowUs) {
      this.#queuedBytes -= this.#sizes[this.#head]!;
      this.#head++;
    }
    if (this.#head > COMPACT_AFTER_ENTRIES && this.#head * 2 > finish.length) {
      finish.splice(0, this.#head);
      this.#sizes.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
