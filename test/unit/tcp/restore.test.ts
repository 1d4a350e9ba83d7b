import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TcpFlag, type Segment } from '../../../lib/codec/messages.js';
import { SnapshotError } from '../../../lib/errors.js';
import { Rng } from '../../../lib/rng.js';
import type { CongestionControlName } from '../../../lib/tcp/congestion/index.js';
import { TcpEndpoint, type SendRing, type TcpIdentity, type TcpIo } from '../../../lib/tcp/endpoint.js';
import { defaultTcpOptions, type TcpOptions } from '../../../lib/tcp/options.js';
import { SendBuffer } from '../../../lib/tcp/send-buffer.js';
import { TCP_SNAPSHOT_VERSION, type TcpEndpointSnapshot } from '../../../lib/tcp/snapshot.js';

/** The MSS both sides use: b offers it, a offers more (so a's negotiated MSS differs from its option). */
const MSS = 1000;
const ONE_WAY_US = 5_000;
const APP_TICK_US = 2_000;
const CCS: readonly CongestionControlName[] = ['newreno', 'cubic', 'racc'];

/** The byte the application writes at stream offset `offset` (each side its own stream). */
const streamByte = (side: Side, offset: number): number => (offset * (side === 'a' ? 7 : 13) + 3) & 0xff;

type Side = 'a' | 'b';
type Call = readonly unknown[];

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
const jsonRoundTrip = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

/** A TcpIo that logs every call, in order, as comparable plain data, and keeps the armed timers. */
class LogIo implements TcpIo {
  readonly calls: Call[] = [];
  readonly timers = new Map<string, { atUs: number; order: number }>();
  delivered: number[] = [];

  constructor(
    private readonly order: { next: number },
    private readonly onTransmit: (seg: Segment) => void,
  ) {}

  transmit(seg: Segment): void {
    this.calls.push(['transmit', { ...seg, payload: b64(seg.payload) }]);
    this.onTransmit(seg);
  }
  setTimer(name: string, atUs: number): void {
    this.timers.set(name, { atUs, order: this.order.next++ });
    this.calls.push(['setTimer', name, atUs]);
  }
  cancelTimer(name: string): void {
    this.timers.delete(name);
    this.calls.push(['cancelTimer', name]);
  }
  deliver(chunk: Uint8Array): void {
    for (const byte of chunk) this.delivered.push(byte);
    this.calls.push(['deliver', b64(chunk)]);
  }
  connected(): void {
    this.calls.push(['connected']);
  }
  sendSpaceFreed(): void {
    this.calls.push(['sendSpaceFreed']);
  }
  peerClosed(): void {
    this.calls.push(['peerClosed']);
  }
  /** Armed timers as name → deadline. */
  deadlines(): Record<string, number> {
    return Object.fromEntries([...this.timers].map(([name, t]) => [name, t.atUs]));
  }
}

/** A send ring in test memory; restoring guest memory is copying it. */
const ringOf = (bytes: Uint8Array): SendRing => ({ bytes, markDirty: () => {} });

/** Where the clone is taken: the first event at or after `afterEvent` at which `when` holds. */
type Moment = 'any' | 'handshake' | 'recovery' | 'partial-ack' | 'congestion-avoidance' | 'out-of-order' | 'persist' | 'persist-backed-off' | 'rto-backed-off' | 'delayed-ack' | 'fin-sent' | 'fin-received';
const MOMENTS: Record<Moment, (a: TcpEndpoint) => boolean> = {
  any: () => true,
  handshake: (a) => a.state === 'syn-sent',
  recovery: (a) => a.inRecovery,
  'partial-ack': (a) => a.inRecovery && a.sender.snapshot().partialAckSeen,
  'congestion-avoidance': (a) => !a.inRecovery && a.cc.ssthreshBytes < 2 ** 30 && a.cc.cwndBytes >= a.cc.ssthreshBytes,
  'out-of-order': (a) => a.receiver.outOfOrderBytes > 0,
  persist: (a) => a.sender.persistDeadlineUs !== null,
  'persist-backed-off': (a) => a.sender.persistDeadlineUs !== null && a.sender.snapshot().persistBackoff > 0,
  'rto-backed-off': (a) => a.sender.rtoDeadlineUs !== null && a.sender.rtt.snapshot().backoffShift > 0,
  'delayed-ack': (a) => a.delackDeadlineUs !== null,
  'fin-sent': (a) => a.sender.finSeq !== null,
  'fin-received': (a) => a.receiver.finReceived,
};

