import { InvariantError } from '../../errors.js';
import { LeaseConflictError, LeaseStoreUnavailableError } from '../../lease/errors.js';
import type { LeaseStore } from '../../lease/types.js';
import type { LeaseOp, LeaseResult } from '../types.js';

export interface LeaseRunnerCounters {
  /** Lease effects the core asked for (refused ones included). */
  leaseOps: number;
  /** Answers `conflict`: the compare-and-set lost. */
  leaseConflicts: number;
  /** Answers `unavailable`, whatever the cause (the four below, or the store said so). */
  leaseUnavailable: number;
  /** Refused at once: `maxLeaseOpsInFlight` store calls were still running. */
  leaseRefused: number;
  /** Answered `unavailable` after `leaseOpTimeoutMs` without a word from the store. */
  leaseTimeouts: number;
  /** Store errors that are neither a conflict nor unavailability (permissions, a bad record in the bucket). */
  leaseErrors: number;
}

export interface LeaseRunnerOptions {
  readonly store: LeaseStore;
  readonly maxInFlight: number;
  readonly opTimeoutMs: number;
  readonly counters: LeaseRunnerCounters;
  /** Hands an answer to the core; called from a later task, never inside `run`. */
  readonly deliver: (result: LeaseResult) => void;
  /** A store error that is a bug (the core wrote an invalid record): the shell fails. */
  readonly fail: (err: Error) => void;
  /** Called for every unexpected store error; the shell logs it once. */
  readonly onError: (err: unknown) => void;
}

const UNAVAILABLE = { outcome: 'unavailable', record: null, revision: 0 } as const;

/**
 * Runs a core's lease effects against a LeaseStore and answers each with a
 * `leaseResult` of the same requestId, mapped as the simulator's store maps
 * them (sim/lease-store.ts): every `ok` and `conflict` carries the record as it
 * now stands and its revision, so a loser of the race learns the new revision.
 * Each request gets exactly one answer; a store call still running after the
 * timeout keeps its slot, so `maxInFlight` bounds real store calls.
 */
export class LeaseEffectRunner {
  #inFlight = 0;
  #stopped = false;
  readonly #timers = new Set<NodeJS.Timeout>();

  constructor(readonly options: LeaseRunnerOptions) {}

  get inFlight(): number {
    return this.#inFlight;
  }

  run(requestId: number, op: LeaseOp): void {
    const c = this.options.counters;
    c.leaseOps++;
    if (this.#inFlight >= this.options.maxInFlight) {
      c.leaseRefused++;
      // Not re-entrantly: the shell is still applying the effects of the input that asked.
      queueMicrotask(() => this.#answer({ requestId, ...UNAVAILABLE }));
      return;
    }
    this.#inFlight++;
    let answered = false;
    const once = (result: LeaseResult) => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      this.#timers.delete(timer);
      this.#answer(result);
    };
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (answered) return;
      c.leaseTimeouts++;
      once({ requestId, ...UNAVAILABLE });
    }, this.options.opTimeoutMs);
    this.#timers.add(timer);
    void this.#call(op)
      .then(
        (answer) => once({ requestId, ...answer }),
        (err: unknown) => {
          if (err instanceof InvariantError) {
            // A bug, not an outage: no answer, the shell fails.
            answered = true;
            clearTimeout(timer);
            this.#timers.delete(timer);
            if (!this.#stopped) this.options.fail(err);
            return;
          }
          c.leaseErrors++;
          this.options.onError(err);
          once({ requestId, ...UNAVAILABLE });
        },
      )
      .catch((err: unknown) => this.options.fail(err instanceof Error ? err : new Error(String(err))))
      .finally(() => this.#inFlight--);
  }

  /** Answers nothing more; calls still running finish unheard. */
  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #answer(result: LeaseResult): void {
    if (this.#stopped) return;
    if (result.outcome === 'conflict') this.options.counters.leaseConflicts++;
    if (result.outcome === 'unavailable') this.options.counters.leaseUnavailable++;
    this.options.deliver(result);
  }

  /** One op against the store; LeaseStoreUnavailableError becomes `unavailable`, other errors reject. */
  async #call(op: LeaseOp): Promise<Omit<LeaseResult, 'requestId'>> {
    const store = this.options.store;
    try {
      if (op.type === 'read') {
        const current = await store.get(op.vmId);
        return { outcome: 'ok', record: current?.record ?? null, revision: current?.revision ?? 0 };
      }
      const revision = op.expectedRevision === 0 ? await store.create(op.vmId, op.record) : await store.update(op.vmId, op.record, op.expectedRevision);
      return { outcome: 'ok', record: op.record, revision };
    } catch (err) {
      if (err instanceof LeaseStoreUnavailableError) return UNAVAILABLE;
      if (!(err instanceof LeaseConflictError)) throw err;
    }
    // A conflict must say who holds the lease now; a record that vanished is null at revision 0, as in the simulator.
    try {
      const current = await store.get(op.vmId);
      return { outcome: 'conflict', record: current?.record ?? null, revision: current?.revision ?? 0 };
    } catch (err) {
      // The write surely lost, but without the current record the answer tells the core nothing it could act on.
      if (err instanceof LeaseStoreUnavailableError) return UNAVAILABLE;
      throw err;
    }
  }
}
