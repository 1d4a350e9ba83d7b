import { describe, expect, it } from 'vitest';
import { ConfigError, InvariantError } from '../../../lib/errors.js';
import { LeaseConflictError, LeaseStoreUnavailableError } from '../../../lib/lease/errors.js';
import { LeaseHolder } from '../../../lib/lease/holder.js';
import { MemoryLeaseStore, MemoryLeaseTable, NO_FAULT, type LeaseStoreFault } from '../../../lib/lease/memory-store.js';
import { successorMayStartAtUs, takeOverRecord } from '../../../lib/lease/take-over.js';
import type { LeaseRecord, LeaseStore, VersionedLease } from '../../../lib/lease/types.js';
import { LeaseEffectRunner } from '../../../lib/runtime/nats/lease-runner.js';
import type { LeaseOp, LeaseResult } from '../../../lib/runtime/types.js';

const A1: LeaseRecord = { primaryHost: 'a', term: 1, expiresAtMs: 3_000 };
const B2: LeaseRecord = { primaryHost: 'b', term: 2, expiresAtMs: 6_000 };
const A1_RENEWED: LeaseRecord = { primaryHost: 'a', term: 1, expiresAtMs: 4_000 };

describe('in-memory lease store', () => {
  it('returns null for a VM without a lease', async () => {
    expect(await new MemoryLeaseStore().get('vm-1')).toBeNull();
  });

  it('create then a second create of the same VM fails with LeaseConflictError', async () => {
    const store = new MemoryLeaseStore();
    const rev = await store.create('vm-1', A1);
    await expect(store.create('vm-1', B2)).rejects.toBeInstanceOf(LeaseConflictError);
    expect(await store.get('vm-1')).toEqual({ record: A1, revision: rev });
  });

  it('exactly one of two updates against the same revision wins', async () => {
    const store = new MemoryLeaseStore();
    const rev = await store.create('vm-1', A1);
    const results = await Promise.allSettled([store.update('vm-1', A1_RENEWED, rev), store.update('vm-1', B2, rev)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(LeaseConflictError);
    expect((await store.get('vm-1'))?.record).toEqual(A1_RENEWED);
  });

  it('an update never creates a record', async () => {
    const store = new MemoryLeaseStore();
    await expect(store.update('vm-1', A1, 0)).rejects.toBeInstanceOf(LeaseConflictError);
    await expect(store.update('vm-1', A1, 1)).rejects.toBeInstanceOf(LeaseConflictError);
    expect(await store.get('vm-1')).toBeNull();
  });

  it('revisions grow across all VMs, like a JetStream stream sequence', async () => {
    const store = new MemoryLeaseStore();
    expect([await store.create('vm-1', A1), await store.create('vm-2', A1), await store.update('vm-1', A1_RENEWED, 1)]).toEqual([1, 2, 3]);
  });

  it('rejects a record that breaks the schema as a bug', async () => {
    await expect(new MemoryLeaseStore().create('vm-1', { primaryHost: 'a', term: 0, expiresAtMs: 1 })).rejects.toBeInstanceOf(InvariantError);
  });

  it('rejects a VM id that could not be a NATS KV key, as the real store does', async () => {
    await expect(new MemoryLeaseStore().get('vm 1')).rejects.toBeInstanceOf(ConfigError);
    await expect(new MemoryLeaseStore().get('.vm')).rejects.toBeInstanceOf(ConfigError);
  });

  it('stores a copy: changing the caller’s object later changes nothing', async () => {
    const store = new MemoryLeaseStore();
    const record = { ...A1 };
    await store.create('vm-1', record);
    record.expiresAtMs = 99;
    expect((await store.get('vm-1'))?.record.expiresAtMs).toBe(3_000);
  });
});

describe('failure modes', () => {
  it('unavailable: calls reject with LeaseStoreUnavailableError and nothing is applied', async () => {
    const table = new MemoryLeaseTable();
    const store = new MemoryLeaseStore(table);
    table.fault = { kind: 'unavailable' };
    const err = await store.create('vm-1', A1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LeaseStoreUnavailableError);
    expect((err as LeaseStoreUnavailableError).retryable).toBe(true);
    await expect(store.get('vm-1')).rejects.toBeInstanceOf(LeaseStoreUnavailableError);
    expect(table.peek('vm-1')).toBeNull();
  });

  it('lost response: the write is applied but the caller sees unavailable', async () => {
    const table = new MemoryLeaseTable();
    const store = new MemoryLeaseStore(table);
    table.fault = { kind: 'lostResponse' };
    await expect(store.create('vm-1', A1)).rejects.toBeInstanceOf(LeaseStoreUnavailableError);
    table.fault = { kind: 'none' };
    expect(await store.get('vm-1')).toEqual({ record: A1, revision: 1 });
  });

  it('slow: the answer is right, and the async store waits the delay out with the injected sleep', async () => {
    const slept: number[] = [];
    const table = new MemoryLeaseTable();
    const store = new MemoryLeaseStore(table, { sleep: async (ms) => void slept.push(ms) });
    table.fault = { kind: 'slow', delayMs: 750 };
    expect(await store.create('vm-1', A1)).toBe(1);
    expect(slept).toEqual([750]);
    expect(store.lastDelayMs).toBe(750);
  });

  it('slow without a sleep function: the delay is only reported', async () => {
    const table = new MemoryLeaseTable();
    table.fault = { kind: 'slow', delayMs: 40 };
    const store = new MemoryLeaseStore(table);
    await store.get('vm-1');
    expect(store.lastDelayMs).toBe(40);
  });

  it('a fault plan chooses the fault of each request, deterministically', async () => {
    const plan = (_: unknown, index: number): LeaseStoreFault => (index % 2 === 1 ? { kind: 'unavailable' } : { kind: 'none' });
    const outcomes = async (): Promise<string[]> => {
      const store = new MemoryLeaseStore(new MemoryLeaseTable({ faultPlan: plan }));
      const out: string[] = [];
      for (let i = 0; i < 4; i++) out.push(await store.get('vm-1').then(() => 'ok', (e: Error) => e.name));
      return out;
    };
    const first = await outcomes();
    expect(first).toEqual(['ok', 'LeaseStoreUnavailableError', 'ok', 'LeaseStoreUnavailableError']);
    expect(await outcomes()).toEqual(first);
  });

  it('reports every applied write to the oracle hook', async () => {
    const applied: VersionedLease[] = [];
    const store = new MemoryLeaseStore(new MemoryLeaseTable({ onApply: (_vm, lease) => applied.push(lease) }));
    await store.create('vm-1', A1);
    await store.update('vm-1', B2, 1);
    await store.update('vm-1', A1_RENEWED, 1).catch(() => undefined);
    expect(applied.map((l) => l.record.term)).toEqual([1, 2]);
  });
});

describe('the table as a message-driven store', () => {
  it('answers each LeaseRequest with a reply carrying the request id', () => {
    const table = new MemoryLeaseTable();
    expect(table.handle({ kind: 'create', id: 7, vmId: 'vm-1', record: A1 })).toEqual({ id: 7, delayMs: 0, kind: 'written', revision: 1 });
    expect(table.handle({ kind: 'update', id: 8, vmId: 'vm-1', record: B2, expectedRevision: 5 })).toMatchObject({ id: 8, kind: 'conflict' });
    expect(table.handle({ kind: 'get', id: 9, vmId: 'vm-1' })).toEqual({ id: 9, delayMs: 0, kind: 'got', lease: { record: A1, revision: 1 } });
  });

  it('a slow reply says how long the caller should hold it', () => {
    const table = new MemoryLeaseTable();
    table.fault = { kind: 'slow', delayMs: 120 };
    expect(table.handle({ kind: 'get', id: 1, vmId: 'vm-1' })).toMatchObject({ id: 1, delayMs: 120, kind: 'got' });
  });
});

describe('a holder against the in-memory store', () => {
  const DURATION_US = 3_000_000;
  const MARGIN_US = 350_000;
  const holderFor = (host: string, backupHost = ''): LeaseHolder => new LeaseHolder({ vmId: 'vm-1', host, leaseDurationUs: DURATION_US, releaseMarginUs: MARGIN_US }, backupHost);

  /** One actor's lease calls, translated into store calls and answers by the NATS shell's runner. */
  function callerOn(store: LeaseStore): (request: { requestId: number; op: LeaseOp }) => Promise<LeaseResult> {
    const waiting = new Map<number, { resolve: (r: LeaseResult) => void; reject: (err: unknown) => void }>();
    const failAll = (err: unknown): void => {
      for (const w of waiting.values()) w.reject(err);
    };
    const counters = { leaseOps: 0, leaseConflicts: 0, leaseUnavailable: 0, leaseRefused: 0, leaseTimeouts: 0, leaseErrors: 0 };
    const runner = new LeaseEffectRunner({ store, maxInFlight: 4, opTimeoutMs: 5_000, counters, deliver: (r) => waiting.get(r.requestId)?.resolve(r), fail: failAll, onError: failAll });
    return ({ requestId, op }) =>
      new Promise((resolve, reject) => {
        waiting.set(requestId, { resolve, reject });
        runner.run(requestId, op);
      });
  }

  it('a renewal whose response was lost grants nothing; the next renewal conflicts with it (rewritten) and goes on, without a new term', async () => {
    const table = new MemoryLeaseTable();
    const store = new MemoryLeaseStore(table);
    const call = callerOn(store);
    const a = holderFor('a', 'b');
    expect(a.answer(await call(a.renewal(1, 0)))).toEqual({ kind: 'granted', permitUntilUs: DURATION_US - MARGIN_US });

    table.fault = { kind: 'lostResponse' };
    expect(a.answer(await call(a.renewal(1, 1_000_000)))).toEqual({ kind: 'unavailable' });
    table.fault = NO_FAULT;
    // Applied, but not confirmed: the permit still counts from the first send.
    expect(table.peek('vm-1')).toEqual({ record: { primaryHost: 'a', term: 1, expiresAtMs: 4_000, backupHost: 'b' }, revision: 2 });
    expect(a.permitUntilUs).toBe(DURATION_US - MARGIN_US);

    // The next renewal is on revision 1: it conflicts with its own lost write and learns revision 2.
    expect(a.answer(await call(a.renewal(1, 1_100_000)))).toEqual({ kind: 'rewritten' });
    expect(a.permitUntilUs).toBe(DURATION_US - MARGIN_US);
    expect(a.answer(await call(a.renewal(1, 1_200_000)))).toEqual({ kind: 'granted', permitUntilUs: 1_200_000 + DURATION_US - MARGIN_US });
    expect(table.peek('vm-1')).toEqual({ record: { primaryHost: 'a', term: 1, expiresAtMs: 4_200, backupHost: 'b' }, revision: 3 });
  });

  it('a take-over increments the term by exactly 1; the old holder’s renewal then conflicts and it is deposed, keeping the permit it had', async () => {
    const table = new MemoryLeaseTable();
    const store = new MemoryLeaseStore(table);
    const a = holderFor('a', 'b');
    const callA = callerOn(store);
    expect((await callA(a.renewal(1, 0))).outcome).toBe('ok');
    const permitA = a.permitUntilUs;

    // The failover service takes the lease over for b by compare-and-set on the revision it read.
    const replaced = (await store.get('vm-1'))!;
    const record = takeOverRecord('b', replaced.record.term + 1, 1_000_000, DURATION_US);
    await store.update('vm-1', record, replaced.revision);
    expect(table.peek('vm-1')).toEqual({ record: { primaryHost: 'b', term: 2, expiresAtMs: 4_000, backupHost: '' }, revision: 2 });

    expect(a.answer(await callA(a.renewal(1, 1_500_000)))).toEqual({ kind: 'lost', holder: 'b', term: 2, by: 'anotherHost' });
    expect(a.permitUntilUs).toBe(permitA);
    expect(table.peek('vm-1')?.record.primaryHost).toBe('b');

    // b may start once a's record has expired (plus the skew bound): after a's permit, on one clock.
    expect(successorMayStartAtUs(replaced.record, 0)).toBeGreaterThan(permitA);
    const b = holderFor('b');
    const callB = callerOn(store);
    expect(b.answer(await callB(b.renewal(2, 3_000_000)))).toEqual({ kind: 'rewritten' });
    expect(b.answer(await callB(b.renewal(2, 3_000_100)))).toEqual({ kind: 'granted', permitUntilUs: 3_000_100 + DURATION_US - MARGIN_US });
    expect(table.peek('vm-1')).toEqual({ record: { primaryHost: 'b', term: 2, expiresAtMs: 6_000.1, backupHost: '' }, revision: 3 });
  });
});