interface Scenario {
  readonly cc: CongestionControlName;
  readonly seed: number;
  /** Random loss of every segment, each way. */
  readonly lossRate: number;
  /** Bytes each application writes, then closes if asked. */
  readonly aBytes: number;
  readonly bBytes: number;
  readonly closeA: boolean;
  readonly closeB: boolean;
  /** b advertises a zero window to a over [fromUs, toUs). */
  readonly zeroWindow?: { readonly fromUs: number; readonly toUs: number };
  /** Everything a sends over [fromUs, toUs) is lost. */
  readonly blackout?: { readonly fromUs: number; readonly toUs: number };
  /** First transmissions of these data segments are lost (from, seq). */
  readonly dropFirst?: readonly { readonly from: Side; readonly seq: number }[];
  readonly clone?: { readonly moment: Moment; readonly afterEvent: number };
  /** Options of b besides the defaults here. */
  readonly b?: Partial<TcpOptions>;
  /** Round-trips both endpoints through JSON every this many events (0: never). */
  readonly roundTripEvery?: number;
  readonly endUs: number;
}

interface Endpoint {
  readonly ep: TcpEndpoint;
  readonly io: LogIo;
  readonly ring: Uint8Array;
}

const optionsFor = (side: Side, cc: CongestionControlName, over: Partial<TcpOptions> = {}): TcpOptions =>
  side === 'a'
    ? defaultTcpOptions({ mssBytes: 1200, sndBufBytes: 128 * 1024, rcvBufBytes: 256 * 1024, congestionControl: cc, ...over })
    : defaultTcpOptions({ mssBytes: MSS, sndBufBytes: 32 * 1024, rcvBufBytes: 256 * 1024, ...over });
const identityOf = (side: Side): TcpIdentity => ({ vmId: 'vm1', connId: 1, timerPrefix: side });

/**
 * Two endpoints over a wire with a fixed delay, seeded loss and scripted
 * drops, each with an application that writes its stream every APP_TICK_US.
 * Once the clone moment comes, `a` is cloned through snapshot → JSON →
 * restore (its send ring copied, as guest memory is) and from then on the
 * clone gets every input `a` gets: segments, timer firings, writes, close.
 */
class World {
  nowUs = 1_000;
  readonly order = { next: 0 };
  readonly side: Record<Side, Endpoint>;
  clone: Endpoint | null = null;
  /** Index in a's call log where the clone starts. */
  cloneCallsFrom = 0;
  cloneState: TcpEndpointSnapshot | null = null;
  events = 0;
  readonly #wire: { atUs: number; order: number; to: Side; seg: Segment }[] = [];
  readonly #nextTick: Record<Side, { atUs: number; order: number }>;
  readonly #written: Record<Side, number> = { a: 0, b: 0 };
  readonly #closed: Record<Side, boolean> = { a: false, b: false };
  readonly #dropped = new Set<string>();
  readonly #loss: Rng;

