import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import { decodeBatch } from '../../lib/codec/batch.js';
import { decode } from '../../lib/codec/codec.js';
import { DecodeError, UnknownSubjectError } from '../../lib/errors.js';
import type { WireMessage } from '../../lib/codec/messages.js';
import { messageTypeOf, parseHostSubject, subjects } from '../../lib/codec/subjects.js';
import type { RunConfig } from '../../lib/config/run-config.js';
import { wallClock } from '../../lib/runtime/nats/clock.js';
import { topologyOf } from '../../lib/topology/index.js';
import { HEADER_BATCH, HEADER_CLOCK_US, HEADER_HOST } from '../../lib/runtime/nats/shell.js';
import { Auditor, type Observation } from './auditor.js';
import type { Violation } from './violations.js';
import { subscribeCounted } from '../../lib/runtime/nats/subscribe.js';

/** What the auditor needs of a VM's traffic: never the checkpoint data itself. */
const AUDITED_HOST_KINDS = ['tx', 'tx.data', 'tx.epoch', 'epoch', 'commit', 'assign.checkpointer', 'permit', 'status'] as const;

export interface BusAuditorOptions {
  /**
   * How long commits and wire output wait before the auditor judges them
   * (0: at once). `forVm` uses CLUSTER_REORDER_WINDOW_MS when the server it
   * is connected to belongs to a cluster, SERVER_REORDER_WINDOW_MS otherwise.
   */
  readonly reorderWindowMs?: number;
  /** How far behind the newest released byte a sender can still send (Auditor); `forVm`: twice tcp.rcvBufBytes. */
  readonly retainedBytes?: number;
}

/**
 * The reorder window on a NATS cluster: routes between servers are TCP
 * connections of their own, and on a loaded machine a server may not run for
 * tens of milliseconds, so messages of different publishers overtake each
 * other by that much.
 */
export const CLUSTER_REORDER_WINDOW_MS = 250;

/**
 * The reorder window on one server. A server hands each publisher's
 * messages on from that publisher's own connection, so on a loaded machine
 * the copy of an acknowledgement meant for the auditor can wait while the
 * checkpointer, which got its copy, commits, and the commit reaches the
 * auditor first: the 10-minute soak on two cores saw three
 * `commit-without-ack`, commits that took up to 30 ms to reach the auditor
 * (their stamps) and came before the acknowledgements they were made on.
 * Four times that.
 */
export const SERVER_REORDER_WINDOW_MS = 120;
/**
 * How long a release past every permit of its host waits for that host's
 * next permit before it is judged without one (Auditor's permitsMayBeLost):
 * longer than the lease store's pause while JetStream elects a new leader
 * for its stream (about 5 s on a 3-server cluster), during which no permit
 * follows the one that may have been lost.
 */
export const PERMIT_VERDICT_WAIT_MS = 15_000;

/** A decoded message waiting out the reorder window. */
interface Held {
  readonly subject: string;
  readonly msgs: readonly WireMessage[];
  readonly observation: Observation;
  readonly dueMs: number;
}

/**
 * Messages held for the reorder window at most. Wire output at 1 Gbit/s is
 * some 86,000 full-size segments a second, unbatched 21,500 in the cluster's
 * 250 ms window: this is half as much again (some 48 MB of segments). Only a
 * publisher flooding wire.out or commit subjects, or an auditor stalled for
 * longer than the window, gets there. Past it the oldest is judged at once,
 * before its window is out (counted): it may then be taken for an effect
 * without its cause, a false alarm, never a missed violation.
 */
export const MAX_HELD_MESSAGES = 32_768;

export interface BusAuditorCounters {
  messages: number;
  /** Messages that did not decode (counted, not audited). */
  undecodable: number;
  /** Effects (commits, wire output) held for the reorder window. */
  held: number;
  /** Held effects judged before their window was out, as MAX_HELD_MESSAGES were held. */
  heldJudgedEarly: number;
  /** Reconnects of the auditor's connection: what was published while it was down, it never got (Auditor.missedMessages). */
  reconnects: number;
  /** Errors on its subscriptions (a subject the server refused it): what they carried, it never saw. */
  subscriptionErrors: number;
}

