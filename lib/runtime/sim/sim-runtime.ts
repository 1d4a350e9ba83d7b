import { assert } from '../../assert.js';
import { decode, encode } from '../../codec/codec.js';
import type { SpanRecord } from '../../tracing/model.js';
import type { WireMessage } from '../../codec/messages.js';
import { messageTypeOf } from '../../codec/subjects.js';
import { START, type Core, type Effect, type LeaseOp, type LeaseResult, type LogLevel } from '../types.js';
import { EventLane, EventQueue } from './event-queue.js';
import { HostClock } from './host-clock.js';

/**
 * A hop between publisher and subscribers of one subject (an emulated link).
 * Returns the arrival time at the far end, or DROPPED.
 */
export interface Hop {
  transit(msg: WireMessage, nowUs: number): number;
}
export const DROPPED = -1;

export interface SimRuntimeOptions {
  /** Encode and decode every message through the real protobuf codec. */
  readonly wireCheck: boolean;
  /** Delivery delay of a bus message without a hop (same-host IPC). */
  readonly busDelayUs: number;
  /** Receives every log effect; none by default (hot paths log nothing). */
  readonly onLog?: (entry: SimLogEntry) => void;
  /** Receives every span, with who reported it (its times are on that actor's clock). */
  readonly onSpan?: (span: SpanRecord, from: Publisher) => void;
  /** Drops a message on the bus (fault injection: partitions); counted as dropped. */
  readonly dropOnBus?: (subject: string, msg: WireMessage, nowUs: number) => boolean;
  /** Sees every message as it is published, with who published it (the simulator's auditor watches here). */
  readonly onPublish?: (subject: string, msg: WireMessage, nowUs: number, from: Publisher) => void;
  /** Answers lease operations (the lease store of the simulated world). */
  readonly leaseStore?: SimLeaseStore;
  /** Rewrites a message between hop and subscribers: fault tests only. */
  readonly tamper?: (subject: string, msg: WireMessage) => WireMessage;
  /**
   * Bus faults: the extra delay of each copy to deliver (empty: the message is
   * lost; two entries: duplicated), or null to deliver it once as usual. Extra
   * delay comes after the hop, so it reorders messages, across subjects too.
   */
  readonly perturb?: (subject: string, msg: WireMessage, nowUs: number) => readonly number[] | null;
  /**
   * A busy bus and scheduler: the extra delay of one message on `subject`,
   * drawn per message, or null for a subject without jitter. Unlike a bus
   * fault it never reorders: a subject's messages arrive in the order they
   * were published, as NATS delivers one publisher's messages.
   */
  readonly jitterUs?: (subject: string) => number | null;
}

/** A lease store the simulator consults; its answer reaches the asking actor after `latencyUs`. */
export interface SimLeaseStore {
  /** `caller` is the asking actor's name, so a partition can cut one host off the store. */
  apply(op: LeaseOp, nowUs: number, caller: string): Omit<LeaseResult, 'requestId'>;
  readonly latencyUs: number;
}

export interface SimLogEntry {
  readonly atUs: number;
  readonly actor: string;
  readonly level: LogLevel;
  readonly event: string;
  readonly fields?: Readonly<Record<string, unknown>>;
}

const enum EventKind {
  Start,
  Deliver,
  Timer,
  LeaseAnswer,
  Connection,
}

interface TimerSlot {
  readonly name: string;
  /** When the core wants the timer to fire; null when cancelled or fired. */
  deadlineUs: number | null;
  /** Time of the live heap entry for this slot; null when none. */
  armedAtUs: number | null;
  /** Generation of the live heap entry; older entries are stale. */
  gen: number;
}

/** Who published a message: the actor, the machine it runs on and that machine's clock. */
export interface Publisher {
  readonly actor: string;
  /** The host it runs on; null for actors outside the hosts (the client, the failover service). */
  readonly host: string | null;
  readonly clock: HostClock;
}

/** Where an actor runs: its host (if any) and the clock it reads. */
export interface Placement {
  readonly host?: string;
  readonly clock?: HostClock;
}

const EXACT_CLOCK = new HostClock();