  constructor(readonly s: Scenario) {
    this.#loss = new Rng(s.seed, 'restore-test').fork('loss');
    const make = (side: Side): Endpoint => {
      const options = optionsFor(side, s.cc, side === 'b' ? s.b : {});
      const ring = new Uint8Array(options.sndBufBytes);
      const io = new LogIo(this.order, (seg) => this.#put(side, seg));
      return { ep: new TcpEndpoint(options, identityOf(side), io, ringOf(ring)), io, ring };
    };
    this.side = { a: make('a'), b: make('b') };
    this.#nextTick = { a: { atUs: this.nowUs, order: this.order.next++ }, b: { atUs: this.nowUs, order: this.order.next++ } };
    this.side.b.ep.listen();
    this.side.a.ep.connect(this.nowUs);
    this.#afterEvent();
  }

  get a(): TcpEndpoint {
    return this.side.a.ep;
  }
  get b(): TcpEndpoint {
    return this.side.b.ep;
  }

  run(): this {
    while (this.#step()) if (this.events > 200_000) throw new Error('runaway');
    return this;
  }

  /** What `to` has received of the peer's stream is a prefix of it. */
  expectStreamsIntact(): void {
    for (const to of ['a', 'b'] as const) {
      const from: Side = to === 'a' ? 'b' : 'a';
      const got = this.side[to].io.delivered;
      expect(got.length).toBeLessThanOrEqual(this.#written[from]);
      expect(got).toEqual(Array.from({ length: got.length }, (_, i) => streamByte(from, i)));
    }
  }

  #put(from: Side, seg: Segment): void {
    const key = `${from}:${seg.seq}`;
    if (seg.payload.length > 0 && this.s.dropFirst?.some((d) => d.from === from && d.seq === seg.seq) && !this.#dropped.has(key)) {
      this.#dropped.add(key);
      return;
    }
    if (this.#loss.chance(this.s.lossRate)) return;
    const out = this.s.blackout;
    if (from === 'a' && out !== undefined && this.nowUs >= out.fromUs && this.nowUs < out.toUs) return;
    const zw = this.s.zeroWindow;
    const shut = from === 'b' && zw !== undefined && this.nowUs >= zw.fromUs && this.nowUs < zw.toUs && !(seg.flags & TcpFlag.SYN);
    this.#wire.push({ atUs: this.nowUs + ONE_WAY_US, order: this.order.next++, to: from === 'a' ? 'b' : 'a', seg: shut ? { ...seg, window: 0 } : seg });
  }

  #step(): boolean {
    let best: { atUs: number; order: number; run: () => void } | null = null;
    const consider = (atUs: number, order: number, run: () => void) => {
      if (atUs > this.s.endUs) return;
      if (best === null || atUs < best.atUs || (atUs === best.atUs && order < best.order)) best = { atUs, order, run };
    };
    this.#wire.forEach((f, i) =>
      consider(f.atUs, f.order, () => {
        this.#wire.splice(i, 1);
        this.#toSide(f.to, (e) => e.ep.onSegment(f.seg, this.nowUs));
      }),
    );
    for (const side of ['a', 'b'] as const) {
      for (const [name, t] of this.side[side].io.timers) {
        consider(t.atUs, t.order, () => {
          this.#toSide(side, (e) => {
            const armed = e.io.timers.get(name);
            expect(armed?.atUs, `${name} armed alike`).toBe(t.atUs);
            e.io.timers.delete(name);
            e.ep.onTimer(name, this.nowUs);
          });
        });
      }
      const tick = this.#nextTick[side];
      if (this.#written[side] < (side === 'a' ? this.s.aBytes : this.s.bBytes) || !this.#closed[side]) consider(tick.atUs, tick.order, () => this.#appTick(side));
    }
    if (best === null) return false;
    const next: { atUs: number; run: () => void } = best;
    this.nowUs = Math.max(this.nowUs, next.atUs);
    next.run();
    this.events++;
    this.#afterEvent();
    return true;
  }

  /** Runs `input` on `side`'s endpoint and, for a, on the clone too. */
  #toSide(side: Side, input: (e: Endpoint) => void): void {
    input(this.side[side]);
    if (side === 'a' && this.clone !== null) input(this.clone);
  }

  #appTick(side: Side): void {
    this.#nextTick[side] = { atUs: this.nowUs + APP_TICK_US, order: this.order.next++ };
    const total = side === 'a' ? this.s.aBytes : this.s.bBytes;
    const wantClose = side === 'a' ? this.s.closeA : this.s.closeB;
    const left = total - this.#written[side];
    if (left > 0) {
      const offset = this.#written[side];
      const fill = (dst: Uint8Array, streamOffset: number) => {
        for (let i = 0; i < dst.length; i++) dst[i] = streamByte(side, streamOffset + i);
      };
      const took = this.side[side].ep.write(left, fill, this.nowUs);
      if (side === 'a' && this.clone !== null) expect(this.clone.ep.write(left, fill, this.nowUs)).toBe(took);
      this.#written[side] = offset + took;
    } else if (wantClose && !this.#closed[side]) {
      this.#toSide(side, (e) => e.ep.close(this.nowUs));
      this.#closed[side] = true;
    } else {
      this.#closed[side] = true; // nothing more to do: stop ticking
    }
  }

  #afterEvent(): void {
    const every = this.s.roundTripEvery ?? 0;
    if (every > 0 && this.events % every === 0) {
      for (const side of ['a', 'b'] as const) expectRoundTrip(this.side[side].ep);
    }
    const c = this.s.clone;
    if (c !== undefined && this.clone === null && this.events >= c.afterEvent && MOMENTS[c.moment](this.a)) this.#takeClone();
    if (this.clone !== null) this.#expectCloneInStep();
  }

  #takeClone(): void {
    const { ep, io, ring } = this.side.a;
    const snapshot = jsonRoundTrip(ep.snapshot());
    const cloneRing = ring.slice();
    const cloneIo = new LogIo({ next: 0 }, () => {});
    const clone = new TcpEndpoint(ep.options, ep.identity, cloneIo, ringOf(cloneRing));
    clone.restore(snapshot);
    expect(cloneIo.calls).toEqual([]); // nothing before resumeTimers
    clone.resumeTimers(this.nowUs);
    // The clone asks for exactly the timers the original has armed, at the same deadlines.
    expect(cloneIo.deadlines()).toEqual(io.deadlines());
    expect(cloneIo.calls.every((c) => c[0] === 'setTimer')).toBe(true);
    cloneIo.calls.length = 0;
    this.clone = { ep: clone, io: cloneIo, ring: cloneRing };
    this.cloneCallsFrom = io.calls.length;
    this.cloneState = snapshot;
  }

  /** Calls of the clone's io already found equal to the original's (both logs only grow). */
  #callsChecked = 0;

  /** Same calls on the io since the clone, same state (checked cheaply first; each call compared once). */
  #expectCloneInStep(): void {
    const original = this.side.a;
    const clone = this.clone!;
    const from = this.#callsChecked;
    const calls = original.io.calls.slice(this.cloneCallsFrom + from);
    const cloneCalls = clone.io.calls.slice(from);
    if (JSON.stringify(calls) !== JSON.stringify(cloneCalls)) {
      const i = calls.findIndex((c, k) => JSON.stringify(c) !== JSON.stringify(cloneCalls[k]));
      const at = i < 0 ? calls.length : i;
      expect({ event: this.events, at: from + at, calls: cloneCalls.slice(at, at + 3) }).toEqual({ event: this.events, at: from + at, calls: calls.slice(at, at + 3) });
      expect(cloneCalls.length).toBe(calls.length);
    }
    this.#callsChecked = clone.io.calls.length;
    const a = JSON.stringify(original.ep.snapshot());
    const b = JSON.stringify(clone.ep.snapshot());
    if (a !== b) expect(JSON.parse(b)).toEqual(JSON.parse(a));
  }
}

