/**
 * An in-memory lease store for the simulator and tests: deterministic,
 * linearizable compare-and-set, with the real store's failure modes.
 *
 * MemoryLeaseTable is the store itself, synchronous and message-shaped
 * (LeaseRequest in, LeaseReply out), so a pure core or a sim actor can own
 * it: the reply says how long it takes (`delayMs`, the caller models it) or
 * that it never came (`unavailable`). MemoryLeaseStore puts the async
 * LeaseStore interface over a table, for code written against that.
 */
import { assert } from '../assert.js';
import { LeaseConflictError, LeaseStoreUnavailableError } from './errors.js';
import { assertLeaseKey, assertLeaseRecord, type LeaseRecord, type LeaseStore, type Revision, type VersionedLease } from './types.js';

/** The failure modes of a real store, as the caller sees them. */
export type LeaseStoreFault =
  | { readonly kind: 'none' }
  /** The store is unreachable: nothing applied, the call fails. */
  | { readonly kind: 'unavailable' }
  /** The store answers correctly, `delayMs` late (the caller models the delay). */
  | { readonly kind: 'slow'; readonly delayMs: number }
  /** The request was applied but the answer was lost: the caller sees unavailable and must re-read. */
  | { readonly kind: 'lostResponse' };

export const NO_FAULT: LeaseStoreFault = { kind: 'none' };

export type LeaseRequest =
  | { readonly kind: 'get'; readonly id: number; readonly vmId: string }
  | { readonly kind: 'create'; readonly id: number; readonly vmId: string; readonly record: LeaseRecord }
  | { readonly kind: 'update'; readonly id: number; readonly vmId: string; readonly record: LeaseRecord; readonly expectedRevision: Revision };

/** The answer to request `id`, to be delivered `delayMs` after the request. */
export type LeaseReply = { readonly id: number; readonly delayMs: number } & (
  | { readonly kind: 'got'; readonly lease: VersionedLease | null }
  | { readonly kind: 'written'; readonly revision: Revision }
  | { readonly kind: 'conflict'; readonly message: string }
  | { readonly kind: 'unavailable'; readonly message: string }
);

export interface MemoryLeaseTableOptions {
  /**
   * Chooses the fault for each request (e.g. from the simulator's seeded
   * fault injector); `index` counts requests from 0. Overrides `fault`.
   */
  readonly faultPlan?: (request: LeaseRequest, index: number) => LeaseStoreFault;
  /** Sees every applied write (an oracle checks terms here). */
  readonly onApply?: (vmId: string, lease: VersionedLease) => void;
}

export class MemoryLeaseTable {
  readonly #leases = new Map<string, VersionedLease>();
  /** Like a JetStream stream sequence: one counter for the whole bucket. */
  #lastRevision: Revision = 0;
  #requests = 0;
  /** The fault applied to every request while no faultPlan is given. */
  fault: LeaseStoreFault = NO_FAULT;

  constructor(readonly options: MemoryLeaseTableOptions = {}) {}

  /** Requests handled so far. */
  get requestCount(): number {
    return this.#requests;
  }

  /** The current record, bypassing faults (for oracles and tests). */
  peek(vmId: string): VersionedLease | null {
    return copyOf(this.#leases.get(vmId) ?? null);
  }

  handle(request: LeaseRequest): LeaseReply {
    const fault = this.options.faultPlan?.(request, this.#requests) ?? this.fault;
    this.#requests += 1;
    const { id } = request;
    if (fault.kind === 'unavailable') return { id, delayMs: 0, kind: 'unavailable', message: 'lease store unavailable' };
    const reply = this.#apply(request);
    if (fault.kind === 'lostResponse') return { id, delayMs: 0, kind: 'unavailable', message: 'lease store response lost' };
    if (fault.kind === 'slow') {
      assert(fault.delayMs >= 0, () => `slow fault with delay ${fault.delayMs} ms`);
      return { ...reply, delayMs: fault.delayMs };
    }
    return reply;
  }

  #apply(request: LeaseRequest): LeaseReply {
    const { id, vmId } = request;
    assertLeaseKey(vmId);
    const current = this.#leases.get(vmId) ?? null;
    // A copy, as the KV store decodes a new one each time: a reader never holds the table's own record.
    if (request.kind === 'get') return { id, delayMs: 0, kind: 'got', lease: copyOf(current) };
    assertLeaseRecord(request.record);
    const expected = request.kind === 'create' ? 0 : request.expectedRevision;
    const actual = current?.revision ?? 0;
    // As in JetStream KV, an update names a revision > 0: it never creates.
    const updateWithoutRevision = request.kind === 'update' && !(Number.isInteger(expected) && expected > 0);
    if (updateWithoutRevision || expected !== actual) return { id, delayMs: 0, kind: 'conflict', message: `lease ${vmId}: expected revision ${expected}, found ${actual}` };
    this.#lastRevision += 1;
    const lease: VersionedLease = { record: { ...request.record }, revision: this.#lastRevision };
    this.#leases.set(vmId, lease);
    this.options.onApply?.(vmId, lease);
    return { id, delayMs: 0, kind: 'written', revision: lease.revision };
  }
}

export interface MemoryLeaseStoreOptions {
  /**
   * Waits out a slow reply's delay. Default: does not wait (the delay is
   * only reported, in `lastDelayMs`); tests pass fake or real timers.
   */
  readonly sleep?: (delayMs: number) => Promise<void>;
}

/** The LeaseStore interface over a MemoryLeaseTable. */
export class MemoryLeaseStore implements LeaseStore {
  #nextId = 0;
  /** The delay of the last reply, as the table reported it. */
  lastDelayMs = 0;

  constructor(
    readonly table: MemoryLeaseTable = new MemoryLeaseTable(),
    readonly options: MemoryLeaseStoreOptions = {},
  ) {}

  async get(vmId: string): Promise<VersionedLease | null> {
    const reply = await this.#call({ kind: 'get', id: this.#nextId++, vmId });
    assert(reply.kind === 'got', () => `get answered ${reply.kind}`);
    return reply.lease;
  }

  async create(vmId: string, record: LeaseRecord): Promise<Revision> {
    return this.#written(await this.#call({ kind: 'create', id: this.#nextId++, vmId, record }));
  }

  async update(vmId: string, record: LeaseRecord, expectedRevision: Revision): Promise<Revision> {
    return this.#written(await this.#call({ kind: 'update', id: this.#nextId++, vmId, record, expectedRevision }));
  }

  async #call(request: LeaseRequest): Promise<LeaseReply> {
    const reply = this.table.handle(request);
    this.lastDelayMs = reply.delayMs;
    if (reply.delayMs > 0 && this.options.sleep) await this.options.sleep(reply.delayMs);
    if (reply.kind === 'unavailable') throw new LeaseStoreUnavailableError(`${request.kind} ${request.vmId}: ${reply.message}`);
    if (reply.kind === 'conflict') throw new LeaseConflictError(reply.message);
    return reply;
  }

  #written(reply: LeaseReply): Revision {
    assert(reply.kind === 'written', () => `write answered ${reply.kind}`);
    return reply.revision;
  }
}

const copyOf = (lease: VersionedLease | null): VersionedLease | null => (lease === null ? null : { record: { ...lease.record }, revision: lease.revision });
