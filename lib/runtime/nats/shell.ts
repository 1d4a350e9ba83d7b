import { errors, headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { decodeBatch, encodeBatch } from '../../codec/batch.js';
import { decode, encode } from '../../codec/codec.js';
import type { WireMessage } from '../../codec/messages.js';
import { isControlSubject, messageTypeOf } from '../../codec/subjects.js';
import { parseConfig } from '../../config/parse.js';
import { DecodeError, InvariantError, SpeculaError, TransportError, UnknownSubjectError } from '../../errors.js';
import type { LeaseStore } from '../../lease/types.js';
import type { SpanRecord } from '../../tracing/model.js';
import type { TracePropagation } from './otel.js';
import type { Hop } from '../sim/sim-runtime.js';
import { START, type Core, type Effect, type Input } from '../types.js';
import { addTo, mergeHistograms, type Histogram } from '../../results/histogram.js';
import { monotonicClock, wallClock, type Clock } from './clock.js';
import { LeaseEffectRunner, type LeaseRunnerCounters } from './lease-runner.js';
import { LinkGate, type LinkGateCounters } from './link-gate.js';
import type { Logger } from './logger.js';
import { natsShellLimitsSchema, type NatsShellLimits } from './options.js';
import { LogThrottle } from './log-throttle.js';

/** Subjects whose connection the shell remembers; a VM's own are a few dozen. */
const ROUTES_CACHED_MAX = 4096;

/** An emulated link applied to one subject before the core sees its messages. */
export interface InboundLink {
  readonly subject: string;
  readonly hop: Hop;
  /** Bytes its gate may hold (LinkGate.maxPendingBytes), for a hop with no byte bound of its own; none: limits.maxPendingDeliveryBytes. */
  readonly maxPendingBytes?: number;
}

/** Headers the shells use on the bus. */
export const HEADER_BATCH = 'Specula-Batch';
export const HEADER_HOST = 'Specula-Host';
export const HEADER_CLOCK_US = 'Specula-Clock-Us';
/** Receipts of stamped messages are read on the Unix time line the stamps are on, whatever the receiving core's clock. */
const RECEIPT_CLOCK = wallClock();
/** W3C trace context (lib/runtime/nats/otel.ts). */
export const HEADER_TRACEPARENT = 'traceparent';
/** One task's consecutive sends to one subject are batched up to this many payload bytes (well under any server's max_payload). */
export const BATCH_MAX_BYTES = 60 * 1024;
/** One input that keeps the core busy this long stalls every timer of the process (heartbeats, reports): logged. */
export const SLOW_INPUT_US = 250_000;
/** The longest delay setTimeout takes as given (2^31 − 1 ms, about 24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export interface NatsShellOptions {
  readonly logger: Logger;
  /**
   * Stop drains and closes the connection (a process with one core). False:
   * the caller owns it and drains it after stopping every shell on it.
   */
  readonly ownsConnection?: boolean;
  /**
   * Publications on these subjects carry the publishing host (none: the
   * client) and its clock reading, as Unix µs, in headers, so an auditor can
   * check them against that host's release permit, and a receiver's emulated
   * link can start at the send. The reading is the time the core was given
   * for the step that sent them, when it checked its permit (docs/fencing.md:
   * the check counts; the time from the check to the bytes leaving is what
   * leaseSafetyMs covers), not the later instant of the publish.
   */
  readonly stamp?: { readonly host: string | null; readonly subjects: ReadonlySet<string> };
  /** Wall clock; a monotonic one starting at 0 by default. */
  readonly clock?: Clock;
  readonly inboundLinks?: readonly InboundLink[];
  readonly limits?: Partial<NatsShellLimits>;
  /** Called after every input the core handled and its effects were applied. */
  readonly afterInput?: () => void;
  /** Serves the core's lease effects; without one a lease effect is a bug (InvariantError). */
  readonly leaseStore?: LeaseStore;
  /** Receives the core's spans, with its clock (the process's exporter); none: they are counted and dropped. */
  readonly onSpan?: (span: SpanRecord, clock: Clock) => void;
  /** W3C trace context in the headers of messages that carry a sampled byte (traced processes). */
  readonly propagation?: TracePropagation;
  /**
   * A second connection for the control plane's subjects (isControlSubject:
   * status reports, assignments, permits, heartbeats, role changes), which
   * then never queue behind the data connection's backlog. The caller owns
   * it; none: everything on `nc`.
   */
  readonly controlConnection?: NatsConnection;
}