/** snapshot → JSON → restore into a fresh endpoint → snapshot gives the same snapshot. */
function expectRoundTrip(ep: TcpEndpoint): void {
  const snapshot = ep.snapshot();
  const text = JSON.stringify(snapshot);
  expect(JSON.parse(text)).toEqual(snapshot); // plain JSON: nothing lost on the way
  const fresh = new TcpEndpoint(ep.options, ep.identity, new LogIo({ next: 0 }, () => {}), ringOf(new Uint8Array(ep.options.sndBufBytes)));
  fresh.restore(JSON.parse(text) as TcpEndpointSnapshot);
  expect(fresh.snapshot()).toEqual(snapshot);
  expect(JSON.stringify(fresh.snapshot())).toBe(text);
}

const transfer = (over: Partial<Scenario> = {}): Scenario => ({
  cc: 'newreno',
  seed: 1,
  lossRate: 0,
  aBytes: 200_000,
  bBytes: 30_000,
  closeA: true,
  closeB: true,
  endUs: 6_000_000,
  ...over,
});

/** Runs a scenario that must reach its clone moment; checks the clone kept in step to the end. */
function expectCloneBehavesAlike(s: Scenario): World {
  const w = new World(s).run();
  expect(w.clone, `clone moment ${s.clone?.moment} reached`).not.toBeNull();
  expect(w.side.a.io.calls.length).toBeGreaterThan(w.cloneCallsFrom); // the clone had work to do
  expect(w.clone!.io.calls).toEqual(w.side.a.io.calls.slice(w.cloneCallsFrom));
  expect(w.clone!.ep.snapshot()).toEqual(w.a.snapshot());
  w.expectStreamsIntact();
  return w;
}

