import type { Assignment, CheckpointAck, EpochBarrier, EpochCommit, FailoverStatus, ReleasePermit, RoleChange, Segment, ServiceStatus, WireMessage } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { Auditor, type AuditorOptions, type Observation } from '../../../services/auditor/auditor.js';
import { expect } from 'vitest';
import type { AuditedInvariant, Violation, ViolationRule } from '../../../services/auditor/violations.js';
import { segment } from '../support/segments.js';

export const VM = 'vm1';
export const S = subjects(VM);
export const A = 'host-a';
export const B = 'host-b';
export const C = 'host-c';
/** A permit deadline that outlasts any test. */
export const FOREVER_US = Number.MAX_SAFE_INTEGER;

/** Bytes [seq, seq + length) of the guest's stream. */
export const bytes = (length: number): Uint8Array => new Uint8Array(length).fill(0x61);

export const assignment = (host: string, role: Assignment['role'], term: number, seq: number, extra: Partial<Assignment> = {}): Assignment => ({
  type: 'assignment',
  vmId: VM,
  host,
  role,
  term,
  peerHost: '',
  seq,
  incarnation: 1,
  joining: false,
  firstEpoch: role === 'primary' ? 1 : 0,
  // Each join here is named by its own assignment's seq (the failover service names it by a role change's).
  joinSeq: extra.joining === true ? seq : 0,
  ...extra,
});
/** From 0 and `seq` 1 by default: a repeat of a host's first permit raises its deadline and says nothing of permits missed. */
export const releasePermit = (host: string, term: number, untilUs = FOREVER_US, seq = 1, fromUs = 0): ReleasePermit => ({ type: 'releasePermit', vmId: VM, host, term, fromUs, untilUs, seq });
export const ack = (host: string, term: number, epoch: number, ok = true): CheckpointAck => ({ type: 'checkpointAck', vmId: VM, term, epoch, ok, reason: ok ? '' : 'bad', host, needsBase: false });
export const commit = (term: number, epoch: number): EpochCommit => ({ type: 'epochCommit', vmId: VM, term, epoch });
export const barrier = (term: number, epoch: number, extra: Partial<EpochBarrier> = {}): EpochBarrier => ({ type: 'epochBarrier', vmId: VM, term, epoch, base: false, stagedSources: 0, joinSeq: 0, local: false, ...extra });
export const guestStatus = (host: string, term: number, extra: Partial<ServiceStatus> = {}): ServiceStatus => ({
  type: 'serviceStatus',
  vmId: VM,
  term,
  host,
  service: 'guest',
  incarnation: 1,
  assignmentSeq: 1,
  agentIncarnation: 1,
  reportSeq: 1,
  role: 'promoting',
  epoch: 0,
  synced: false,
  ready: true,
  txEndSeqs: [],
  chunksStaged: 0,
  followedAgentIncarnation: 0,
  ...extra,
});
export const roleChange = (host: string, role: 'primary' | 'backup', term: number, peerHost = '', seq = 1): RoleChange => ({ type: 'roleChange', vmId: VM, term, host, role, peerHost, seq, committedEpoch: 0, joinSeq: role === 'backup' ? seq : 0 });
export const failoverStatus = (primaryHost: string, backupHost: string, term = 1, state: FailoverStatus['state'] = 'protected'): FailoverStatus => ({ type: 'failoverStatus', vmId: VM, term, state, primaryHost, backupHost, recovering: false });
export const data = (term: number, epoch: number, seq: number, length: number): Segment => segment({ vmId: VM, term, epoch, seq, payload: bytes(length) });

/**
 * Feeds an Auditor messages as a bus would carry them: each observed at the
 * driver's time (advanced by 10 µs per message), published by a host whose
 * clock reads `localUs` (the true time unless a test says otherwise).
 */
export class AuditDriver {
  readonly auditor: Auditor;
  readonly seen: Violation[] = [];
  atUs = 0;
  /** The publisher's clock of the last message observed. */
  localUs = 0;

