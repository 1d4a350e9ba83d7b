import { assert } from '../assert.js';
import type { AssignedRole, Assignment, HostService, ServiceStatus } from '../codec/messages.js';
import type { Effect } from '../runtime/types.js';

/** The timer of a service's periodic report to its agent. */
export const STATUS_TIMER = 'service.status';

/** How an assignment relates to the one a service runs under ('foreign': one no agent sends, see foreignAssignments). */
export type AssignmentOrder = 'newer' | 'repeat' | 'stale' | 'foreign';

/** Whether a service ignores an assignment so classified (it neither takes nor answers it). */
export const ignoresAssignment = (order: AssignmentOrder): boolean => order === 'stale' || order === 'foreign';

/** What a service reports besides its identity and its assignment. */
export interface StatusFields {
  readonly role: AssignedRole;
  readonly term: number;
  readonly epoch?: number;
  readonly synced?: boolean;
  readonly ready?: boolean;
  readonly txEndSeqs?: readonly number[];
  readonly chunksStaged?: number;
  readonly followedAgentIncarnation?: number;
}

/**
 * A service's side of supervision: which assignment it runs under and how
 * it reports to its host agent. Assignments are ordered by the agent's
 * incarnation, then by seq, so a copy delayed on the bus never undoes a
 * newer one, and a restarted agent supersedes its predecessor.
 */
export class AssignmentTracker {
  #incarnation = 0;
  #agentIncarnation = 0;
  #seq = 0;
  /** Reports made in this incarnation (the last one's reportSeq). */
  #reports = 0;
  /** Assignments older than the one taken (delayed or repeated on the bus), ignored. */
  staleAssignments = 0;
  /** Assignments no agent sends (another VM's or host's on this service's subject, a role that needs a term under none, or no agent incarnation): forged, ignored. */
  foreignAssignments = 0;

  /** `statusIntervalUs`: a service reports at least this often; its agent takes a silence of a few intervals for a dead service. */
  constructor(
    readonly vmId: string,
    readonly host: string,
    readonly service: HostService,
    readonly statusIntervalUs: number,
  ) {
    assert(statusIntervalUs > 0, () => `${service} reports every ${statusIntervalUs}µs`);
  }

  /** The next periodic report. */
  nextReport(nowUs: number): Effect {
    return { kind: 'setTimer', name: STATUS_TIMER, atUs: nowUs + this.statusIntervalUs };
  }

  /** This service's incarnation: its start time on the host clock, µs, plus one (so 0 means none). */
  get incarnation(): number {
    return this.#incarnation;
  }

  get seq(): number {
    return this.#seq;
  }

  /** At start: a new incarnation, which the agent tells from its predecessor's. */
  started(nowUs: number): void {
    assert(this.#incarnation === 0, () => `${this.service} on ${this.host} started twice`);
    this.#incarnation = nowUs + 1;
  }

  order(a: Assignment): AssignmentOrder {
    if (a.incarnation !== this.#agentIncarnation) return a.incarnation > this.#agentIncarnation ? 'newer' : 'stale';
    if (a.seq === this.#seq) return 'repeat';
    return a.seq > this.#seq ? 'newer' : 'stale';
  }

  /** Classifies `a` and, when it is newer, takes it; stale and foreign ones are counted. */
  take(a: Assignment): AssignmentOrder {
    const needsTerm = a.role !== 'spare' && a.role !== 'stopped';
    // An agent's incarnation is its start plus one: 0 is none, and a primary's manifests name it (PrimaryOptions.agentIncarnation).
    if (a.host !== this.host || a.vmId !== this.vmId || (needsTerm && a.term === 0) || a.incarnation === 0) {
      this.foreignAssignments++;
      return 'foreign';
    }
    const order = this.order(a);
    if (order === 'stale') this.staleAssignments++;
    if (order === 'newer') {
      this.#agentIncarnation = a.incarnation;
      this.#seq = a.seq;
    }
    return order;
  }

  status(fields: StatusFields): ServiceStatus {
    assert(this.#incarnation > 0, () => `${this.service} reports before it started`);
    return {
      type: 'serviceStatus',
      vmId: this.vmId,
      term: fields.term,
      host: this.host,
      service: this.service,
      incarnation: this.#incarnation,
      assignmentSeq: this.#seq,
      agentIncarnation: this.#agentIncarnation,
      role: fields.role,
      epoch: fields.epoch ?? 0,
      synced: fields.synced ?? false,
      ready: fields.ready ?? false,
      txEndSeqs: fields.txEndSeqs ?? [],
      chunksStaged: fields.chunksStaged ?? 0,
      reportSeq: ++this.#reports,
      followedAgentIncarnation: fields.followedAgentIncarnation ?? 0,
    };
  }
}