describe('TCP snapshots survive JSON and restore exactly', () => {
  it('restores a fresh endpoint to an identical snapshot', () => {
    for (const cc of CCS) expectRoundTrip(new TcpEndpoint(optionsFor('a', cc), identityOf('a'), new LogIo({ next: 0 }, () => {})));
  });

  it('carries the version and every part of the endpoint', () => {
    const w = new World(transfer({ endUs: 200_000 })).run();
    const s = w.a.snapshot();
    expect(s.version).toBe(TCP_SNAPSHOT_VERSION);
    // sndBufLimitBytes: the send buffer grows with the window (the default), so its limit is state.
    expect(Object.keys(s).sort()).toEqual(['delackAtUs', 'epoch', 'receiver', 'sendBuffer', 'sender', 'sndBufLimitBytes', 'sndWscale', 'state', 'term', 'version']);
    expect(s.sndBufLimitBytes).toBe(w.a.sndBufLimitBytes);
    expect(s.sender.cc.name).toBe('newreno');
    expect(s.sendBuffer).toEqual({ capacityBytes: 128 * 1024, startSeq: w.a.sendBuffer.startSeq, endSeq: w.a.sendBuffer.endSeq });
  });

  it('keeps out-of-order bytes in the receiver snapshot', () => {
    const w = new World(transfer({ aBytes: 0, bBytes: 20_000, dropFirst: [{ from: 'b', seq: 1 + 3 * MSS }], clone: { moment: 'out-of-order', afterEvent: 0 }, endUs: 2_000_000 })).run();
    const held = w.cloneState!.receiver.outOfOrder;
    expect(held.length).toBeGreaterThan(0);
    expect(held[0]!.seq).toBe(1 + 4 * MSS);
    const bytes = Buffer.from(held[0]!.data, 'base64');
    expect(Array.from(bytes)).toEqual(Array.from({ length: bytes.length }, (_, i) => streamByte('b', 4 * MSS + i)));
  });

  it('round-trips both endpoints at every point of lossy transfers', () => {
    fc.assert(
      fc.property(
        fc.record({
          cc: fc.constantFrom(...CCS),
          seed: fc.nat(),
          lossRate: fc.constantFrom(0, 0.01, 0.05, 0.15),
          aBytes: fc.integer({ min: 0, max: 120_000 }),
          bBytes: fc.integer({ min: 0, max: 40_000 }),
          closeA: fc.boolean(),
          closeB: fc.boolean(),
          roundTripEvery: fc.integer({ min: 1, max: 7 }),
        }),
        (s) => {
          new World({ ...s, endUs: 3_000_000 }).run();
        },
      ),
      { numRuns: 40 },
    );
  }, 30_000);
});