export interface ShellCounters extends LeaseRunnerCounters {
  /** Messages received from NATS on the core's subjects (before any link): each of a batch, and each bus message that did not decode. */
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  bytesOut: number;
  /** Payloads that did not decode; dropped. */
  decodeErrors: number;
  /** Messages on a subject with no known message type; dropped. */
  unknownSubjects: number;
  /** Messages an emulated link handed on after the core had dropped its subject (a role changed while they crossed it): dropped, as the simulator delivers only to whom subscribes at arrival. */
  linkDeliveriesUnsubscribed: number;
  /** Publishes that failed (connection closed or draining); dropped. */
  publishErrors: number;
  /** Messages sent while their connection was down, dropped here: nats.js would hold them without bound and discard them at its next dial. */
  publishesWhileDisconnected: number;
  /** Messages the core no longer allowed to leave when their turn to be sent came (its release permit had ended: Core.mayStillSend), dropped as the wire would lose them. */
  sendsExpired: number;
  /** Errors a subscription reported (a permission refused, a slow consumer's overflow); what they concerned is lost. */
  subscriptionErrors: number;
  /** Bus messages that carried several messages of one subject (each is counted in messagesOut too). */
  batchesOut: number;
  batchesIn: number;
  /** Inputs handed to the core: start, messages, timers and lease results. */
  inputsHandled: number;
  timersFired: number;
  /**
   * Publishes and subscriptions the server refused for this connection's
   * user (a deployment whose NATS permissions miss a subject the service
   * needs); the message is lost, each is logged with its subject.
   */
  permissionViolations: number;
  /** Other errors the server reported on this shell's connections, and slow-consumer events (the client fell behind its subscriptions). */
  natsErrors: number;
  slowConsumers: number;
  /** Spans the core reported (traced runs only), and those dropped for want of an exporter. */
  spans: number;
  spansDropped: number;
  /** Messages that came with a traceparent naming a trace none of them belongs to here: services that sample differently. */
  traceContextMismatches: number;
  /** Times a connection to the server (the data one or the control one) was lost (and, maybe, regained). */
  disconnects: number;
  reconnects: number;
  /** Most bus messages one task's sends made. */
  outboxMaxBatches: number;
  /** Wall time spent in the core's handle (the busy part of the process), in total and at most for one input. */
  handleUsTotal: number;
  handleUsMax: number;
  /** Inputs that took the core over SLOW_INPUT_US each (each one logged with what it was). */
  slowInputs: number;
  /** Most a timer fired after its deadline: how long the process's event loop was kept from it (a starved or overloaded process). */
  timerLateUsMax: number;
  /** The core's log lines held back: more than LOG_BURST of one event in LOG_INTERVAL_MS (the next one says how many). */
  logsSuppressed: number;
}

export type ShellState = 'new' | 'running' | 'stopping' | 'stopped' | 'failed';

interface TimerSlot {
  /** When the core wants it to fire; null when cancelled or fired. */
  deadlineUs: number | null;
  /** A setTimeout, or a setImmediate for a deadline already past when armed. */
  handle: NodeJS.Timeout | NodeJS.Immediate | null;
  immediate: boolean;
  /** When the live setTimeout is due; meaningful while `handle` is set. */
  armedAtUs: number;
}

interface OutboxBatch {
  readonly subject: string;
  readonly parts: Uint8Array[];
  bytes: number;
  stepUs: number;
  /** W3C trace context of the first part that carries a sampled byte. */
  traceparent: string | null;
}

/** The core's log lines of one event let through per LOG_INTERVAL_MS; the rest are counted. */
const LOG_BURST = 20;
const LOG_INTERVAL_MS = 10_000;

type ErrorKind = 'decode' | 'unknownSubject' | 'publish' | 'subscription' | 'lease';

