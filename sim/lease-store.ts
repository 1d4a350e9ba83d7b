import { MemoryLeaseTable } from '../lib/lease/memory-store.js';
import type { LeaseOp, LeaseRecord, LeaseResult } from '../lib/runtime/types.js';
import type { SimLeaseStore } from '../lib/runtime/sim/sim-runtime.js';

/**
 * The simulated lease store: the in-memory compare-and-set table of
 * lib/lease, answered after `latencyUs`. It can be made unavailable to all
 * (an outage) or to some callers (a partition), as the fault injector wants.
 */
export class MemoryLeaseStore implements SimLeaseStore {
  readonly table = new MemoryLeaseTable();
  available = true;
  /** Callers (actor names) cut off from the store by a partition. */
  readonly partitioned = new Set<string>();
  #requestId = 0;

  /** `onWrite` sees every record the store accepted (the auditor's view of the lease). */
  constructor(
    readonly latencyUs: number,
    readonly onWrite: (record: LeaseRecord) => void = () => undefined,
  ) {}

  apply(op: LeaseOp, _nowUs: number, caller: string): Omit<LeaseResult, 'requestId'> {
    if (!this.available || this.partitioned.has(caller)) return { outcome: 'unavailable', record: null, revision: 0 };
    const id = ++this.#requestId;
    const reply =
      op.type === 'read'
        ? this.table.handle({ kind: 'get', id, vmId: op.vmId })
        : op.expectedRevision === 0
          ? this.table.handle({ kind: 'create', id, vmId: op.vmId, record: op.record })
          : this.table.handle({ kind: 'update', id, vmId: op.vmId, record: op.record, expectedRevision: op.expectedRevision });
    // Every answer carries the record as it now stands, so a loser of the race learns the new revision.
    const current = this.table.peek(op.vmId);
    const outcome = reply.kind === 'conflict' ? 'conflict' : reply.kind === 'unavailable' ? 'unavailable' : 'ok';
    if (reply.kind === 'written' && op.type === 'cas') this.onWrite(op.record);
    return { outcome, record: current?.record ?? null, revision: current?.revision ?? 0 };
  }
}