describe('a restored endpoint behaves as the original from the snapshot on', () => {
  describe.each(CCS)('with %s', (cc) => {
    it('when cloned in the middle of a transfer without loss', () => {
      expectCloneBehavesAlike(transfer({ cc, clone: { moment: 'any', afterEvent: 60 } }));
    });

    it('when cloned during the handshake', () => {
      expectCloneBehavesAlike(transfer({ cc, clone: { moment: 'handshake', afterEvent: 0 } }));
    });

    it('when cloned inside fast recovery', () => {
      const w = expectCloneBehavesAlike(transfer({ cc, dropFirst: [{ from: 'a', seq: 1 + 20 * MSS }, { from: 'a', seq: 1 + 21 * MSS }, { from: 'a', seq: 1 + 90 * MSS }], clone: { moment: 'recovery', afterEvent: 0 } }));
      expect(w.cloneState!.sender.inRecovery).toBe(true);
      expect(w.cloneState!.sender.sackEnabled).toBe(true);
      expect(w.cloneState!.sender.sacked.length).toBeGreaterThan(0);
      expect(w.clone!.ep.stats.fastRetransmits + w.clone!.ep.stats.retransmits).toBeGreaterThan(0);
    });

    it('when cloned after a partial ACK in NewReno fast recovery (the peer does not SACK)', () => {
      const drops = [20, 23, 26].map((k) => ({ from: 'a' as const, seq: 1 + k * MSS }));
      const w = expectCloneBehavesAlike(transfer({ cc, b: { sack: false }, dropFirst: drops, clone: { moment: 'partial-ack', afterEvent: 0 }, roundTripEvery: 1 }));
      expect(w.cloneState!.sender.partialAckSeen).toBe(true);
    });

    it('when the peer does not scale windows', () => {
      const w = expectCloneBehavesAlike(transfer({ cc, b: { windowScaling: false }, lossRate: 0.02, clone: { moment: 'any', afterEvent: 80 } }));
      expect(w.cloneState!.receiver.rcvWscale).toBe(0);
      expect(w.cloneState!.sndWscale).toBe(0);
    });

    it('when cloned with out-of-order data buffered', () => {
      const w = expectCloneBehavesAlike(transfer({ cc, dropFirst: [{ from: 'b', seq: 1 + 3 * MSS }, { from: 'b', seq: 1 + 9 * MSS }], clone: { moment: 'out-of-order', afterEvent: 0 } }));
      expect(w.cloneState!.receiver.outOfOrder.length).toBeGreaterThan(0);
    });

    it('when cloned while probing a zero window', () => {
      const w = expectCloneBehavesAlike(transfer({ cc, zeroWindow: { fromUs: 25_000, toUs: 1_500_000 }, clone: { moment: 'persist', afterEvent: 0 } }));
      expect(w.cloneState!.sender.persistAtUs).not.toBeNull();
      expect(w.cloneState!.sender.sndWnd).toBe(0);
    });

    it('when cloned after backing off its persist timer', () => {
      const w = expectCloneBehavesAlike(transfer({ cc, zeroWindow: { fromUs: 25_000, toUs: 3_000_000 }, clone: { moment: 'persist-backed-off', afterEvent: 0 } }));
      expect(w.cloneState!.sender.persistBackoff).toBeGreaterThan(0);
    });

    it('when cloned with a delayed ACK pending', () => {
      const w = expectCloneBehavesAlike(transfer({ cc, aBytes: 5_000, bBytes: 20_500, clone: { moment: 'delayed-ack', afterEvent: 0 } }));
      expect(w.cloneState!.delackAtUs).not.toBeNull();
    });

    it('when cloned after sending its FIN', () => {
      const w = expectCloneBehavesAlike(transfer({ cc, lossRate: 0.05, seed: 3, clone: { moment: 'fin-sent', afterEvent: 0 } }));
      expect(w.cloneState!.sender.finSeq).not.toBeNull();
    });

    it('when cloned after receiving the peer FIN', () => {
      const w = expectCloneBehavesAlike(transfer({ cc, bBytes: 2_000, closeA: false, clone: { moment: 'fin-received', afterEvent: 0 } }));
      expect(w.cloneState!.receiver.finReceived).toBe(true);
    });

    it('when cloned after an RTO backed off', () => {
      // Everything a sends is lost for a while: the RTO fires and doubles.
      const w = expectCloneBehavesAlike(transfer({ cc, blackout: { fromUs: 30_000, toUs: 1_000_000 }, clone: { moment: 'rto-backed-off', afterEvent: 0 } }));
      expect(w.cloneState!.sender.rtt.backoffShift).toBeGreaterThan(0);
      expect(w.a.stats.timeouts).toBeGreaterThan(1);
    });
  });

  it.each(['newreno', 'cubic'] as const)('with %s when cloned in congestion avoidance and losing again later', { timeout: 30_000 }, (cc) => {
    const drops = [30, 500].map((k) => ({ from: 'a' as const, seq: 1 + k * MSS }));
    const w = expectCloneBehavesAlike(transfer({ cc, aBytes: 700_000, dropFirst: drops, clone: { moment: 'congestion-avoidance', afterEvent: 300 } }));
    const state = w.cloneState!.sender;
    expect(state.cc.cwndBytes).toBeGreaterThanOrEqual(state.cc.ssthreshBytes);
    if (state.cc.name === 'cubic') expect(state.cc.epochStartUs).not.toBeNull();
    expect(state.sndUna).toBeLessThan(1 + 500 * MSS); // the second loss comes after the clone
    expect(w.a.stats.fastRetransmits).toBe(2);
  });

  it('when cloned at any moment of a lossy transfer', () => {
    const moments = Object.keys(MOMENTS) as Moment[];
    fc.assert(
      fc.property(
        fc.record({
          cc: fc.constantFrom(...CCS),
          seed: fc.nat(),
          lossRate: fc.constantFrom(0, 0.02, 0.05, 0.1),
          aBytes: fc.integer({ min: 0, max: 150_000 }),
          bBytes: fc.integer({ min: 0, max: 40_000 }),
          closeA: fc.boolean(),
          closeB: fc.boolean(),
          blackout: fc.option(fc.record({ fromUs: fc.integer({ min: 0, max: 300_000 }), toUs: fc.integer({ min: 300_000, max: 1_000_000 }) }), { nil: undefined }),
          zeroWindow: fc.option(fc.record({ fromUs: fc.integer({ min: 0, max: 500_000 }), toUs: fc.integer({ min: 500_000, max: 2_000_000 }) }), { nil: undefined }),
          clone: fc.record({ moment: fc.constantFrom(...moments), afterEvent: fc.nat({ max: 600 }) }),
        }),
        (s) => {
          let w = new World({ ...s, endUs: 4_000_000 }).run();
          // The moment never came: clone the same run at some event instead.
          if (w.clone === null) w = new World({ ...s, clone: { moment: 'any', afterEvent: s.clone.afterEvent % w.events }, endUs: 4_000_000 }).run();
          expect(w.clone).not.toBeNull();
          expect(w.clone!.io.calls).toEqual(w.side.a.io.calls.slice(w.cloneCallsFrom));
          w.expectStreamsIntact();
        },
      ),
      { numRuns: 60 },
    );
  }, 30_000);
});