/**
 * Hosts one Core on a NATS connection: subscribes to the core's subjects,
 * decodes what arrives (bad input is counted and dropped, never fatal), feeds
 * the core with wall time and interprets its effects. The shell owns the
 * connection: stop() drains it. A core that throws or a connection that
 * closes under it fails the shell (`done` rejects).
 */
export class NatsShell {
  /**
   * The bus's delay of each stamped message received (the sender's step, as
   * Unix µs, to this receipt, before any link), µs. Log buckets: its
   * size grows with the spread of the delays, never with their count. Across
   * machines it holds their clocks' offset too.
   */
  readonly busHopUs: Histogram = {};
  readonly counters: ShellCounters = {
    messagesIn: 0,
    bytesIn: 0,
    messagesOut: 0,
    bytesOut: 0,
    decodeErrors: 0,
    unknownSubjects: 0,
    linkDeliveriesUnsubscribed: 0,
    publishesWhileDisconnected: 0,
    sendsExpired: 0,
    publishErrors: 0,
    subscriptionErrors: 0,
    batchesOut: 0,
    batchesIn: 0,
    inputsHandled: 0,
    timersFired: 0,
    permissionViolations: 0,
    natsErrors: 0,
    slowConsumers: 0,
    spans: 0,
    spansDropped: 0,
    traceContextMismatches: 0,
    disconnects: 0,
    reconnects: 0,
    outboxMaxBatches: 0,
    handleUsTotal: 0,
    handleUsMax: 0,
    slowInputs: 0,
    timerLateUsMax: 0,
    logsSuppressed: 0,
    leaseOps: 0,
    leaseConflicts: 0,
    leaseUnavailable: 0,
    leaseRefused: 0,
    leaseTimeouts: 0,
    leaseErrors: 0,
  };
  /** Resolves when the shell stopped cleanly; rejects with what failed it. */
  readonly done: Promise<void>;
  readonly clock: Clock;
  readonly #gates = new Map<string, LinkGate>();
  readonly #timers = new Map<string, TimerSlot>();
  /** Subject → subscription, as the core's current list asks. */
  readonly #subscriptions = new Map<string, Subscription>();
  /** The list last synced: a core replaces it (a new array) when its role changes. */
  #subscribedList: readonly string[] = [];
  /**
   * Subject → the connection it travels on: a cache of isControlSubject,
   * emptied at ROUTES_CACHED_MAX (assignments may name any peer host). It
   * also tells this shell's subjects in a permission violation on a shared
   * connection: a subject is put back at its next publish, before the
   * server's answer to it, so only a violation of a subject published just
   * before an emptying goes uncounted.
   */
  readonly #routes = new Map<string, NatsConnection>();
  /** Sends of the current task, in order; flushed when it ends (bounded: one task's effects). */
  #outbox: OutboxBatch[] = [];
  #flushQueued = false;
  readonly #loggedErrors = new Set<ErrorKind>();
  /** Each log line is a synchronous write to stderr: a flood of one event must not stall the process. */
  readonly #logThrottle = new LogThrottle(LOG_BURST, LOG_INTERVAL_MS);
  readonly #log: Logger;
  readonly #leases: LeaseEffectRunner | null;
  #state: ShellState = 'new';
  /** False between a disconnect of the data connection and its reconnect: drain would only time out then. */
  #connected = true;
  /** The same for the control connection, if there is one. */
  #controlConnected = true;
  /** What the core was last told: connected only while both connections are (its control subjects ride the second). */
  #coreToldConnected = true;
  #resolve!: () => void;
  #reject!: (err: Error) => void;

