import { MAX_CONNECTIONS, type Assignment, type CheckpointAck, type EpochBarrier, type EpochCommit, type EpochEnd, type ReleasePermit, type Segment, type ServiceStatus, type WireMessage } from '../../lib/codec/messages.js';
import { parseHostSubject, subjects, type Subjects } from '../../lib/codec/subjects.js';
import { ByteEpochs, UNSEEN_EPOCH } from './byte-epochs.js';
import { PermitSpans } from './permit-spans.js';
import type { AuditedInvariant, Violation, ViolationRule } from './violations.js';

/** TCP's largest window: 65,535 scaled by 2^14 (RFC 7323). */
const MAX_TCP_WINDOW_BYTES = 65_535 * 2 ** 14;

/** Where and when a message was published. */
export interface Observation {
  /** When it was seen: simulated time, or the auditor's wall clock. */
  readonly atUs: number;
  /** The publisher's host; null for publishers outside the hosts (the client, the failover service). */
  readonly host: string | null;
  /** The publisher's own clock at publication, µs (what its release permit is measured on). */
  readonly localUs: number;
}

export interface AuditorStats {
  messagesSeen: number;
  segmentsChecked: number;
  /** Where released bytes end (last byte's sequence number + 1), summed over connections. */
  bytesReleasedEnd: number;
  /** Guest segments of a connection id no guest has, not tracked. */
  unknownConnections: number;
  promotionsSeen: number;
  /** Assignments of the primary's term from a later agent on its host (it started over, a VM made anew): not the primary's. */
  assignmentsOfRestartedPrimary: number;
  /** Commits on the primary's host at its term after that: the VM made anew's, not judged. */
  commitsOfRestartedPrimary: number;
  /**
   * Released segments whose bytes the auditor never saw emitted (it missed
   * the guest's messages: its connection was cut off): judged by their
   * epoch label alone. Always 0 in the simulator, where it sees everything.
   */
  releasesOfUnseenBytes: number;
  /** Times the auditor was told it missed messages (its own connection to the bus went down and came back). */
  gaps: number;
  /** Releases seen after a gap, before the auditor knew again what was committed: not judged (their term order is). */
  releasesUnjudged: number;
  /**
   * Releases whose permit was not judged: after a gap, no permit of their
   * host and term had been seen since (it may have been renewed while the
   * auditor was cut off; on a cluster, its new server may also not yet route
   * the agent's permits to it when the next commit comes); or the host's next
   * permit showed permits missed that could cover them (permitVerdictsDeferred).
   */
  permitsUnjudged: number;
  /**
   * Permits the auditor never received, told by the numbers of those it did
   * (a permit's seq counts its host's permits under a term). Over NATS a
   * server that dies mid-delivery reaches some subscribers and not others;
   * always 0 in the simulator.
   */
  permitsMissed: number;
  /**
   * Releases no permit of their host the auditor knew of covered, judged
   * when that host's next permit came (permitsMayBeLost): cleared if a permit
   * seen by then covers them (permitsLate), excused if it showed permits
   * missed whose deadline could cover them (permitsUnjudged), violations
   * otherwise.
   */
  permitVerdictsDeferred: number;
  /** Of those, releases a permit that came later covered: it reached the services before the auditor, by more than its reorder window. */
  permitsLate: number;
  /** Holes between a host's permits taken as covered, at MAX_PERMIT_SPANS spans (PermitSpans). */
  permitHolesBridged: number;
  /**
   * Output of an older term that arrived after a newer term's first output
   * but was released before it, by the publishers' clocks
   * (outputMayArriveLate): a publisher paused after handing it to the bus
   * sends it late, as a network may deliver a packet late. Judged by the
   * other rules at its release time.
   */
  olderTermOutputArrivedLate: number;
  /** First commits after a gap, taken as committed without the acknowledgement it may have missed. */
  commitsTrusted: number;
  /**
   * Entries dropped from the maps keyed by message fields (terms' hosts,
   * permits per host and term, assignments per host) at MAX_TRACKED_KEYS:
   * the oldest term goes first. Only a bus with forged hosts or terms gets there.
   */
  trackedKeysDropped: number;
  /** Every violation found, kept or not: what "no violation" is judged on. */
  violations: number;
  /** Violations past MAX_KEPT_VIOLATIONS: counted (here and per rule in `violationCounts`), their details not kept. */
  violationsNotKept: number;
  /** Subjects of guest segments looked up past MAX_CACHED_SUBJECTS cached ones: parsed each time, not cached. */
  subjectsUncached: number;
  /**
   * Byte-epoch entries ahead of the released end merged into the newest one
   * at MAX_ENTRIES_AHEAD (ByteEpochs): only a forged guest stream gets there.
   */
  byteEpochEntriesMerged: number;
  /** Byte-epoch entries behind the released end forgotten at MAX_ENTRIES_BEHIND (a forged stream of tiny ranges). */
  byteEpochEntriesForgottenEarly: number;
}