/**
 * The auditor as a subscriber to one VM's subjects over NATS. It must
 * subscribe before the VM's services start: it learns which host holds which
 * term from their first assignments, and each byte's epoch from its first
 * emission. Messages of different publishers may reach it out of causal
 * order: an acknowledgement may arrive after the commit it caused (on a
 * cluster the routes are separate connections; on one loaded server the
 * copy for the auditor may simply wait), which would read as a commit
 * without an acknowledgement. So the effects that the rules judge (commits,
 * and output on wire.out) are observed `reorderWindowMs` after they arrive,
 * in arrival order, and everything else at once: an effect may then
 * overtake its cause by up to the window without a false violation (and an
 * early effect is caught only when its cause is later than that). Output on wire.out
 * carries its publisher's host and clock in headers (the release permit is
 * checked on that clock); other subjects name their host.
 */
/** Control messages a BusAuditor keeps described for a violation's context. */
const RECENT_KEPT = 64;
/** Segments (the guest's and those released to the client) it keeps for the same. */
const RECENT_SEGMENTS_KEPT = 48;

/** A stamped message says when its publisher sent it (same machine, same clock): what the bus took shows. */
function sentBefore(atUs: number, localUs: number): string {
  return localUs !== atUs ? ` (sent ${Math.round(atUs - localUs)}µs before)` : '';
}

/** One line per message: where it went, what it says about terms, epochs and hosts. */
function describeObserved(subject: string, msg: WireMessage, o: Observation): string {
  const where = `${Math.round(o.atUs)}µs${sentBefore(o.atUs, o.localUs)} ${subject.split('.').slice(2).join('.')}`;
  switch (msg.type) {
    case 'checkpointAck':
      return `${where} ack t${msg.term} e${msg.epoch} ${msg.ok ? 'ok' : `nack${msg.needsBase ? ' needs-base' : ''}`} from ${msg.host}`;
    case 'epochCommit':
      return `${where} commit t${msg.term} e${msg.epoch}`;
    case 'epochBarrier':
      return `${where} barrier t${msg.term} e${msg.epoch}${msg.base ? ` base join ${msg.joinSeq}` : ''} staged ${msg.stagedSources}`;
    case 'assignment':
      return `${where} assignment ${msg.host} ${msg.role} t${msg.term} peer ${msg.peerHost || '-'}${msg.joining ? ' joining' : ''} seq ${msg.seq} inc ${msg.incarnation}`;
    default:
      return `${where} ${msg.type}`;
  }
}

export class BusAuditor {
  readonly auditor: Auditor;
  readonly counters: BusAuditorCounters = { messages: 0, undecodable: 0, held: 0, heldJudgedEarly: 0, reconnects: 0, subscriptionErrors: 0 };
  readonly #subs: Subscription[] = [];
  readonly #wall = wallClock();
  readonly #reorderWindowMs: number;
  readonly #wireOut: string;
  /** Effects waiting out the reorder window, oldest first: at most MAX_HELD_MESSAGES. */
  readonly #held: Held[] = [];
  /** The last RECENT_KEPT control messages judged, a line each: what a violation's report shows of its context. */
  readonly #recent: string[] = [];
  #heldTimer: NodeJS.Timeout | null = null;
  /** The last RECENT_SEGMENTS_KEPT segments judged, as (when, subject kind, term, epoch, connection, seq, end); described on demand. */
  readonly #recentSegments: [number, number, string, number, number, number, number, number][] = [];

  /**
   * The auditor of a VM, or null when its mode has no output commit to audit
   * (native: the guest talks to the client directly), as in the simulator.
   */
  static forVm(nc: NatsConnection, config: RunConfig, onViolation: (v: Violation) => void, options: BusAuditorOptions = {}): BusAuditor | null {
    if (!topologyOf(config).replicated) return null;
    const clustered = (nc.info?.cluster ?? '') !== '';
    return new BusAuditor(nc, config.vmId, onViolation, { reorderWindowMs: options.reorderWindowMs ?? (clustered ? CLUSTER_REORDER_WINDOW_MS : SERVER_REORDER_WINDOW_MS), retainedBytes: 2 * config.tcp.rcvBufBytes });
  }