describe('resuming timers', () => {
  it('re-arms a timer whose deadline passed while the guest was down at the current time', () => {
    const w = new World(transfer({ endUs: 30_000 })).run();
    const snapshot = jsonRoundTrip(w.a.snapshot());
    const rtoAtUs = snapshot.sender.rtoAtUs!;
    expect(rtoAtUs).not.toBeNull();
    const io = new LogIo({ next: 0 }, () => {});
    const restored = new TcpEndpoint(optionsFor('a', 'newreno'), identityOf('a'), io, ringOf(w.side.a.ring.slice()));
    restored.restore(snapshot);
    const laterUs = rtoAtUs + 5_000_000;
    restored.resumeTimers(laterUs);
    expect(io.deadlines()['a.rto']).toBe(laterUs);
    expect(restored.snapshot().sender.rtoAtUs).toBe(laterUs);
  });

  it('keeps deadlines still ahead as they were', () => {
    const w = new World(transfer({ endUs: 30_000 })).run();
    const snapshot = jsonRoundTrip(w.a.snapshot());
    const io = new LogIo({ next: 0 }, () => {});
    const restored = new TcpEndpoint(optionsFor('a', 'newreno'), identityOf('a'), io, ringOf(w.side.a.ring.slice()));
    restored.restore(snapshot);
    restored.resumeTimers(w.nowUs);
    expect(io.deadlines()).toEqual(w.side.a.io.deadlines());
  });
});

describe('send buffer indices', () => {
  it('restores the indices over a ring that already holds the bytes', () => {
    const ring = new Uint8Array(4096);
    const original = new SendBuffer(4096, 1, ringOf(ring));
    original.append(3000, (dst, seq) => dst.fill(seq & 0xff));
    original.release(1001);
    original.append(2000, (dst, seq) => dst.fill(seq & 0xff));
    const copy = ring.slice();
    const restored = new SendBuffer(4096, 1, ringOf(copy));
    restored.restoreIndices(jsonRoundTrip(original.snapshot()));
    expect([restored.startSeq, restored.endSeq]).toEqual([1001, 5001]);
    expect(copy).toEqual(ring); // bytes untouched
    expect(restored.copyOut(3500, 1400)).toEqual(original.copyOut(3500, 1400));
  });

  it('refuses indices of a ring of another capacity', () => {
    const original = new SendBuffer(4096, 1);
    expect(() => new SendBuffer(8192, 1).restoreIndices(original.snapshot())).toThrow(SnapshotError);
  });
});