/**
 * Releases whose permit verdict waits for their host's next permit, at most
 * (permitsMayBeLost). One per segment: a host that keeps releasing without a
 * permit fills it within a few round trips; past it each is judged at once
 * as without the option.
 */
export const MAX_PERMIT_SUSPECTS = 4_096;

/** A release past every permit of its host the auditor knew of, waiting for the host's next permit. */
interface PermitSuspect {
  /** Host and term of the permit it needed. */
  readonly key: string;
  readonly localUs: number;
  readonly o: Observation;
  readonly detail: string;
}

export interface AuditorOptions {
  /**
   * The auditor may lose permits on their way to it while the services
   * they are for get them (over NATS, not in the simulator). A release past
   * every permit of its host it knows of is then judged when that host's
   * next permit comes, whose number shows whether one was lost, and the
   * rest by `settle()`; without it, at once.
   */
  readonly permitsMayBeLost?: boolean;
  /**
   * Output may reach the auditor long after its release (over NATS: a
   * publisher paused between handing it to its connection and the socket
   * taking it). Output of an older term that arrives after a newer term's
   * first output is then a violation only if its publisher's clock says it
   * was released after that output; without it, on arrival (the simulator
   * delivers output at its release).
   */
  readonly outputMayArriveLate?: boolean;
}

/** Keys held in each map whose keys come from message fields (hosts, terms): a forged field cannot grow it past this. */
export const MAX_TRACKED_KEYS = 256;

/**
 * Violations kept with their details (`violations`). A forged wire.out
 * segment makes one each, so a hostile publisher could grow the list without
 * end; past the bound each is counted (`stats.violations`, per rule in
 * `violationCounts`) and still handed to `onViolation`. A hundred is more
 * than anyone reads; the first ones are the ones that explain a run.
 */
export const MAX_KEPT_VIOLATIONS = 100;

/**
 * Subjects whose kind (guest output or not) is cached. A VM has a few hosts,
 * each with two guest output subjects; only forged host names in subjects get
 * past it, and a subject past it is parsed each time (counted), never refused.
 */
export const MAX_CACHED_SUBJECTS = 1_024;