  constructor(
    readonly nc: NatsConnection,
    readonly vmId: string,
    onViolation: (v: Violation) => void,
    options: BusAuditorOptions = {},
  ) {
    // Core NATS delivers at most once: a permit can reach the netbuffer and not the auditor (a server dying mid-delivery).
    this.auditor = new Auditor(vmId, onViolation, options.retainedBytes, { permitsMayBeLost: true, outputMayArriveLate: true });
    this.#reorderWindowMs = options.reorderWindowMs ?? 0;
    const s = subjects(vmId);
    this.#wireOut = s.wireOut;
    const subscribe = (subject: string) => this.#subs.push(subscribeCounted(nc, subject, (m) => this.#onMessage(m), () => void this.counters.subscriptionErrors++));
    subscribe(s.wireOut);
    subscribe(s.ckptAck);
    for (const kind of AUDITED_HOST_KINDS) subscribe(`specula.${vmId}.h.*.${kind}`);
    void this.#watchConnection();
  }

  async #watchConnection(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type !== 'reconnect' || this.#subs.length === 0) continue;
      this.counters.reconnects++;
      this.auditor.missedMessages();
    }
  }

  /** The first MAX_KEPT_VIOLATIONS violations (Auditor); `violationCount` counts them all. */
  get violations(): readonly Violation[] {
    return this.auditor.violations;
  }

  /**
   * Why "no violation" would prove nothing, or null when the audit saw the
   * bus: a subscription failed, or not one message of the VM arrived.
   */
  get incompleteness(): string | null {
    if (this.counters.subscriptionErrors > 0) return `${this.counters.subscriptionErrors} errors on the auditor's subscriptions to ${this.vmId}'s subjects`;
    if (this.counters.messages === 0) return `the auditor saw no message of ${this.vmId}`;
    return null;
  }

  /** Every violation found, kept or not: what "no violation" must be judged on. */
  get violationCount(): number {
    return this.auditor.stats.violations;
  }

  #onMessage(m: Msg): void {
    const nowUs = this.#wall.nowUs();
    this.auditor.settle(nowUs - PERMIT_VERDICT_WAIT_MS * 1000);
    // Headers decode on first read and throw on a malformed key: read here, where a throw is a counted bad message. As
    // an exception it ended the connection's read loop, and the audit went on seeing nothing.
    let headers: MsgHdrs | undefined;
    try {
      headers = m.headers;
    } catch {
      this.counters.undecodable++;
      return;
    }
    let parts: Uint8Array[];
    let type;
    try {
      type = messageTypeOf(m.subject);
      parts = headers?.get(HEADER_BATCH) ? decodeBatch(m.data) : [m.data];
    } catch (err) {
      if (!(err instanceof DecodeError || err instanceof UnknownSubjectError)) throw err;
      this.counters.undecodable++;
      return;
    }
    const stampedHost = headers?.get(HEADER_HOST) ?? '';
    const stampedClock = Number(headers?.get(HEADER_CLOCK_US) ?? '');
    const host = stampedHost !== '' ? stampedHost : (parseHostSubject(m.subject)?.host ?? null);
    const localUs = Number.isSafeInteger(stampedClock) && stampedClock > 0 ? stampedClock : nowUs;
    const msgs: WireMessage[] = [];
    for (const part of parts) {
      try {
        msgs.push(decode(type, part));
      } catch (err) {
        if (!(err instanceof DecodeError)) throw err;
        this.counters.undecodable++;
      }
    }
    this.counters.messages += msgs.length;
    const observation: Observation = { atUs: nowUs, host, localUs };
    if (this.#reorderWindowMs > 0 && this.#isEffect(m.subject)) {
      this.counters.held++;
      const oldest = this.#held.length >= MAX_HELD_MESSAGES ? this.#held.shift() : undefined;
      if (oldest !== undefined) {
        this.counters.heldJudgedEarly++;
        for (const msg of oldest.msgs) this.#observe(oldest.subject, msg, oldest.observation);
      }
      this.#held.push({ subject: m.subject, msgs, observation, dueMs: nowUs / 1000 + this.#reorderWindowMs });
      this.#heldTimer ??= setTimeout(() => this.#release(), this.#reorderWindowMs);
      return;
    }
    for (const msg of msgs) this.#observe(m.subject, msg, observation);
  }

  /** The messages judged last, oldest first: a violation's context. */
  recent(): readonly string[] {
    return [...this.#recent];
  }

  /**
   * An array the next `count` control messages are described into as they
   * are judged: what came right after a violation (a cause that arrived
   * after its effect shows there).
   */
  following(count: number): readonly string[] {
    const lines: string[] = [];
    this.#followers.push({ left: count, lines });
    return lines;
  }
  readonly #followers: { left: number; readonly lines: string[] }[] = [];

  /** The segments judged last, oldest first, a line each: which epoch each byte range came from, and what left. */
  recentSegments(): readonly string[] {
    return this.#recentSegments.map(([atUs, localUs, kind, term, epoch, connId, seq, end]) => `${Math.round(atUs)}µs${sentBefore(atUs, localUs)} ${kind} t${term} e${epoch} conn ${connId} [${seq}, ${end})`);
  }

  #observe(subject: string, msg: WireMessage, o: Observation): void {
    if (msg.type === 'segment' && msg.payload.length > 0) {
      if (this.#recentSegments.length >= RECENT_SEGMENTS_KEPT) this.#recentSegments.shift();
      const kind = subject === this.#wireOut ? 'released' : `${parseHostSubject(subject)?.host ?? '?'} ${parseHostSubject(subject)?.kind ?? '?'}`;
      this.#recentSegments.push([o.atUs, o.localUs, kind, msg.term, msg.epoch, msg.connId, msg.seq, msg.seq + msg.payload.length]);
    }
    // Control messages only here: segments come by the thousand and would push out the commits and acks around them.
    if (msg.type !== 'segment') {
      const line = describeObserved(subject, msg, o);
      if (this.#recent.length >= RECENT_KEPT) this.#recent.shift();
      this.#recent.push(line);
      for (const f of this.#followers) if (f.left-- > 0) f.lines.push(line);
      if (this.#followers.length > 0 && this.#followers.every((f) => f.left <= 0)) this.#followers.length = 0;
    }
    this.auditor.observe(subject, msg, o);
  }

  /** What the rules judge against what came before: a commit, or output entering the client's link. */
  #isEffect(subject: string): boolean {
    return subject === this.#wireOut || parseHostSubject(subject)?.kind === 'commit';
  }

  /** Observes the held effects that are due (all of them with `all`), in arrival order. */
  #release(all = false): void {
    this.#heldTimer = null;
    const nowMs = this.#wall.nowUs() / 1000;
    let n = 0;
    for (const h of this.#held) {
      if (!all && h.dueMs > nowMs) break;
      for (const msg of h.msgs) this.#observe(h.subject, msg, h.observation);
      n++;
    }
    this.#held.splice(0, n);
    const next = this.#held[0];
    if (next !== undefined) this.#heldTimer = setTimeout(() => this.#release(), Math.max(1, next.dueMs - nowMs));
  }

  /** Observes every held effect now, and judges the releases still waiting for a permit (call it once the traffic has stopped, before reading the violations). */
  flush(): void {
    if (this.#heldTimer !== null) clearTimeout(this.#heldTimer);
    this.#release(true);
    this.auditor.settle();
  }

  /** Unsubscribes, then observes what is still held. */
  close(): void {
    for (const s of this.#subs) s.unsubscribe();
    this.#subs.length = 0;
    this.flush();
  }
}