interface ActorSlot {
  readonly core: Core;
  readonly timers: Map<string, TimerSlot>;
  readonly publisher: Publisher;
  readonly clock: HostClock;
  /** The subscription list last registered: a core may change its list after any input. */
  subscribed: readonly string[];
  /** False once removed (its host crashed): its timers and pending inputs vanish. */
  alive: boolean;
}

class SimEvent {
  order = 0;
  lane: EventLane<SimEvent> | null = null;
  constructor(
    public atUs: number,
    readonly kind: EventKind,
    readonly actor: ActorSlot | null,
    readonly subject: string,
    readonly msg: WireMessage | null,
    readonly timer: TimerSlot | null,
    readonly gen: number,
    readonly lease: LeaseResult | null = null,
    readonly connected: boolean | null = null,
  ) {}
}

/**
 * The deterministic runtime: virtual time in integer microseconds, one event
 * queue, an in-memory bus. Same actors + same seed ⇒ the same run, always.
 */
export class SimRuntime {
  readonly #queue = new EventQueue<SimEvent>();
  readonly #actors: ActorSlot[] = [];
  readonly #subscribers = new Map<string, ActorSlot[]>();
  /** Each subject's hop, and its deliveries' lane: in time order, one lane per hop (shared by the subjects it carries). */
  readonly #hops = new Map<string, { readonly hop: Hop; readonly lane: EventLane<SimEvent> }>();
  /** Deliveries without a hop: the bus's delay is fixed, so they too come in time order. */
  readonly #busLane = new EventLane<SimEvent>();
  /** The latest arrival of each jittered subject (one entry per subject of the world's topology). */
  readonly #jitteredUntilUs = new Map<string, number>();
  #nowUs = 0;
  #eventsProcessed = 0;
  #messagesPublished = 0;
  #messagesDropped = 0;
  #messagesDuplicated = 0;

  constructor(readonly options: SimRuntimeOptions) {}

  get nowUs(): number {
    return this.#nowUs;
  }
  get eventsProcessed(): number {
    return this.#eventsProcessed;
  }
  get messagesPublished(): number {
    return this.#messagesPublished;
  }
  get messagesDropped(): number {
    return this.#messagesDropped;
  }
  /** Extra copies delivered by bus faults. */
  get messagesDuplicated(): number {
    return this.#messagesDuplicated;
  }

  /** Adds an actor; it starts now. Its times are read on `placement.clock` (true time by default). */
  addActor(core: Core, placement: Placement = {}): void {
    const clock = placement.clock ?? EXACT_CLOCK;
    const slot: ActorSlot = { core, timers: new Map(), publisher: { actor: core.name, host: placement.host ?? null, clock }, clock, subscribed: [], alive: true };
    this.#actors.push(slot);
    // Subscribed when it starts: a process that is not up yet gets nothing, and START always comes first.
    this.#queue.push(new SimEvent(this.#nowUs, EventKind.Start, slot, '', null, null, 0));
  }

  /** Tells a running actor, now, that its connection to the bus went (false) or came back (true), as a NATS shell does. */
  connection(core: Core, connected: boolean): void {
    const slot = this.#actors.find((a) => a.core === core);
    assert(slot !== undefined, () => `${core.name} is not running`);
    this.#queue.push(new SimEvent(this.#nowUs, EventKind.Connection, slot, '', null, null, 0, null, connected));
  }

  /** The local time an actor's clock reads now. */
  localNowUs(core: Core): number {
    const slot = this.#actors.find((a) => a.core === core);
    assert(slot !== undefined, () => `${core.name} is not running`);
    return slot.clock.localUs(this.#nowUs);
  }

  /** Brings the subscriber lists in line with the core's current list (new arrays: a delivery in progress is unaffected). */
  #subscribe(slot: ActorSlot): void {
    const wanted = slot.core.subscriptions;
    for (const subject of slot.subscribed) if (!wanted.includes(subject)) this.#unsubscribeOne(slot, subject);
    for (const subject of wanted) if (!slot.subscribed.includes(subject)) this.#subscribers.set(subject, [...(this.#subscribers.get(subject) ?? []), slot]);
    slot.subscribed = wanted;
  }