/** What the auditor knows of the primary of the newest term. */
interface PrimaryView {
  readonly host: string;
  readonly term: number;
  /**
   * The incarnation of the agent that made it primary. A later one on its
   * host at its term started over as at the VM's creation: it runs a VM made
   * anew, whose membership changes are not this primary's.
   */
  readonly agentIncarnation: number;
  /** A later agent on its host assigned its term: commits from its host are that process's, not this primary's. */
  startedOver: boolean;
  /** Its backup ('' for none): only this host's acknowledgements commit epochs. */
  peerHost: string;
  /**
   * From this epoch on, commits need the backup's acknowledgement; before
   * it (no backup, or a new one before its base epoch) they are local.
   */
  protectedFromEpoch: number;
  /** The newest epoch whose pause barrier was sent (a repeat of it is not a new barrier). */
  lastBarrierEpoch: number;
  /** A joining backup's base is a barrier of a later epoch than this (the last one sent when it joined). */
  joinedAfterEpoch: number;
  /**
   * The newest join (Assignment.joinSeq): only a base barrier naming it
   * protects (a base the checkpointer sent for an earlier join may still be
   * repeated after the assignment that names this one).
   */
  joinSeq: number;
  /**
   * The backup was given a joining assignment since its last positive
   * acknowledgement: its image started over, so a NACK that needs a base is
   * news even for an epoch it had acknowledged (the primary may never have
   * received that acknowledgement).
   */
  peerStartedOver: boolean;
}

/**
 * Checks DESIGN §5's safety invariants from bus messages alone, as they are
 * published, so it runs the same as the simulator's hook and as a NATS
 * subscriber to a VM's subjects:
 * - output commit: every byte that enters the client's link comes from an
 *   epoch the backup acknowledged (or the primary committed alone while it
 *   had none); a promotion restores an image that holds every byte the
 *   client was sent;
 * - one primary: a term belongs to one host; output never goes back to an
 *   older term; output of a term comes only from its host, and only before
 *   that host's release permit ends on its own clock.
 */
export class Auditor {
  readonly stats: AuditorStats = { messagesSeen: 0, segmentsChecked: 0, bytesReleasedEnd: 0, unknownConnections: 0, promotionsSeen: 0, assignmentsOfRestartedPrimary: 0, commitsOfRestartedPrimary: 0, releasesOfUnseenBytes: 0, gaps: 0, releasesUnjudged: 0, permitsUnjudged: 0, permitsMissed: 0, permitVerdictsDeferred: 0, olderTermOutputArrivedLate: 0, permitsLate: 0, permitHolesBridged: 0, commitsTrusted: 0, trackedKeysDropped: 0, violations: 0, violationsNotKept: 0, subjectsUncached: 0, byteEpochEntriesMerged: 0, byteEpochEntriesForgottenEarly: 0 };
  /** The first MAX_KEPT_VIOLATIONS violations; `stats.violations` counts them all. */
  readonly violations: Violation[] = [];
  /** Every violation, kept or not, per rule. */
  readonly violationCounts: Partial<Record<ViolationRule, number>> = {};
  readonly #s: Subjects;
  /** Per connection (by id − 1): the epoch of every byte the guest emitted, and where released bytes end. */
  readonly #connections = Array.from({ length: MAX_CONNECTIONS }, () => ({ bytes: new ByteEpochs(this.stats), releasedEnd: 0 }));
  /** The newest term whose guest output counts (a deposed primary's guest may still run). */
  #guestTerm = 0;
  #maxWireTerm = 0;
  /** When the newest term's first output was released, on its publisher's clock. */
  #maxWireTermBeganLocalUs = 0;
  /** Which host holds each term, from the agents' assignments. */
  readonly #termHost = new Map<number, string>();
  /** Per host and term: where its permits let output leave, on that host's clock; `sinceGap`: one seen since the last gap; `seq`: the highest number seen. */
  readonly #permits = new Map<string, { term: number; spans: PermitSpans; sinceGap: boolean; seq: number }>();
  #lastPermitKey = { host: '', term: -1, key: '' };
  /** Releases waiting for their host's next permit (permitsMayBeLost), oldest first: at most MAX_PERMIT_SUSPECTS. */
  #suspects: PermitSuspect[] = [];
  #primary: PrimaryView | null = null;
  /** The newest assignment seen per host (incarnation, seq): an agent repeats an assignment a service missed. */
  readonly #assignmentSeen = new Map<string, { incarnation: number; seq: number }>();
  #peerAckedEpoch = 0;
  #localCommittedEpoch = 0;
  /** After a gap, until the primary's next commit says again what is committed. */
  #resyncing = false;