  constructor(retainedBytes?: number, options?: AuditorOptions) {
    this.auditor = new Auditor(VM, (v) => this.seen.push(v), retainedBytes, options);
  }

  observe(subject: string, msg: WireMessage, host: string | null, localUs?: number): this {
    this.atUs += 10;
    this.localUs = localUs ?? this.atUs;
    const o: Observation = { atUs: this.atUs, host, localUs: this.localUs };
    this.auditor.observe(subject, msg, o);
    return this;
  }

  // ── what each service publishes ───────────────────────────────────────
  assign(host: string, role: Assignment['role'], term: number, seq: number, extra: Partial<Assignment> = {}): this {
    return this.observe(S.host(host).assign('checkpointer'), assignment(host, role, term, seq, extra), host);
  }
  /** A permit of `host` under `term` for [fromUs, untilUs) of its clock. */
  permit(host: string, term: number, untilUs = FOREVER_US, seq = 1, fromUs = 0): this {
    return this.observe(S.host(host).permit, releasePermit(host, term, untilUs, seq, fromUs), host);
  }
  /** The guest of `host` emits bytes [seq, seq + length) in `epoch`. */
  emit(host: string, term: number, epoch: number, seq: number, length: number): this {
    return this.observe(S.host(host).tx, data(term, epoch, seq, length), host);
  }
  /** The guest of `host` ended `epoch` having sent up to `txEndSeq` (connection 1). */
  epochEnd(host: string, term: number, epoch: number, txEndSeq: number): this {
    return this.observe(S.host(host).txEpoch, { type: 'epochEnd', vmId: VM, term, epoch, txEndSeqs: [txEndSeq], base: false, specStaged: false, local: false }, host);
  }
    /** The backup `from` acknowledges `epoch`. */
  ack(from: string, term: number, epoch: number, ok = true): this {
    return this.observe(S.ckptAck, ack(from, term, epoch, ok), from);
  }
  /** The backup `from` NACKs `epoch` as needing a base: it holds no image. */
  needsBase(from: string, term: number, epoch: number): this {
    return this.observe(S.ckptAck, { ...ack(from, term, epoch, false), reason: 'waiting for a base epoch', needsBase: true }, from);
  }
  commit(host: string, term: number, epoch: number): this {
    return this.observe(S.host(host).commit, commit(term, epoch), host);
  }
  barrier(host: string, term: number, epoch: number, extra: Partial<EpochBarrier> = {}): this {
    return this.observe(S.host(host).epoch, barrier(term, epoch, extra), host);
  }
  status(s: ServiceStatus): this {
    return this.observe(S.host(s.host).status, s, s.host);
  }
  /** The netbuffer of `host` releases bytes [seq, seq + length) of `epoch` to the client's link, at `localUs` of its clock. */
  release(host: string | null, term: number, epoch: number, seq: number, length: number, localUs?: number): this {
    return this.observe(S.wireOut, data(term, epoch, seq, length), host, localUs);
  }

  /** The first primary A of term 1, backed by B, with a permit until `permitUntilUs` (null: none). */
  static protectedPrimary(permitUntilUs: number | null = FOREVER_US, retainedBytes?: number, options?: AuditorOptions): AuditDriver {
    const d = new AuditDriver(retainedBytes, options).assign(A, 'primary', 1, 1, { peerHost: B }).assign(B, 'backup', 1, 1, { peerHost: A });
    return permitUntilUs === null ? d : d.permit(A, 1, permitUntilUs);
  }

  get rules(): string[] {
    return this.auditor.violations.map((v) => v.rule);
  }
}

/** The auditor saw exactly one violation, of `rule`, shown by `host`'s message (the last one observed). */
export function expectOnly(d: AuditDriver, invariant: AuditedInvariant, rule: ViolationRule, host: string | null): void {
  expect(d.auditor.violations).toEqual([{ invariant, rule, atUs: d.atUs, host, localUs: d.localUs, detail: expect.any(String) }]);
  expect(d.seen).toEqual(d.auditor.violations);
}
export const expectNone = (d: AuditDriver) => expect(d.auditor.violations).toEqual([]);
