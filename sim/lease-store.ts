import type { LeaseOp, LeaseRecord, LeaseResult } from '../lib/runtime/types.js';
import type { SimLeaseStore } from '../lib/runtime/sim/sim-runtime.js';

/**
 * The simulated lease store: one record per VM with a revision, written only
 * by compare-and-set, like a JetStream KV bucket. It can be made unavailable
 * (a partition from the store) to exercise the callers' failure handling.
 */
export class MemoryLeaseStore implements SimLeaseStore {
  readonly #records = new Map<string, { record: LeaseRecord; revision: number }>();
  #revision = 0;
  available = true;
  /** Callers (actor names) cut off from the store by a partition. */
  readonly partitioned = new Set<string>();
  writes = 0;
  conflicts = 0;

  constructor(readonly latencyUs: number) {}

  get(vmId: string): { record: LeaseRecord; revision: number } | undefined {
    return this.#records.get(vmId);
  }

  apply(op: LeaseOp, _nowUs: number, caller: string): Omit<LeaseResult, 'requestId'> {
    if (!this.available || this.partitioned.has(caller)) return { outcome: 'unavailable', record: null, revision: 0 };
    const current = this.#records.get(op.vmId);
    if (op.type === 'read') return { outcome: 'ok', record: current?.record ?? null, revision: current?.revision ?? 0 };
    if ((current?.revision ?? 0) !== op.expectedRevision) {
      this.conflicts++;
      return { outcome: 'conflict', record: current?.record ?? null, revision: current?.revision ?? 0 };
    }
    const next = { record: op.record, revision: ++this.#revision };
    this.#records.set(op.vmId, next);
    this.writes++;
    return { outcome: 'ok', ...next };
  }
}