  /**
   * `retainedBytes`: how far behind the newest released byte a sender can
   * still (re)send; the epochs of older bytes are forgotten. A wire sender's
   * flight never exceeds the client's receive window, so twice the largest
   * one (tcp.rcvBufBytes) is safe; the default is twice TCP's largest window.
   */
  constructor(
    readonly vmId: string,
    readonly onViolation: (v: Violation) => void = () => undefined,
    readonly retainedBytes: number = 2 * MAX_TCP_WINDOW_BYTES,
    readonly options: AuditorOptions = {},
  ) {
    this.#s = subjects(vmId);
  }

  /** Byte-epoch entries held over every connection: what a long audit keeps in memory. */
  get byteEpochEntries(): number {
    return this.#connections.reduce((n, c) => n + c.bytes.entries, 0);
  }

  /**
   * The auditor missed messages: its subscription was cut off (over NATS,
   * its connection went down; what was published meanwhile is gone for it).
   * It may have missed acknowledgements, commits, permits and assignments,
   * so until the primary's next commit it judges no release (it counts
   * them), and it takes that commit as committed. Bytes it never saw
   * emitted are judged by their segment's epoch alone (ByteEpochs).
   */
  missedMessages(): void {
    this.#resyncing = true;
    this.stats.gaps++;
    for (const p of this.#permits.values()) p.sinceGap = false;
    for (const c of this.#connections) c.bytes.missedMessages();
  }

  /** Guest bytes the auditor never saw emitted (holes in the streams it saw), over every connection. */
  get unseenGuestBytes(): number {
    return this.#connections.reduce((n, c) => n + c.bytes.unseenBytes, 0);
  }

  /** The newest epoch output may come from. */
  get committedEpoch(): number {
    return Math.max(this.#peerAckedEpoch, this.#localCommittedEpoch);
  }

  /** Which host holds `term`, as the assignments said. */
  holderOf(term: number): string | undefined {
    return this.#termHost.get(term);
  }

  observe(subject: string, msg: WireMessage, o: Observation): void {
    this.stats.messagesSeen++;
    switch (msg.type) {
      case 'segment':
        if (subject === this.#s.wireOut) this.#onRelease(msg, o);
        else if (this.#isGuestTx(subject)) this.#onGuestSegment(msg);
        return;
      case 'assignment':
        if (parseHostSubject(subject)?.kind === 'assign.checkpointer') this.#onAssignment(msg, o);
        return;
      case 'releasePermit':
        this.#onPermit(msg);
        return;
      case 'epochBarrier':
        this.#onBarrier(subject, msg);
        return;
      case 'checkpointAck':
        this.#onAck(msg);
        return;
      case 'epochEnd':
        if (parseHostSubject(subject)?.kind === 'tx.epoch') this.#onEpochEnd(msg);
        return;
      case 'epochCommit':
        this.#onCommit(subject, msg, o);
        return;
      case 'serviceStatus':
        this.#onStatus(msg, o);
        return;
      default:
        return;
    }
  }

  /**
   * Judges the releases still waiting for a permit (permitsMayBeLost) that
   * were observed before `beforeAtUs` (all by default): no permit came to
   * excuse them. Call it once the traffic has stopped, before reading the
   * violations, and now and then meanwhile for the old ones.
   */
  settle(beforeAtUs = Number.POSITIVE_INFINITY): void {
    if (this.#suspects.length === 0 || this.#suspects[0]!.o.atUs >= beforeAtUs) return;
    this.#judgeSuspects((s) => s.o.atUs < beforeAtUs, null, true);
  }

  #onPermit(msg: ReleasePermit): void {
    const key = this.#permitKey(msg.host, msg.term);
    let held = this.#permits.get(key);
    if (held === undefined) {
      this.#makeRoom(this.#permits, (p) => p.term);
      held = { term: msg.term, spans: new PermitSpans(), sinceGap: true, seq: 0 };
      this.#permits.set(key, held);
    }
    const lastSeq = held.seq;
    const bridgedBefore = held.spans.bridged;
    held.spans.add(msg.fromUs, msg.untilUs);
    this.stats.permitHolesBridged += held.spans.bridged - bridgedBefore;
    held.sinceGap = true;
    held.seq = Math.max(lastSeq, msg.seq);
    const missed = Math.max(0, msg.seq - lastSeq - 1);
    this.stats.permitsMissed += missed;
    // A permit lost on the way here came between the last one seen and this one, so it ended no later than this one
    // (a host's deadlines only grow): it may cover a release before this deadline. A late copy (a number seen before)
    // decides nothing against a release it does not cover.
    this.#judgeSuspects((s) => s.key === key, missed > 0 ? msg.untilUs : null, msg.seq > lastSeq);
  }

  /**
   * The suspects `which` picks: cleared if a permit seen since covers them;
   * else excused before `excusedBeforeUs` (null: none); else violations if
   * `final`, or left waiting.
   */
  #judgeSuspects(which: (s: PermitSuspect) => boolean, excusedBeforeUs: number | null, final: boolean): void {
    if (this.#suspects.length === 0) return;
    const waiting: PermitSuspect[] = [];
    for (const s of this.#suspects) {
      if (!which(s)) waiting.push(s);
      else if (this.#permits.get(s.key)?.spans.covers(s.localUs) === true) this.stats.permitsLate++;
      else if (excusedBeforeUs !== null && s.localUs < excusedBeforeUs) this.stats.permitsUnjudged++;
      else if (final) this.#violate('one-primary', 'output-without-permit', s.o, s.detail);
      else waiting.push(s);
    }
    this.#suspects = waiting;
  }

  /** Parsed host subjects are few per VM: cached, up to MAX_CACHED_SUBJECTS. */
  readonly #txSubjects = new Map<string, boolean>();

  #isGuestTx(subject: string): boolean {
    let is = this.#txSubjects.get(subject);
    if (is === undefined) {
      const kind = parseHostSubject(subject)?.kind;
      is = kind === 'tx' || kind === 'tx.data';
      if (this.#txSubjects.size < MAX_CACHED_SUBJECTS) this.#txSubjects.set(subject, is);
      else this.stats.subjectsUncached++;
    }
    return is;
  }

  /** Before a new key goes into `map`: at MAX_TRACKED_KEYS, the entry of the lowest `age` (the oldest term or incarnation) goes. */
  #makeRoom<K, V>(map: Map<K, V>, age: (value: V, key: K) => number): void {
    if (map.size < MAX_TRACKED_KEYS) return;
    let oldest: K | undefined;
    let oldestAge = Infinity;
    for (const [key, value] of map) {
      const a = age(value, key);
      if (a < oldestAge) [oldest, oldestAge] = [key, a];
    }
    map.delete(oldest as K);
    this.stats.trackedKeysDropped++;
  }

  #violate(invariant: AuditedInvariant, rule: ViolationRule, o: Observation, detail: string): void {
    const v: Violation = { invariant, rule, atUs: o.atUs, host: o.host, localUs: o.localUs, detail };
    this.stats.violations++;
    this.violationCounts[rule] = (this.violationCounts[rule] ?? 0) + 1;
    if (this.violations.length < MAX_KEPT_VIOLATIONS) this.violations.push(v);
    else this.stats.violationsNotKept++;
    this.onViolation(v);
  }

  /** The key of a host's permits under a term; the last one is kept, as every released segment asks for it again. */
  #permitKey(host: string, term: number): string {
    const last = this.#lastPermitKey;
    if (last.host !== host || last.term !== term) this.#lastPermitKey = { host, term, key: `${host}/${term}` };
    return this.#lastPermitKey.key;
  }

  /** A guest segment: learn the epoch of each new byte. Only the newest term's guest counts. */
  #onGuestSegment(seg: Segment): void {
    if (seg.term < this.#guestTerm) return;
    this.#guestTerm = seg.term;
    const connection = this.#connections[seg.connId - 1];
    if (connection === undefined) this.stats.unknownConnections++;
    else if (seg.payload.length > 0) connection.bytes.emitted(seg.seq, seg.seq + seg.payload.length, seg.epoch);
  }

  /** A guest's epoch ended: every byte it had sent by then is in that epoch's checkpoint. Only the newest term's guest counts. */
  #onEpochEnd(end: EpochEnd): void {
    if (end.term < this.#guestTerm) return;
    end.txEndSeqs.forEach((endSeq, i) => this.#connections[i]?.bytes.sentBy(endSeq, end.epoch));
  }

  #onAssignment(a: Assignment, o: Observation): void {
    const seen = this.#assignmentSeen.get(a.host);
    if (seen !== undefined && (a.incarnation < seen.incarnation || (a.incarnation === seen.incarnation && a.seq <= seen.seq))) return;
    if (seen === undefined) this.#makeRoom(this.#assignmentSeen, (x) => x.incarnation);
    this.#assignmentSeen.set(a.host, { incarnation: a.incarnation, seq: a.seq });
    const current = this.#primary;
    if (a.role === 'backup' && a.joining && current !== null && a.host === current.peerHost && a.term === current.term) current.peerStartedOver = true;
    if (a.role !== 'primary' && a.role !== 'promoting') return;
    const holder = this.#termHost.get(a.term);
    if (holder !== undefined && holder !== a.host) {
      this.#violate('one-primary', 'term-on-two-hosts', o, `term ${a.term} assigned to ${a.host}, but ${holder} holds it`);
      return;
    }
    if (holder === undefined) this.#makeRoom(this.#termHost, (_host, term) => term);
    this.#termHost.set(a.term, a.host);
    if (a.role !== 'primary') return;
    const p = this.#primary;
    if (p !== null && p.term > a.term) return; // a deposed primary's late membership change
    if (p === null || p.host !== a.host || p.term !== a.term) {
      if (p !== null) this.stats.promotionsSeen++;
      // A new primary: the first one is protected from its first epoch; a promoted one runs alone (or its backup joins).
      this.#primary = { host: a.host, term: a.term, agentIncarnation: a.incarnation, startedOver: false, peerHost: a.peerHost, protectedFromEpoch: a.peerHost === '' || a.joining ? Infinity : a.firstEpoch, lastBarrierEpoch: a.firstEpoch - 1, joinedAfterEpoch: a.firstEpoch - 1, joinSeq: a.joinSeq, peerStartedOver: false };
      return;
    }
    if (a.incarnation !== p.agentIncarnation) {
      // Its backup stays the one the earlier process named, whose acknowledgements commit that process's epochs (vopr
      // seed 132626: taken for the new process's peer, the base the joining backup acknowledged for the VM went uncounted).
      // The new process's commits are its VM's, under the same host and term: never the primary's (it gets no permit).
      this.stats.assignmentsOfRestartedPrimary++;
      p.startedOver = true;
      return;
    }
    if (a.peerHost === p.peerHost && a.peerHost === '') return;
    // A new backup (or none): it joins at the base epoch of a barrier not yet sent; until then epochs commit locally.
    p.peerHost = a.peerHost;
    p.peerStartedOver = false;
    p.protectedFromEpoch = Infinity;
    p.joinedAfterEpoch = p.lastBarrierEpoch;
    p.joinSeq = a.joinSeq;
  }

  #onBarrier(subject: string, b: EpochBarrier): void {
    const p = this.#primary;
    if (p === null || b.term !== p.term || parseHostSubject(subject)?.host !== p.host) return;
    p.lastBarrierEpoch = Math.max(p.lastBarrierEpoch, b.epoch);
    // A repeat of a barrier sent before the join is not the join's base, whatever flag it carries.
    // A base of an older join (the checkpointer had not yet heard of this one, and will start over when it does) protects nothing.
    if (!b.base || p.peerHost === '' || b.epoch <= p.joinedAfterEpoch || b.joinSeq !== p.joinSeq) return;
    p.protectedFromEpoch = Math.min(p.protectedFromEpoch, b.epoch);
  }

  #onAck(ack: CheckpointAck): void {
    const p = this.#primary;
    if (p === null || ack.term !== p.term || ack.host !== p.peerHost) return;
    if (!ack.ok && ack.needsBase && ack.epoch > p.protectedFromEpoch && (ack.epoch > this.#peerAckedEpoch || p.peerStartedOver)) {
      // The backup says it holds no image (its join came after the base it took): the primary joins it again, and until
      // that base epoch nothing is on a backup, as after an assignment that names a new one.
      p.protectedFromEpoch = Infinity;
      p.joinedAfterEpoch = p.lastBarrierEpoch;
      return;
    }
    if (!ack.ok) return;
    // Only an acknowledgement of a newer epoch comes from a new image: a late copy of an older one does not.
    if (ack.epoch > this.#peerAckedEpoch) p.peerStartedOver = false;
    this.#peerAckedEpoch = Math.max(this.#peerAckedEpoch, ack.epoch);
  }

  #onCommit(subject: string, c: EpochCommit, o: Observation): void {
    const p = this.#primary;
    if (p === null || c.term !== p.term || parseHostSubject(subject)?.host !== p.host) return;
    if (p.startedOver) {
      this.stats.commitsOfRestartedPrimary++;
      return;
    }
    if (this.#resyncing) {
      // Its acknowledgement may have come while the auditor was cut off: this commit is where judging starts again.
      this.#resyncing = false;
      this.stats.commitsTrusted++;
      if (c.epoch < p.protectedFromEpoch) this.#localCommittedEpoch = Math.max(this.#localCommittedEpoch, c.epoch);
      else this.#peerAckedEpoch = Math.max(this.#peerAckedEpoch, c.epoch);
      return;
    }
    if (c.epoch < p.protectedFromEpoch) {
      this.#localCommittedEpoch = Math.max(this.#localCommittedEpoch, c.epoch);
      return;
    }
    if (c.epoch > this.#peerAckedEpoch) this.#violate('output-commit', 'commit-without-ack', o, `${p.host} committed epoch ${c.epoch} under term ${p.term}; its backup ${p.peerHost} acknowledged up to ${this.#peerAckedEpoch}`);
  }

  /** A promoted guest is ready: its image must hold every byte the client was sent, and what the old guest emitted after it is forgotten. */
  #onStatus(s: ServiceStatus, o: Observation): void {
    if (s.service !== 'guest' || s.role !== 'promoting' || !s.ready) return;
    // A connection the image does not name has sent nothing from it (its end is 0).
    const behind = this.#connections.findIndex((c, i) => (s.txEndSeqs[i] ?? 0) < c.releasedEnd);
    if (behind >= 0) {
      const connId = behind + 1;
      this.#violate('output-commit', 'promoted-image-behind-output', o, `the image promoted on ${s.host} (epoch ${s.epoch}) ends at byte ${s.txEndSeqs[behind] ?? 0} of connection ${connId}, but bytes up to ${this.#connections[behind]!.releasedEnd} already left`);
      return;
    }
    this.#guestTerm = Math.max(this.#guestTerm, s.term);
    this.#connections.forEach((c, i) => c.bytes.rollbackTo(s.txEndSeqs[i] ?? 0));
  }

  /** A segment entering the client's link. */
  #onRelease(seg: Segment, o: Observation): void {
    this.stats.segmentsChecked++;
    if (seg.term < this.#maxWireTerm) {
      if (this.options.outputMayArriveLate !== true || o.localUs >= this.#maxWireTermBeganLocalUs) {
        this.#violate('one-primary', 'older-term-after-newer', o, `term ${seg.term} output released at ${o.localUs}µs of ${o.host ?? 'an unknown host'}'s clock, after term ${this.#maxWireTerm} began releasing at ${this.#maxWireTermBeganLocalUs}µs of its holder's`);
        return;
      }
      this.stats.olderTermOutputArrivedLate++;
    } else if (seg.term > this.#maxWireTerm) {
      this.#maxWireTerm = seg.term;
      this.#maxWireTermBeganLocalUs = o.localUs;
    }
    if (this.#resyncing) {
      this.stats.releasesUnjudged++;
      this.#released(seg);
      return;
    }
    const holder = this.#termHost.get(seg.term);
    if (o.host === null || holder !== o.host) {
      this.#violate('one-primary', 'output-from-non-holder', o, `term ${seg.term} output from ${o.host ?? 'outside the hosts'}, but ${holder ?? 'no host'} holds term ${seg.term}`);
      return;
    }
    const key = this.#permitKey(o.host, seg.term);
    const permit = this.#permits.get(key);
    if (permit?.spans.covers(o.localUs) !== true) {
      // A permit granted while the auditor was cut off is one it cannot know of: judged again once it sees one.
      const permitSeenSinceGap = permit === undefined ? this.stats.gaps === 0 : permit.sinceGap;
      const spans = permit?.spans.spans.map((s) => `[${s.fromUs}, ${s.untilUs})`).join(' ') ?? 'none';
      const detail = `${o.host} released output at ${o.localUs}µs of its clock, under no permit of its for term ${seg.term} (they cover ${spans} µs)`;
      if (!permitSeenSinceGap) this.stats.permitsUnjudged++;
      else if (this.options.permitsMayBeLost === true && this.#suspects.length < MAX_PERMIT_SUSPECTS) {
        // Its permit may be one lost on the way here: the host's next permit tells (#onPermit). The other rules judge it now.
        this.stats.permitVerdictsDeferred++;
        this.#suspects.push({ key, localUs: o.localUs, o, detail });
      } else {
        this.#violate('one-primary', 'output-without-permit', o, detail);
        return;
      }
    }
    const committed = this.committedEpoch;
    if (seg.epoch > committed) {
      this.#violate('output-commit', 'segment-before-commit', o, `segment seq ${seg.seq} of epoch ${seg.epoch} left, the backup has epoch ${committed}`);
      return;
    }
    if (seg.payload.length === 0) return;
    const lastByte = seg.seq + seg.payload.length - 1;
    const connection = this.#connections[seg.connId - 1];
    const epoch = connection?.bytes.epochOf(lastByte) ?? null;
    if (epoch === null) {
      this.#violate('output-commit', 'byte-never-emitted', o, `byte ${lastByte} of connection ${seg.connId} reached the wire but the guest never emitted it`);
      return;
    }
    if (epoch === UNSEEN_EPOCH) this.stats.releasesOfUnseenBytes++;
    else if (epoch > committed) {
      this.#violate('output-commit', 'byte-before-commit', o, `byte ${lastByte} of epoch ${epoch} left, the backup has epoch ${committed}`);
      return;
    }
    this.#released(seg);
  }

  /** Where released bytes end: what a promoted image must hold. */
  #released(seg: Segment): void {
    const connection = this.#connections[seg.connId - 1];
    if (connection === undefined || seg.payload.length === 0) return;
    const end = seg.seq + seg.payload.length;
    if (end <= connection.releasedEnd) return;
    this.stats.bytesReleasedEnd += end - connection.releasedEnd;
    connection.releasedEnd = end;
    connection.bytes.releasedTo(end);
    connection.bytes.forgetBelow(connection.releasedEnd - this.retainedBytes);
  }
}