  #unsubscribeOne(slot: ActorSlot, subject: string): void {
    const list = this.#subscribers.get(subject)?.filter((a) => a !== slot) ?? [];
    if (list.length > 0) this.#subscribers.set(subject, list);
    else this.#subscribers.delete(subject);
  }

  /**
   * Removes an actor, as when its host crashes: it gets no more messages, its
   * timers never fire, and its state is simply gone.
   */
  removeActor(core: Core): void {
    const index = this.#actors.findIndex((a) => a.core === core);
    assert(index >= 0, () => `removing ${core.name}, which is not running`);
    const slot = this.#actors[index]!;
    slot.alive = false;
    this.#actors.splice(index, 1);
    for (const subject of slot.subscribed) this.#unsubscribeOne(slot, subject);
    slot.subscribed = [];
  }

  isRunning(core: Core): boolean {
    return this.#actors.some((a) => a.core === core);
  }

  /** Routes every message published on `subject` through `hop`. */
  addHop(subject: string, hop: Hop): void {
    assert(!this.#hops.has(subject), () => `second hop on ${subject}`);
    const shared = [...this.#hops.values()].find((h) => h.hop === hop);
    this.#hops.set(subject, { hop, lane: shared?.lane ?? new EventLane<SimEvent>() });
  }

  /** Runs events up to and including `untilUs`, or until `stop()` holds. */
  runUntil(untilUs: number, stop?: () => boolean): void {
    const queue = this.#queue;
    for (;;) {
      const next = queue.peek();
      if (next === undefined || next.atUs > untilUs) break;
      queue.pop();
      assert(next.atUs >= this.#nowUs, () => `time went back: ${next.atUs} < ${this.#nowUs}`);
      this.#nowUs = next.atUs;
      this.#dispatch(next);
      if (stop?.()) return;
    }
    this.#nowUs = Math.max(this.#nowUs, untilUs);
  }

  #dispatch(ev: SimEvent): void {
    switch (ev.kind) {
      case EventKind.Start:
        if (!ev.actor!.alive) return;
        this.#eventsProcessed++;
        this.#subscribe(ev.actor!);
        this.#apply(ev.actor!, ev.actor!.core.handle(START, ev.actor!.clock.localUs(this.#nowUs)));
        return;
      case EventKind.Deliver: {
        this.#eventsProcessed++;
        const subs = this.#subscribers.get(ev.subject);
        if (subs === undefined) return;
        const input = { kind: 'message', subject: ev.subject, msg: ev.msg! } as const;
        for (const slot of subs) if (slot.alive) this.#apply(slot, slot.core.handle(input, slot.clock.localUs(this.#nowUs)));
        return;
      }
      case EventKind.LeaseAnswer:
        if (!ev.actor!.alive) return;
        this.#eventsProcessed++;
        this.#apply(ev.actor!, ev.actor!.core.handle({ kind: 'leaseResult', result: ev.lease! }, ev.actor!.clock.localUs(this.#nowUs)));
        return;
      case EventKind.Connection:
        if (!ev.actor!.alive) return;
        this.#eventsProcessed++;
        this.#apply(ev.actor!, ev.actor!.core.handle({ kind: 'connection', connected: ev.connected! }, ev.actor!.clock.localUs(this.#nowUs)));
        return;
      case EventKind.Timer: {
        const slot = ev.timer!;
        if (!ev.actor!.alive || ev.gen !== slot.gen) return; // host gone, or superseded by an earlier re-arm
        slot.armedAtUs = null;
        if (slot.deadlineUs === null) return; // cancelled
        if (slot.deadlineUs > this.#nowUs) {
          this.#arm(ev.actor!, slot, slot.deadlineUs); // pushed later: re-arm lazily
          return;
        }
        slot.deadlineUs = null;
        this.#eventsProcessed++;
        this.#apply(ev.actor!, ev.actor!.core.handle({ kind: 'timer', name: slot.name }, ev.actor!.clock.localUs(this.#nowUs)));
        return;
      }
    }
  }

  #apply(actor: ActorSlot, effects: Effect[]): void {
    if (actor.core.subscriptions !== actor.subscribed && actor.alive) this.#subscribe(actor);
    for (const effect of effects) {
      switch (effect.kind) {
        case 'send':
          this.#publish(effect.subject, effect.msg, actor.publisher);
          break;
        case 'setTimer':
          this.#setTimer(actor, effect.name, effect.atUs);
          break;
        case 'cancelTimer': {
          const slot = actor.timers.get(effect.name);
          if (slot) slot.deadlineUs = null;
          break;
        }
        case 'lease': {
          const store = this.options.leaseStore;
          assert(store !== undefined, () => `${actor.core.name} asked for a lease, but this world has no lease store`);
          const result: LeaseResult = { requestId: effect.requestId, ...store.apply(effect.op, this.#nowUs, actor.core.name) };
          this.#queue.push(new SimEvent(this.#nowUs + store.latencyUs, EventKind.LeaseAnswer, actor, '', null, null, 0, result));
          break;
        }
        case 'log':
          this.options.onLog?.({ atUs: this.#nowUs, actor: actor.core.name, level: effect.level, event: effect.event, ...(effect.fields ? { fields: effect.fields } : {}) });
          break;
        case 'span':
          this.options.onSpan?.(effect.span, actor.publisher);
          break;
      }
    }
  }

  #publish(subject: string, original: WireMessage, from: Publisher): void {
    this.#messagesPublished++;
    let msg = original;
    if (this.options.wireCheck) msg = decode(messageTypeOf(subject), encode(msg));
    this.options.onPublish?.(subject, msg, this.#nowUs, from);
    if (this.options.dropOnBus?.(subject, msg, this.#nowUs)) {
      this.#messagesDropped++;
      return;
    }
    const route = this.#hops.get(subject);
    let atUs = route ? route.hop.transit(msg, this.#nowUs) : this.#nowUs + this.options.busDelayUs;
    if (atUs === DROPPED) {
      this.#messagesDropped++;
      return;
    }
    const jitterUs = this.options.jitterUs?.(subject) ?? null;
    if (jitterUs !== null) {
      assert(Number.isInteger(jitterUs) && jitterUs >= 0, () => `bus jitter delays ${subject} by ${jitterUs}µs`);
      atUs = Math.max(atUs + jitterUs, this.#jitteredUntilUs.get(subject) ?? 0);
      this.#jitteredUntilUs.set(subject, atUs);
    }
    assert(atUs >= this.#nowUs, () => `hop on ${subject} delivers in the past`);
    if (this.options.tamper) msg = this.options.tamper(subject, msg);
    const extraDelaysUs = this.options.perturb?.(subject, msg, this.#nowUs) ?? null;
    if (extraDelaysUs === null) {
      this.#queue.pushToLane(route?.lane ?? this.#busLane, new SimEvent(atUs, EventKind.Deliver, null, subject, msg, null, 0));
      return;
    }
    if (extraDelaysUs.length === 0) this.#messagesDropped++;
    else this.#messagesDuplicated += extraDelaysUs.length - 1;
    for (const extraUs of extraDelaysUs) {
      assert(Number.isInteger(extraUs) && extraUs >= 0, () => `bus fault delays ${subject} by ${extraUs}µs`);
      this.#queue.push(new SimEvent(atUs + extraUs, EventKind.Deliver, null, subject, msg, null, 0));
    }
  }

  /** `atUs` is on the actor's clock; the slot keeps true time. */
  #setTimer(actor: ActorSlot, name: string, atUs: number): void {
    assert(Number.isInteger(atUs), () => `timer ${name} at non-integer ${atUs}µs`);
    let slot = actor.timers.get(name);
    if (slot === undefined) {
      slot = { name, deadlineUs: null, armedAtUs: null, gen: 0 };
      actor.timers.set(name, slot);
    }
    const at = Math.max(actor.clock.trueUs(atUs), this.#nowUs);
    slot.deadlineUs = at;
    // A live entry that fires no later than the deadline re-arms itself; only
    // an earlier deadline needs a new heap entry.
    if (slot.armedAtUs === null || slot.armedAtUs > at) this.#arm(actor, slot, at);
  }

  #arm(actor: ActorSlot, slot: TimerSlot, atUs: number): void {
    slot.gen++;
    slot.armedAtUs = atUs;
    this.#queue.push(new SimEvent(atUs, EventKind.Timer, actor, '', null, slot, slot.gen));
  }
}
