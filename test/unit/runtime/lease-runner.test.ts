/**
 * The NATS shell's lease-effect runner against in-memory stores: the same
 * answers as the simulator's store, one answer per request, a bound on calls
 * in flight, a timeout for a store that never answers.
 */
import { describe, expect, it } from 'vitest';
import { InvariantError } from '../../../lib/errors.js';
import { MemoryLeaseStore as AsyncMemoryLeaseStore, MemoryLeaseTable } from '../../../lib/lease/memory-store.js';
import type { LeaseRecord, LeaseStore } from '../../../lib/lease/types.js';
import { LeaseEffectRunner, type LeaseRunnerCounters } from '../../../lib/runtime/nats/lease-runner.js';
import type { LeaseOp, LeaseResult } from '../../../lib/runtime/types.js';
import { MemoryLeaseStore as SimLeaseStore } from '../../../sim/lease-store.js';

const VM = 'vm1';
const rec = (primaryHost: string, term: number, expiresAtMs = 1_000): LeaseRecord => ({ primaryHost, term, expiresAtMs });

function zeroCounters(): LeaseRunnerCounters {
  return { leaseOps: 0, leaseConflicts: 0, leaseUnavailable: 0, leaseRefused: 0, leaseTimeouts: 0, leaseErrors: 0 };
}

function runnerOn(store: LeaseStore, limits: { maxInFlight?: number; opTimeoutMs?: number } = {}) {
  const results: LeaseResult[] = [];
  const failures: Error[] = [];
  const errors: unknown[] = [];
  const counters = zeroCounters();
  const runner = new LeaseEffectRunner({
    store,
    maxInFlight: limits.maxInFlight ?? 16,
    opTimeoutMs: limits.opTimeoutMs ?? 1_000,
    counters,
    deliver: (r) => results.push(r),
    fail: (e) => failures.push(e),
    onError: (e) => errors.push(e),
  });
  return { runner, results, failures, errors, counters };
}

async function until(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** A store whose calls never settle. */
const hangingStore: LeaseStore = {
  get: () => new Promise(() => undefined),
  create: () => new Promise(() => undefined),
  update: () => new Promise(() => undefined),
};

describe('LeaseEffectRunner', () => {
  it('answers every op exactly as the simulator store does (ok, conflict with the current record, vanished record)', async () => {
    const ops: LeaseOp[] = [
      { type: 'read', vmId: VM },
      { type: 'cas', vmId: VM, expectedRevision: 0, record: rec('host-a', 1) },
      { type: 'cas', vmId: VM, expectedRevision: 0, record: rec('host-b', 1) }, // exists: conflict
      { type: 'read', vmId: VM },
      { type: 'cas', vmId: VM, expectedRevision: 1, record: rec('host-a', 1, 2_000) },
      { type: 'cas', vmId: VM, expectedRevision: 1, record: rec('host-b', 2) }, // stale revision: conflict
      { type: 'cas', vmId: VM, expectedRevision: 2, record: rec('host-b', 2) },
      { type: 'cas', vmId: 'other', expectedRevision: 7, record: rec('host-b', 2) }, // no record: conflict, null at 0
    ];
    const sim = new SimLeaseStore(0);
    const expected = ops.map((op, i) => ({ requestId: i + 1, ...sim.apply(op, 0, 'failover') }));
    const { runner, results, counters } = runnerOn(new AsyncMemoryLeaseStore());
    for (const [i, op] of ops.entries()) {
      runner.run(i + 1, op);
      await until(() => results.length === i + 1);
    }
    expect(results).toEqual(expected);
    expect(results.map((r) => r.outcome)).toEqual(['ok', 'ok', 'conflict', 'ok', 'ok', 'conflict', 'ok', 'conflict']);
    expect(counters).toMatchObject({ leaseOps: 8, leaseConflicts: 3, leaseUnavailable: 0 });
  });

  it('answers unavailable, with no record, when the store is down or lost the response', async () => {
    const table = new MemoryLeaseTable();
    const { runner, results, counters } = runnerOn(new AsyncMemoryLeaseStore(table));
    table.fault = { kind: 'unavailable' };
    runner.run(1, { type: 'read', vmId: VM });
    table.fault = { kind: 'lostResponse' };
    runner.run(2, { type: 'cas', vmId: VM, expectedRevision: 0, record: rec('host-a', 1) });
    await until(() => results.length === 2);
    expect(results).toEqual([
      { requestId: 1, outcome: 'unavailable', record: null, revision: 0 },
      { requestId: 2, outcome: 'unavailable', record: null, revision: 0 },
    ]);
    expect(counters).toMatchObject({ leaseOps: 2, leaseUnavailable: 2, leaseErrors: 0 });
    // The lost response was applied: the store has the record although the answer said unavailable.
    expect(table.peek(VM)?.record).toEqual(rec('host-a', 1));
  });

  it('refuses ops beyond the in-flight bound at once, and times out ops the store never answers', async () => {
    // Long enough that the refusals are always answered first, whatever the machine's load.
    const { runner, results, counters } = runnerOn(hangingStore, { maxInFlight: 16, opTimeoutMs: 300 });
    for (let id = 1; id <= 20; id++) runner.run(id, { type: 'read', vmId: VM });
    expect(results).toEqual([]); // never inside run(): the shell is still applying effects
    await until(() => results.length === 4);
    expect(results.map((r) => r.requestId)).toEqual([17, 18, 19, 20]);
    expect(counters).toMatchObject({ leaseOps: 20, leaseRefused: 4, leaseUnavailable: 4, leaseTimeouts: 0 });
    await until(() => results.length === 20);
    expect(results.every((r) => r.outcome === 'unavailable')).toBe(true);
    expect(counters).toMatchObject({ leaseTimeouts: 16, leaseUnavailable: 20 });
    // Timed-out calls still hold their slots: the store has not let go of them.
    expect(runner.inFlight).toBe(16);
    runner.run(21, { type: 'read', vmId: VM });
    await until(() => results.length === 21);
    expect(counters.leaseRefused).toBe(5);
    runner.stop();
  });

  it('answers unavailable to an unexpected store error and reports it; fails on an invariant error', async () => {
    const failing = (err: Error): LeaseStore => ({ get: () => Promise.reject(err), create: () => Promise.reject(err), update: () => Promise.reject(err) });
    const odd = runnerOn(failing(new Error('permission denied')));
    odd.runner.run(1, { type: 'read', vmId: VM });
    await until(() => odd.results.length === 1);
    expect(odd.results[0]).toEqual({ requestId: 1, outcome: 'unavailable', record: null, revision: 0 });
    expect(odd.counters).toMatchObject({ leaseErrors: 1, leaseUnavailable: 1 });
    expect(odd.errors).toHaveLength(1);
    expect(odd.failures).toEqual([]);

    const bug = runnerOn(failing(new InvariantError('invalid lease record')));
    bug.runner.run(1, { type: 'cas', vmId: VM, expectedRevision: 0, record: rec('host-a', 1) });
    await until(() => bug.failures.length === 1);
    expect(bug.failures[0]).toBeInstanceOf(InvariantError);
    expect(bug.results).toEqual([]);
  });

  it('answers nothing once stopped', async () => {
    const { runner, results } = runnerOn(new AsyncMemoryLeaseStore());
    runner.run(1, { type: 'read', vmId: VM });
    runner.stop();
    await new Promise((r) => setTimeout(r, 20));
    expect(results).toEqual([]);
  });
});