describe('a corrupted snapshot throws SnapshotError and changes nothing', () => {
  /** A snapshot with out-of-order data, in recovery, mid-transfer. */
  const good = (() => {
    const w = new World(transfer({ dropFirst: [{ from: 'a', seq: 1 + 20 * MSS }, { from: 'b', seq: 1 + 3 * MSS }], clone: { moment: 'out-of-order', afterEvent: 0 }, endUs: 400_000 })).run();
    return w.cloneState!;
  })();
  type Json = Record<string, unknown>;
  const corrupt = (edit: (s: Json) => void): TcpEndpointSnapshot => {
    const s = structuredClone(good) as unknown as Json;
    edit(s);
    return s as unknown as TcpEndpointSnapshot;
  };
  const at = (s: Json, path: string): Json => path.split('.').reduce((o, k) => o[k] as Json, s);
  const freshEndpoint = (cc: CongestionControlName = 'newreno', over: Partial<TcpOptions> = {}) =>
    new TcpEndpoint({ ...optionsFor('a', cc), ...over }, identityOf('a'), new LogIo({ next: 0 }, () => {}));

  function expectRefused(snapshot: TcpEndpointSnapshot, message: RegExp, ep = freshEndpoint()): void {
    const before = JSON.stringify(ep.snapshot());
    let error: unknown = null;
    try {
      ep.restore(snapshot);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SnapshotError);
    expect((error as SnapshotError).code).toBe('SNAPSHOT');
    expect((error as SnapshotError).retryable).toBe(false);
    expect((error as Error).message).toMatch(message);
    expect(JSON.stringify(ep.snapshot())).toBe(before);
  }

  it('restores the uncorrupted snapshot', () => {
    expect(good.receiver.outOfOrder.length).toBeGreaterThan(0);
    const ep = freshEndpoint();
    ep.restore(structuredClone(good));
    expect(ep.snapshot()).toEqual(good);
  });

  it('refuses another version', () => {
    expectRefused(corrupt((s) => (s.version = 1)), new RegExp(`version 1.*version ${TCP_SNAPSHOT_VERSION}`));
    expectRefused(corrupt((s) => (at(s, 'sender').version = 0)), /sender\.version/);
  });

  it('refuses a missing field', () => {
    expectRefused(corrupt((s) => delete s.state), /state/);
    expectRefused(corrupt((s) => delete at(s, 'sender.rtt').srttUs), /sender\.rtt\.srttUs/);
    expectRefused(corrupt((s) => delete at(s, 'sender.cc').ssthreshBytes), /sender\.cc\.ssthreshBytes/);
    expectRefused(corrupt((s) => delete at(s, 'receiver').outOfOrder), /receiver\.outOfOrder/);
    expectRefused(corrupt((s) => delete s.delackAtUs), /delackAtUs/);
  });

  it('refuses a field of the wrong type', () => {
    expectRefused(corrupt((s) => (s.state = 'open')), /state/);
    expectRefused(corrupt((s) => (at(s, 'sender').sndUna = String(good.sender.sndUna))), /sender\.sndUna/);
    expectRefused(corrupt((s) => (at(s, 'receiver').finReceived = 1)), /receiver\.finReceived/);
    expectRefused(corrupt((s) => (at(s, 'sender').rtoAtUs = 1.5)), /sender\.rtoAtUs/);
    expectRefused(corrupt((s) => (at(s, 'sender.rtt').samples = -1)), /sender\.rtt\.samples/);
    expectRefused(corrupt((s) => (at(s, 'sender.cc').cwndBytes = null)), /sender\.cc\.cwndBytes/);
    expectRefused(corrupt((s) => (at(s, 'sender.cc').name = 'bbr')), /sender\.cc/);
    expectRefused(corrupt((s) => (s.sendBuffer = [1, 2])), /sendBuffer/);
    expectRefused(null as unknown as TcpEndpointSnapshot, /root/);
  });

  it('refuses an unknown field', () => {
    expectRefused(corrupt((s) => (at(s, 'sender').rtoArmed = true)), /sender/);
  });

  it('refuses broken invariants', () => {
    expectRefused(corrupt((s) => (at(s, 'sender').sndNxt = good.sender.sndMax + 1)), /sndUna ≤ sndNxt ≤ sndMax/);
    expectRefused(corrupt((s) => (at(s, 'sendBuffer').endSeq = good.sendBuffer.startSeq + 200_000)), /startSeq ≤ endSeq/);
    expectRefused(corrupt((s) => (at(s, 'receiver').outOfOrder = [...good.receiver.outOfOrder, ...good.receiver.outOfOrder])), /out-of-order pieces/);
    expectRefused(corrupt((s) => (at(s, 'receiver').outOfOrder = [{ seq: good.receiver.rcvNxt + 10, data: 'not base64!' }])), /base64/);
    expectRefused(corrupt((s) => (at(s, 'receiver').outOfOrder = [{ seq: good.receiver.rcvNxt - 10, data: 'AAAA' }])), /out-of-order pieces/);
    // Data is in flight: a persist timer beside it would fire into the sender's assertion.
    expect(good.sender.sndUna).toBeLessThan(good.sender.sndMax);
    expectRefused(corrupt((s) => (at(s, 'sender').persistAtUs = 1_000)), /persist timer needs nothing in flight/);
  });

  it('refuses a snapshot that does not fit the endpoint options', () => {
    expectRefused(structuredClone(good), /uses newreno, this endpoint cubic/, freshEndpoint('cubic'));
    expectRefused(structuredClone(good), /send buffer/, freshEndpoint('newreno', { sndBufBytes: 64 * 1024 }));
    expectRefused(structuredClone(good), /receive buffer/, freshEndpoint('newreno', { rcvBufBytes: 64 * 1024 }));
  });

  it('throws nothing but SnapshotError whatever a field is replaced with', () => {
    const leaves: string[] = [];
    const walk = (o: unknown, path: string[]) => {
      if (typeof o === 'object' && o !== null) for (const [k, v] of Object.entries(o)) walk(v, [...path, k]);
      else leaves.push(path.join('.'));
    };
    walk(good, []);
    fc.assert(
      fc.property(fc.constantFrom(...leaves), fc.jsonValue(), (path, value) => {
        const keys = path.split('.');
        const s = corrupt((root) => {
          const parent = keys.slice(0, -1).reduce((o, k) => o[k] as Json, root);
          parent[keys.at(-1)!] = value;
        });
        try {
          freshEndpoint().restore(s);
        } catch (e) {
          expect(e).toBeInstanceOf(SnapshotError);
        }
      }),
      { numRuns: 300 },
    );
  });
});