  constructor(
    readonly core: Core,
    readonly nc: NatsConnection,
    readonly options: NatsShellOptions,
  ) {
    this.clock = options.clock ?? monotonicClock();
    this.#log = options.logger;
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // A caller that only awaits stop() must not see an unhandled rejection.
    this.done.catch(() => undefined);
    const limits = parseConfig(natsShellLimitsSchema, options.limits ?? {});
    // A link may front a subject the core subscribes to only in some roles (the acker's wire.in).
    for (const link of options.inboundLinks ?? []) {
      this.#gates.set(link.subject, new LinkGate(link.hop, limits.maxPendingDeliveries, link.maxPendingBytes ?? limits.maxPendingDeliveryBytes, this.clock, (subject, msg) => this.#deliverFromLink(subject, msg)));
    }
    this.#leases =
      options.leaseStore === undefined
        ? null
        : new LeaseEffectRunner({
            store: options.leaseStore,
            maxInFlight: limits.maxLeaseOpsInFlight,
            opTimeoutMs: limits.leaseOpTimeoutMs,
            counters: this.counters,
            deliver: (result) => this.#input({ kind: 'leaseResult', result }),
            fail: (err) => this.#fail(err),
            onError: (err) => this.#logOnce('lease', { err: err instanceof Error ? err.message : String(err) }, 'lease store error, answered as unavailable (logged once; see counters)'),
          });
  }

  get state(): ShellState {
    return this.#state;
  }

  /** Running, and connected to a server now (a health check's readiness). */
  get serving(): boolean {
    return this.#state === 'running' && this.#connected && this.#controlConnected;
  }

  /** The data connection is up (reports ride it; what is published while it is down is lost). */
  get dataConnected(): boolean {
    return this.#connected;
  }

