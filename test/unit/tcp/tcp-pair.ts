import type { Segment } from '../../../lib/codec/messages.js';
import { TcpEndpoint, type TcpIo } from '../../../lib/tcp/endpoint.js';
import { defaultTcpOptions, type TcpOptions } from '../../../lib/tcp/options.js';

/** The byte the application writes at stream offset `offset`. */
export const streamByte = (offset: number): number => (offset * 7 + 3) & 0xff;

export type Side = 'a' | 'b';

/** A TcpIo that records everything the endpoint asks of it. */
export class RecordingIo implements TcpIo {
  readonly sent: { atUs: number; seg: Segment }[] = [];
  /** Armed timers: name → deadline, with the order they were set in. */
  readonly timers = new Map<string, { atUs: number; order: number }>();
  readonly timerSets: { name: string; atUs: number; setAtUs: number }[] = [];
  readonly chunks: Uint8Array[] = [];
  deliveredBytes = 0;
  connectedCalls = 0;
  peerClosedCalls = 0;
  sendSpaceFreedCalls = 0;

  constructor(
    private readonly clock: { nowUs: number; order: number },
    private readonly onTransmit: (seg: Segment) => void,
  ) {}

  transmit(seg: Segment): void {
    this.sent.push({ atUs: this.clock.nowUs, seg });
    this.onTransmit(seg);
  }
  setTimer(name: string, atUs: number): void {
    this.timers.set(name, { atUs, order: this.clock.order++ });
    this.timerSets.push({ name, atUs, setAtUs: this.clock.nowUs });
  }
  cancelTimer(name: string): void {
    this.timers.delete(name);
  }
  deliver(chunk: Uint8Array): void {
    this.chunks.push(chunk.slice());
    this.deliveredBytes += chunk.length;
  }
  connected(): void {
    this.connectedCalls++;
  }
  sendSpaceFreed(): void {
    this.sendSpaceFreedCalls++;
  }
  peerClosed(): void {
    this.peerClosedCalls++;
  }

  /** Everything delivered to the application, as one array. */
  delivered(): number[] {
    return this.chunks.flatMap((c) => Array.from(c));
  }
  /** Segments sent with payload, in order. */
  dataSent(): Segment[] {
    return this.sent.map((s) => s.seg).filter((s) => s.payload.length > 0);
  }
}

interface InFlight {
  readonly atUs: number;
  readonly order: number;
  readonly to: Side;
  readonly seg: Segment;
}

/**
 * Two endpoints back to back: a FIFO wire with a fixed one-way delay each way
 * and both endpoints' timers, run in time order. `a` connects, `b` listens.
 * A filter sees every segment as it is transmitted and may drop (null) or
 * rewrite it.
 */
export class TcpPair {
  readonly clock = { nowUs: 0, order: 0 };
  readonly io: Record<Side, RecordingIo>;
  readonly ep: Record<Side, TcpEndpoint>;
  readonly #wire: InFlight[] = [];
  filter: ((from: Side, seg: Segment) => Segment | null) | null = null;
  /** Bytes written so far by each side's application. */
  readonly #written: Record<Side, number> = { a: 0, b: 0 };

  constructor(
    options: { a?: Partial<TcpOptions>; b?: Partial<TcpOptions> } = {},
    readonly oneWayUs = 10_000,
    startUs = 1_000,
  ) {
    this.clock.nowUs = startUs;
    const io = (side: Side) => new RecordingIo(this.clock, (seg) => this.#put(side, seg));
    this.io = { a: io('a'), b: io('b') };
    this.ep = {
      a: new TcpEndpoint(defaultTcpOptions(options.a), { vmId: 'vm1', connId: 1, timerPrefix: 'a' }, this.io.a),
      b: new TcpEndpoint(defaultTcpOptions(options.b), { vmId: 'vm1', connId: 1, timerPrefix: 'b' }, this.io.b),
    };
  }

  get nowUs(): number {
    return this.clock.nowUs;
  }
  get a(): TcpEndpoint {
    return this.ep.a;
  }
  get b(): TcpEndpoint {
    return this.ep.b;
  }

  /** Listens on b, connects from a and runs until both are established. */
  open(): this {
    this.b.listen();
    this.a.connect(this.nowUs);
    this.runFor(4 * this.oneWayUs);
    if (this.a.state !== 'established' || this.b.state !== 'established') throw new Error('handshake did not complete');
    return this;
  }

  /** The application on `side` writes up to `n` bytes of the test stream. */
  write(side: Side, n: number): number {
    const took = this.ep[side].write(n, (dst, offset) => {
      for (let i = 0; i < dst.length; i++) dst[i] = streamByte(offset + i);
    }, this.nowUs);
    this.#written[side] += took;
    return took;
  }

  /** Hands `seg` to `to` right now, bypassing the wire. */
  inject(to: Side, seg: Segment): void {
    this.ep[to].onSegment(seg, this.nowUs);
  }

  #put(from: Side, original: Segment): void {
    const seg = this.filter ? this.filter(from, original) : original;
    if (seg === null) return;
    this.#wire.push({ atUs: this.nowUs + this.oneWayUs, order: this.clock.order++, to: from === 'a' ? 'b' : 'a', seg });
  }

  /** Runs the next event if it is due by `untilUs`; false when none is. */
  step(untilUs: number): boolean {
    let best: { atUs: number; order: number; run: () => void } | null = null;
    const consider = (atUs: number, order: number, run: () => void) => {
      if (atUs > untilUs) return;
      if (best === null || atUs < best.atUs || (atUs === best.atUs && order < best.order)) best = { atUs, order, run };
    };
    this.#wire.forEach((f, i) =>
      consider(f.atUs, f.order, () => {
        this.#wire.splice(i, 1);
        this.ep[f.to].onSegment(f.seg, this.nowUs);
      }),
    );
    for (const side of ['a', 'b'] as const) {
      for (const [name, t] of this.io[side].timers) {
        consider(t.atUs, t.order, () => {
          this.io[side].timers.delete(name);
          this.ep[side].onTimer(name, this.nowUs);
        });
      }
    }
    if (best === null) return false;
    const next: { atUs: number; run: () => void } = best;
    this.clock.nowUs = Math.max(this.clock.nowUs, next.atUs);
    next.run();
    return true;
  }

  runUntil(untilUs: number): void {
    for (let i = 0; this.step(untilUs); i++) if (i > 1_000_000) throw new Error('runaway loop');
    this.clock.nowUs = Math.max(this.clock.nowUs, untilUs);
  }

  runFor(durationUs: number): void {
    this.runUntil(this.nowUs + durationUs);
  }

  /** Deadline of `side`'s timer with this suffix (rto, delack, persist), if armed. */
  timer(side: Side, suffix: 'rto' | 'delack' | 'persist'): number | undefined {
    return this.io[side].timers.get(`${side}.${suffix}`)?.atUs;
  }

  /** The stream `side` has written so far, as the peer should receive it. */
  expectedStream(side: Side): number[] {
    return Array.from({ length: this.#written[side] }, (_, i) => streamByte(i));
  }
}

/** A filter that drops the first `copies` transmissions of each listed data segment from `from`. */
export function dropFirstOf(from: Side, seqs: readonly number[], copies = 1): (f: Side, s: Segment) => Segment | null {
  const left = new Map(seqs.map((seq) => [seq, copies]));
  return (f, s) => {
    const n = left.get(s.seq) ?? 0;
    if (f !== from || s.payload.length === 0 || n === 0) return s;
    left.set(s.seq, n - 1);
    return null;
  };
}