  /** Every emulated link's counters by subject (what each dropped at its bound is in its reports). */
  get linksCounters(): Record<string, LinkGateCounters> {
    return Object.fromEntries([...this.#gates].map(([subject, gate]) => [subject, gate.counters]));
  }

  /** How late this process's emulated links handed messages on, after the links' arrival times (µs; empty without links). */
  get linkLateUs(): Histogram {
    return mergeHistograms([...this.#gates.values()].map((g) => g.lateUs));
  }

  /**
   * Subscribes, hands the core START and resolves once the server has
   * registered the subscriptions (so a peer may publish to us from then on).
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new TypeError(`start() on a ${this.#state} shell`);
    this.#state = 'running';
    void this.#watchConnection();
    // Subscribing and START happen in one tick: nothing can arrive in between,
    // and START's publishes follow the subscriptions on the wire.
    this.#syncSubscriptions();
    this.#input(START);
    this.#log.info({ event: 'shell.started', subjects: this.core.subscriptions }, 'shell started');
    try {
      await Promise.all([this.nc.flush(), this.options.controlConnection?.flush()]);
    } catch (cause) {
      const err = new TransportError(`NATS flush failed while starting ${this.core.name}`, { cause });
      this.#fail(err);
      throw err;
    }
  }

  /** Stops timers and links, drains the connection; idempotent. */
  async stop(reason = 'stop'): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped' || this.#state === 'failed') return this.done.catch(() => undefined);
    this.#state = 'stopping';
    this.#log.info({ event: 'shell.stopping', reason, counters: this.counters }, 'shell stopping');
    this.#flushOutbox(); // what the core sent before the stop still leaves
    this.#quiesce();
    if (this.options.ownsConnection !== false) {
      try {
        if (!this.#connected) await this.nc.close();
        else if (!this.nc.isClosed()) await this.nc.drain();
      } catch (cause) {
        this.#log.warn({ event: 'shell.drain_failed', err: String(cause) }, 'drain failed; closing');
        await this.nc.close().catch(() => undefined);
      }
    }
    this.#state = 'stopped';
    this.#resolve();
  }

  #quiesce(): void {
    // On a shared connection the other shells go on: this one's subscriptions go now.
    if (this.options.ownsConnection === false) for (const sub of this.#subscriptions.values()) if (!sub.isClosed()) sub.unsubscribe();
    this.#subscriptions.clear();
    for (const slot of this.#timers.values()) disarm(slot);
    this.#timers.clear();
    for (const gate of this.#gates.values()) gate.stop();
    this.#leases?.stop();
  }

  #fail(err: Error): void {
    if (this.#state === 'stopped' || this.#state === 'failed') return;
    this.#state = 'failed';
    this.#outbox = [];
    this.#log.error({ event: 'shell.failed', err: err.message, code: err instanceof SpeculaError ? err.code : undefined, counters: this.counters }, 'shell failed');
    this.#quiesce();
    this.#reject(err);
    if (this.options.ownsConnection !== false && !this.nc.isClosed()) void this.nc.close().catch(() => undefined);
  }

  async #watchConnection(): Promise<void> {
    for (const [nc, which] of [[this.nc, ''], [this.options.controlConnection, 'control ']] as const) {
      void nc?.closed().then((err) => {
        if (this.#state !== 'running') return;
        this.#fail(new TransportError(`NATS ${which}connection closed under ${this.core.name}${err ? `: ${err.message}` : ''}`, { cause: err }));
      });
    }
    const control = this.options.controlConnection;
    await Promise.all([this.#watchStatus(this.nc, 'data'), control === undefined ? Promise.resolve() : this.#watchStatus(control, 'control')]);
  }

  /**
   * One connection's status events. The core hears of a change only when
   * both connections' state together changes: heartbeats, assignments and
   * role changes travel on the control connection, so a process cut off on
   * either is cut off (on a cluster the two may be on different servers).
   */
  async #watchStatus(nc: NatsConnection, which: 'data' | 'control'): Promise<void> {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          if (which === 'data') this.#connected = false;
          else this.#controlConnected = false;
          this.counters.disconnects++;
          this.#log.warn({ event: 'nats.disconnect', connection: which, server: s.server }, 'disconnected from NATS');
          this.#tellCoreConnection();
          break;
        case 'reconnect':
          if (which === 'data') this.#connected = true;
          else this.#controlConnected = true;
          this.counters.reconnects++;
          this.#log.info({ event: 'nats.reconnect', connection: which, server: s.server }, 'reconnected to NATS');
          this.#tellCoreConnection();
          break;
        case 'error':
          if (s.error instanceof errors.PermissionViolationError) {
            // A connection several VMs' shells share tells each of them: the shell whose subject it is counts it.
            if (!this.#subscriptions.has(s.error.subject) && !this.#routes.has(s.error.subject)) break;
            this.counters.permissionViolations++;
            this.#throttledLog('error', 'nats.permission_violation', { connection: which, operation: s.error.operation, subject: s.error.subject }, 'NATS refused a subject to this user: the deployment\'s permissions miss it');
          } else {
            this.counters.natsErrors++;
            this.#throttledLog('warn', 'nats.error', { connection: which, err: s.error.message }, 'NATS error');
          }
          break;
        case 'slowConsumer':
          this.counters.slowConsumers++;
          this.#throttledLog('warn', 'nats.slow_consumer', { connection: which, pending: s.pending }, 'slow consumer');
          break;
        default:
          break;
      }
    }
  }

  #tellCoreConnection(): void {
    const connected = this.#connected && this.#controlConnected;
    if (connected === this.#coreToldConnected) return;
    this.#coreToldConnected = connected;
    this.#input({ kind: 'connection', connected });
  }

  #onMessage(err: Error | null, m: Msg): void {
    if (this.#state !== 'running') return;
    if (err !== null) {
      this.counters.subscriptionErrors++;
      this.#logOnce('subscription', { err: err.message }, 'subscription error (logged once; see counters)');
      return;
    }
    this.counters.bytesIn += m.data.length;
    // Headers decode on first read and throw on a malformed key: read here, where a throw is a counted bad message, not
    // an exception that would end the connection's read loop.
    let headers: MsgHdrs | undefined;
    try {
      headers = m.headers;
    } catch (cause) {
      this.counters.messagesIn++;
      this.counters.decodeErrors++;
      this.#logOnce('decode', { subject: m.subject, bytes: m.data.length, err: cause instanceof Error ? cause.message : String(cause) }, 'message with malformed headers dropped (logged once; see counters)');
      return;
    }
    const stampedUs = Number(headers?.get(HEADER_CLOCK_US) ?? '');
    // A clock behind the sender's (another machine) reads as no delay rather than a negative one.
    const busHopUs = stampedUs > 0 ? Math.max(0, RECEIPT_CLOCK.nowUs() - stampedUs) : 0;
    if (stampedUs > 0) addTo(this.busHopUs, busHopUs);
    let msgs: WireMessage[];
    try {
      const type = messageTypeOf(m.subject);
      const batched = headers?.get(HEADER_BATCH) ?? '';
      if (batched !== '') {
        this.counters.batchesIn++;
        msgs = decodeBatch(m.data).map((part) => decode(type, part));
      } else msgs = [decode(type, m.data)];
    } catch (cause) {
      this.counters.messagesIn++; // one bus message, whatever it held
      if (cause instanceof UnknownSubjectError) {
        this.counters.unknownSubjects++;
        this.#logOnce('unknownSubject', { subject: m.subject, err: cause.message }, 'message on an unknown subject dropped (logged once; see counters)');
      } else if (cause instanceof DecodeError) {
        this.counters.decodeErrors++;
        this.#logOnce('decode', { subject: m.subject, bytes: m.data.length, err: cause.message }, 'malformed payload dropped (logged once; see counters)');
      } else {
        this.#fail(cause instanceof Error ? cause : new Error(String(cause)));
      }
      return;
    }
    const traceparent = this.options.propagation === undefined ? '' : (headers?.get(HEADER_TRACEPARENT) ?? '');
    if (traceparent !== '' && !this.options.propagation!.matches(msgs, traceparent)) this.counters.traceContextMismatches++;
    const gate = this.#gates.get(m.subject);
    // The link's time starts at the send, as in the simulator, where a linked subject takes the link's time and no bus time.
    const sentUs = gate === undefined ? 0 : this.clock.nowUs() - busHopUs;
    for (const msg of msgs) {
      this.counters.messagesIn++;
      if (gate) gate.offer(m.subject, msg, sentUs);
      else this.#input({ kind: 'message', subject: m.subject, msg });
    }
  }

  /** Subscribes to what the core's list adds and unsubscribes what it drops (before the effects go out: a SUB precedes the PUB that asks for an answer). */
  #syncSubscriptions(): void {
    const wanted = this.core.subscriptions;
    if (wanted === this.#subscribedList) return;
    for (const [subject, sub] of this.#subscriptions) {
      if (wanted.includes(subject)) continue;
      sub.unsubscribe();
      this.#subscriptions.delete(subject);
    }
    for (const subject of wanted) {
      if (!this.#subscriptions.has(subject)) this.#subscriptions.set(subject, this.#connectionFor(subject).subscribe(subject, { callback: (err, msg) => this.#onMessage(err, msg) }));
    }
    this.#subscribedList = wanted;
  }

  #connectionFor(subject: string): NatsConnection {
    const control = this.options.controlConnection;
    if (control === undefined) return this.nc;
    let nc = this.#routes.get(subject);
    if (nc === undefined) {
      let isControl = false;
      try {
        isControl = isControlSubject(subject);
      } catch (cause) {
        if (!(cause instanceof UnknownSubjectError)) throw cause;
        // An unknown subject goes on the data connection; a receiver counts it.
      }
      nc = isControl ? control : this.nc;
      if (this.#routes.size >= ROUTES_CACHED_MAX) this.#routes.clear();
      this.#routes.set(subject, nc);
    }
    return nc;
  }

  /** A core's log, or a server's status event (a refused subject is refused at every publish), through the log throttle. */
  #throttledLog(level: Extract<Effect, { kind: 'log' }>['level'], event: string, fields: Record<string, unknown>, text: string): void {
    const held = this.#logThrottle.admit(event);
    if (held === null) this.counters.logsSuppressed++;
    else this.#log[level]({ event, ...fields, ...(held > 0 ? { suppressedSinceLast: held } : {}) }, text);
  }

  #logOnce(kind: ErrorKind, fields: Record<string, unknown>, text: string): void {
    if (this.#loggedErrors.has(kind)) return;
    this.#loggedErrors.add(kind);
    this.#log.warn({ event: `shell.${kind}`, ...fields }, text);
  }

  /** A message leaves an emulated link: to the core if it still subscribes to the subject, as the simulator delivers. */
  #deliverFromLink(subject: string, msg: WireMessage): void {
    if (!this.#subscriptions.has(subject)) {
      this.counters.linkDeliveriesUnsubscribed++;
      return;
    }
    this.#input({ kind: 'message', subject, msg });
  }

    #input(input: Input): void {
    if (this.#state !== 'running') return;
    // Everything an input leads to runs inside the try: a throw escaping into a
    // subscription callback would end the connection's read loop (nats.js
    // only logs it) and leave a deaf shell that still says it serves; one
    // escaping a timer would end the process without its final line.
    try {
      const nowUs = this.clock.nowUs();
      const effects = this.core.handle(input, nowUs);
      const handleUs = this.clock.nowUs() - nowUs;
      this.counters.handleUsTotal += handleUs;
      if (handleUs > this.counters.handleUsMax) this.counters.handleUsMax = handleUs;
      if (handleUs > SLOW_INPUT_US) {
        this.counters.slowInputs++;
        this.#log.warn({ event: 'shell.slow_input', handleUs, input: describeInput(input) }, `one input kept ${this.core.name} busy for ${Math.round(handleUs / 1000)} ms`);
      }
      this.counters.inputsHandled++;
      this.#syncSubscriptions();
      this.#apply(effects, nowUs);
      this.options.afterInput?.();
    } catch (cause) {
      this.#fail(cause instanceof Error ? cause : new Error(String(cause)));
    }
  }

  /** `stepUs`: the time the core was given for the step that produced `effects`. */
  #apply(effects: readonly Effect[], stepUs: number): void {
    for (const effect of effects) {
      switch (effect.kind) {
        case 'send':
          this.#enqueue(effect.subject, encode(effect.msg), stepUs, this.options.propagation?.inject(effect.subject, effect.msg) ?? null);
          break;
        case 'setTimer':
          this.#setTimer(effect.name, effect.atUs);
          break;
        case 'cancelTimer': {
          const slot = this.#timers.get(effect.name);
          if (slot) slot.deadlineUs = null;
          break;
        }
        case 'log':
          this.#throttledLog(effect.level, effect.event, effect.fields ?? {}, effect.event);
          break;
        case 'span':
          this.counters.spans++;
          if (this.options.onSpan) this.options.onSpan(effect.span, this.clock);
          else this.counters.spansDropped++;
          break;
        case 'lease':
          // Without a store, fail loudly rather than leave the core waiting for an answer that never comes.
          if (this.#leases === null) throw new InvariantError(`${this.core.name} asked for a lease, but its shell has no lease store`);
          this.#flushOutbox(); // the store's request follows what the core sent before it
          this.#leases.run(effect.requestId, effect.op);
          break;
      }
    }
  }

  /**
   * Sends wait in the outbox until the current task ends (a microtask), so
   * everything the core sent while handling one read from the socket or one
   * link delivery leaves together, as GSO does: consecutive sends to one
   * subject become one bus message. Order across subjects is kept.
   */
  #enqueue(subject: string, data: Uint8Array, stepUs: number, traceparent: string | null): void {
    const last = this.#outbox[this.#outbox.length - 1];
    if (last !== undefined && last.subject === subject && last.bytes + data.length <= BATCH_MAX_BYTES) {
      last.parts.push(data);
      last.bytes += data.length;
      // One header per bus message: a batch names the trace of its first sampled part.
      last.traceparent ??= traceparent;
      // A stamped batch carries its latest step's clock: a permit check that was late shows.
      last.stepUs = Math.max(last.stepUs, stepUs);
    } else {
      this.#outbox.push({ subject, parts: [data], bytes: data.length, stepUs, traceparent });
      this.counters.outboxMaxBatches = Math.max(this.counters.outboxMaxBatches, this.#outbox.length);
    }
    if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(() => this.#flushOutbox());
    }
  }

  #flushOutbox(): void {
    this.#flushQueued = false;
    const batches = this.#outbox;
    if (batches.length === 0) return;
    this.#outbox = [];
    for (const b of batches) this.#publish(b.subject, b.parts, b.stepUs, b.traceparent);
  }

  #publish(subject: string, parts: readonly Uint8Array[], stepUs: number, traceparent: string | null): void {
    if (this.core.mayStillSend !== undefined && !this.core.mayStillSend(subject, this.clock.nowUs())) {
      this.counters.sendsExpired += parts.length;
      return;
    }
    const data = parts.length === 1 ? parts[0]! : encodeBatch(parts);
    let h: MsgHdrs | undefined;
    if (parts.length > 1) {
      h = natsHeaders();
      h.set(HEADER_BATCH, String(parts.length));
    }
    const stamp = this.options.stamp;
    if (stamp !== undefined && stamp.subjects.has(subject)) {
      h ??= natsHeaders();
      if (stamp.host !== null) h.set(HEADER_HOST, stamp.host);
      h.set(HEADER_CLOCK_US, String(this.clock.toUnixUs(stepUs)));
    }
    if (traceparent !== null) {
      h ??= natsHeaders();
      h.set(HEADER_TRACEPARENT, traceparent);
    }
    const nc = this.#connectionFor(subject);
    if (!(nc === this.nc ? this.#connected : this.#controlConnected)) {
      // nats.js would buffer it without bound and then drop it at its next dial (the outbound buffer is reset): drop it
      // here, counted, as the bus would lose it; the protocol repeats what it needs.
      this.counters.publishesWhileDisconnected += parts.length;
      this.#logOnce('publish', { subject, err: 'disconnected' }, 'message dropped while disconnected (logged once; see counters)');
      return;
    }
    try {
      nc.publish(subject, data, h === undefined ? undefined : { headers: h });
    } catch (cause) {
      this.counters.publishErrors++;
      this.#logOnce('publish', { subject, err: cause instanceof Error ? cause.message : String(cause) }, 'publish failed (logged once; see counters)');
      return;
    }
    this.counters.messagesOut += parts.length;
    if (parts.length > 1) this.counters.batchesOut++;
    this.counters.bytesOut += data.length;
  }

  /**
   * Replace semantics: a name holds one deadline. A live setTimeout due no
   * later than the new deadline is kept and re-armed when it fires (so the
   * per-ACK RTO restarts of TCP cost no timer churn); an earlier deadline
   * replaces it.
   */
  #setTimer(name: string, atUs: number): void {
    let slot = this.#timers.get(name);
    if (slot === undefined) {
      slot = { deadlineUs: null, handle: null, immediate: false, armedAtUs: 0 };
      this.#timers.set(name, slot);
    }
    slot.deadlineUs = atUs;
    if (slot.handle !== null && slot.armedAtUs <= atUs) return;
    this.#arm(name, slot, atUs);
  }

  #arm(name: string, slot: TimerSlot, atUs: number): void {
    disarm(slot);
    slot.armedAtUs = atUs;
    const waitUs = atUs - this.clock.nowUs();
    // A deadline already past (the core's step took longer than the time it modelled) fires this turn,
    // not after setTimeout's 1 ms minimum.
    slot.immediate = waitUs <= 0;
    // Node fires a delay beyond MAX_TIMEOUT_MS after 1 ms: a deadline weeks ahead (a lease record from a clock set far
    // forward) would spin. Waking at the cap finds the deadline still ahead and waits again.
    slot.handle = slot.immediate ? setImmediate(() => this.#onTimer(name, slot)) : setTimeout(() => this.#onTimer(name, slot), Math.min(Math.ceil(waitUs / 1000), MAX_TIMEOUT_MS));
  }

  #onTimer(name: string, slot: TimerSlot): void {
    slot.handle = null;
    if (this.#state !== 'running' || slot.deadlineUs === null) return;
    // setTimeout counts from the event loop's cached time and can fire a little early.
    if (slot.deadlineUs > this.clock.nowUs()) {
      this.#arm(name, slot, slot.deadlineUs);
      return;
    }
    const lateUs = this.clock.nowUs() - slot.deadlineUs;
    if (lateUs > this.counters.timerLateUsMax) this.counters.timerLateUsMax = lateUs;
    slot.deadlineUs = null;
    this.counters.timersFired++;
    this.#input({ kind: 'timer', name });
  }
}

function disarm(slot: TimerSlot): void {
  const h = slot.handle;
  if (h === null) return;
  if (slot.immediate) clearImmediate(h as NodeJS.Immediate);
  else clearTimeout(h as NodeJS.Timeout);
  slot.handle = null;
}

/** What an input was, for a log line: its kind, and the message type and subject or the timer name. */
function describeInput(input: Input): string {
  switch (input.kind) {
    case 'message':
      return `message ${input.msg.type} on ${input.subject}`;
    case 'timer':
      return `timer ${input.name}`;
    default:
      return input.kind;
  }
}
