/**
 * The lease store on a real nats-server's JetStream KV: compare-and-set on
 * revision, take-over by term, error mapping when the server goes away.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecodeError } from '../../lib/errors.js';
import { LeaseConflictError, LeaseStoreUnavailableError } from '../../lib/lease/errors.js';
import { LeaseHolder } from '../../lib/lease/holder.js';
import { KvLeaseStore, LEASE_BUCKET } from '../../lib/lease/kv-store.js';
import { successorMayStartAtUs, takeOverRecord, withBackup } from '../../lib/lease/take-over.js';
import type { LeaseRecord, LeaseStore, VersionedLease } from '../../lib/lease/types.js';
import { LeaseEffectRunner } from '../../lib/runtime/nats/lease-runner.js';
import type { LeaseOp, LeaseResult } from '../../lib/runtime/types.js';
import { skipWithoutNatsBinary, startNatsServer, withNats, type NatsServerProcess } from './support/nats.js';

/** Bound on one store call in these tests: a dead server fails a call within this. */
const REQUEST_TIMEOUT_MS = 500;
const LEASE_DURATION_US = 3_000_000;
const RELEASE_MARGIN_US = 350_000;

const nats = await withNats();
/** Keys unique to this run: the server may be shared (NATS_URL). */
const RUN = `t${process.pid}-${Date.now().toString(36)}`;
let keys = 0;
const vmKey = (): string => `${RUN}-vm${keys++}`;
const record = (primaryHost: string, term: number, expiresAtMs: number): LeaseRecord => ({ primaryHost, term, expiresAtMs });
const holderFor = (vmId: string, host: string, backupHost = ''): LeaseHolder => new LeaseHolder({ vmId, host, leaseDurationUs: LEASE_DURATION_US, releaseMarginUs: RELEASE_MARGIN_US }, backupHost);

/**
 * One actor's lease calls against a store, as a service performs them: the
 * NATS shell's runner turns a LeaseOp into create/update (a conflict is
 * answered with the record as it now stands) and errors into a LeaseResult.
 */
function callerOn(store: LeaseStore): (request: { requestId: number; op: LeaseOp }) => Promise<LeaseResult> {
  const waiting = new Map<number, { resolve: (r: LeaseResult) => void; reject: (err: unknown) => void }>();
  const failAll = (err: unknown): void => {
    for (const w of waiting.values()) w.reject(err);
  };
  const counters = { leaseOps: 0, leaseConflicts: 0, leaseUnavailable: 0, leaseRefused: 0, leaseTimeouts: 0, leaseErrors: 0 };
  const runner = new LeaseEffectRunner({ store, maxInFlight: 4, opTimeoutMs: 5 * REQUEST_TIMEOUT_MS, counters, deliver: (r) => waiting.get(r.requestId)?.resolve(r), fail: failAll, onError: failAll });
  return ({ requestId, op }) =>
    new Promise((resolve, reject) => {
      waiting.set(requestId, { resolve, reject });
      runner.run(requestId, op);
    });
}

function connectTo(url: string, extra: { reconnect?: boolean } = {}): Promise<NatsConnection> {
  return connect({ servers: url, name: 'specula-lease-test', reconnect: extra.reconnect ?? true, reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 2_000 });
}

describe.skipIf(nats === null)('lease store on JetStream KV', () => {
  const connections: NatsConnection[] = [];
  let first: KvLeaseStore;
  let second: KvLeaseStore;

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) connections.push(await connectTo(nats!.url));
    first = await KvLeaseStore.open(connections[0]!, { requestTimeoutMs: REQUEST_TIMEOUT_MS });
    second = await KvLeaseStore.open(connections[1]!, { requestTimeoutMs: REQUEST_TIMEOUT_MS });
  });

  afterAll(async () => {
    // Only this run's keys; the bucket may be shared with other runs.
    const kv = first?.kv;
    if (kv) for (let i = 0; i < keys; i++) await kv.purge(`${RUN}-vm${i}`).catch(() => undefined);
    await Promise.all(connections.map((nc) => nc.close()));
    await nats?.stop();
  });

  it('creates the bucket specula_leases when missing, keeping 1–5 records per key', async () => {
    const status = await first.kv.status();
    expect(status.bucket).toBe(LEASE_BUCKET);
    expect(status.history).toBeGreaterThanOrEqual(1);
    expect(status.history).toBeLessThanOrEqual(5);
  });

  it('returns null for a VM without a lease', async () => {
    expect(await first.get(vmKey())).toBeNull();
  });

  it('create then a conflicting create fails with LeaseConflictError', async () => {
    const vm = vmKey();
    const rev = await first.create(vm, record('a', 1, 3_000));
    await expect(second.create(vm, record('b', 1, 3_000))).rejects.toBeInstanceOf(LeaseConflictError);
    expect(await second.get(vm)).toEqual({ record: record('a', 1, 3_000), revision: rev });
  });

  it('of two concurrent updates against the same revision exactly one wins', async () => {
    const vm = vmKey();
    const rev = await first.create(vm, record('a', 1, 3_000));
    const results = await Promise.allSettled([first.update(vm, record('a', 1, 4_000), rev), second.update(vm, record('b', 2, 6_000), rev)]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect(lost[0]!.reason).toBeInstanceOf(LeaseConflictError);
    const current = await first.get(vm);
    expect(current?.revision).toBe((won[0] as PromiseFulfilledResult<number>).value);
  });

  it('an update never creates a record', async () => {
    const vm = vmKey();
    await expect(first.update(vm, record('a', 1, 3_000), 1)).rejects.toBeInstanceOf(LeaseConflictError);
    await expect(first.update(vm, record('a', 1, 3_000), 0)).rejects.toBeInstanceOf(LeaseConflictError);
    expect(await first.get(vm)).toBeNull();
  });

  it('a holder creates and renews its lease by compare-and-set on the revisions the server gives', async () => {
    const vm = vmKey();
    const a = holderFor(vm, 'host-a', 'host-b');
    const call = callerOn(first);
    const created = a.renewal(1, 0);
    expect(created.op).toMatchObject({ type: 'cas', expectedRevision: 0 });
    expect(a.answer(await call(created))).toEqual({ kind: 'granted', permitUntilUs: LEASE_DURATION_US - RELEASE_MARGIN_US });
    const rev = (await second.get(vm))!.revision;
    const renewed = a.renewal(1, 1_000_000);
    expect(renewed.op).toMatchObject({ type: 'cas', expectedRevision: rev });
    expect(a.answer(await call(renewed))).toEqual({ kind: 'granted', permitUntilUs: 1_000_000 + LEASE_DURATION_US - RELEASE_MARGIN_US });
    const now = await second.get(vm);
    expect(now?.record).toEqual({ primaryHost: 'host-a', term: 1, expiresAtMs: 4_000, backupHost: 'host-b' });
    expect(now!.revision).toBeGreaterThan(rev);
  });

  it('a membership change by another writer: the holder’s next renewal is rewritten, then carries the new backup over', async () => {
    const vm = vmKey();
    const a = holderFor(vm, 'host-a', 'host-b');
    const call = callerOn(first);
    await call(a.renewal(1, 0));
    // The failover service names another backup, by compare-and-set on the revision it read (another connection).
    const seen = (await second.get(vm))!;
    await second.update(vm, withBackup(seen.record, 'host-c'), seen.revision);
    expect(a.answer(await call(a.renewal(1, 1_000_000)))).toEqual({ kind: 'rewritten' });
    expect(a.backupHost).toBe('host-c');
    expect(a.answer(await call(a.renewal(1, 1_100_000)))).toMatchObject({ kind: 'granted' });
    expect((await second.get(vm))?.record).toEqual({ primaryHost: 'host-a', term: 1, expiresAtMs: 4_100, backupHost: 'host-c' });
  });

  it('a take-over increments the term by exactly 1 and fences the old holder’s renewal', async () => {
    const vm = vmKey();
    const a = holderFor(vm, 'host-a', 'host-b');
    const b = holderFor(vm, 'host-b');
    const callA = callerOn(first);
    const callB = callerOn(second);

    expect(a.answer(await callA(a.renewal(1, 0)))).toMatchObject({ kind: 'granted' });
    const permitA = a.permitUntilUs;

    // The failover service (on the second connection) takes the lease over for host-b on the revision it read.
    const replaced = (await second.get(vm))!;
    expect(replaced.record.term).toBe(1);
    await second.update(vm, takeOverRecord('host-b', replaced.record.term + 1, 1_000_000, LEASE_DURATION_US), replaced.revision);
    expect((await first.get(vm))?.record).toEqual({ primaryHost: 'host-b', term: 2, expiresAtMs: 4_000, backupHost: '' });

    // host-a's renewal against the revision it knows loses: the answer names host-b at term 2.
    expect(a.answer(await callA(a.renewal(1, 1_500_000)))).toEqual({ kind: 'lost', holder: 'host-b', term: 2, by: 'anotherHost' });
    expect(a.permitUntilUs).toBe(permitA);
    expect((await first.get(vm))?.record).toMatchObject({ primaryHost: 'host-b', term: 2 });

    // host-b starts after host-a's record (plus the skew bound) and claims the lease with a renewal of its own.
    expect(successorMayStartAtUs(replaced.record, 0)).toBeGreaterThan(permitA);
    expect(b.answer(await callB(b.renewal(2, 3_000_000)))).toEqual({ kind: 'rewritten' });
    expect(b.answer(await callB(b.renewal(2, 3_000_100)))).toEqual({ kind: 'granted', permitUntilUs: 3_000_100 + LEASE_DURATION_US - RELEASE_MARGIN_US });
    expect((await first.get(vm))?.record).toMatchObject({ primaryHost: 'host-b', term: 2, backupHost: '' });
  });

  it('a value that is not a lease record fails to decode with DecodeError', async () => {
    const vm = vmKey();
    await first.kv.put(vm, '{"primaryHost":"a"}');
    await expect(first.get(vm)).rejects.toBeInstanceOf(DecodeError);
  });
});

// Skips only outside CI: under CI a missing binary fails the tests (startNatsServer says how to provide one).
describe.skipIf(skipWithoutNatsBinary('lease-kv: the server-goes-away tests'))('lease store when its own nats-server goes away', () => {
  let server: NatsServerProcess;
  let nc: NatsConnection;
  let store: KvLeaseStore;

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectTo(server.url);
    store = await KvLeaseStore.open(nc, { requestTimeoutMs: REQUEST_TIMEOUT_MS });
  });

  afterAll(async () => {
    await nc?.close();
    await server?.stop();
    // The restarted server was given the first one's store dir, so stop() leaves it: remove it here.
    if (server) rmSync(server.storeDir, { recursive: true, force: true });
  });

  // One test, in steps: the restart needs the kill, and the record written before it.
  it('a killed server: get, create and update fail with LeaseStoreUnavailableError; restarted on the same store, the record is there and calls work again', async () => {
    const vm = vmKey();
    const written = await store.create(vm, record('a', 1, 3_000));
    await server.kill('SIGKILL');
    for (const call of [() => store.get(vm), () => store.create(vmKey(), record('a', 1, 3_000)), () => store.update(vm, record('a', 1, 4_000), written)]) {
      const started = performance.now();
      const err = await call().then(
        () => new Error('call succeeded against a dead server'),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LeaseStoreUnavailableError);
      expect((err as LeaseStoreUnavailableError).retryable).toBe(true);
      expect(performance.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + 2_000);
    }

    server = await startNatsServer({ port: server.port, storeDir: server.storeDir });
    const deadline = performance.now() + 10_000;
    let seen: VersionedLease | null = null;
    // Bounded: the client reconnects every 100 ms; JetStream needs a moment to recover the stream.
    while (seen === null && performance.now() < deadline) {
      seen = await store.get(vm).catch(() => null);
      if (seen === null) await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen?.record).toEqual(record('a', 1, 3_000));
    const rev = await store.update(vm, record('a', 1, 4_000), seen!.revision);
    expect(rev).toBeGreaterThan(seen!.revision);
  });

  it('on a closed connection calls fail with LeaseStoreUnavailableError at once', async () => {
    const closing = await connectTo(server.url, { reconnect: false });
    const closed = await KvLeaseStore.open(closing, { requestTimeoutMs: REQUEST_TIMEOUT_MS });
    await closing.close();
    await expect(closed.get(vmKey())).rejects.toBeInstanceOf(LeaseStoreUnavailableError);
  });

  it('opening the bucket on a closed connection fails as unavailable', async () => {
    const closed = await connectTo(server.url, { reconnect: false });
    await closed.close();
    await expect(KvLeaseStore.open(closed)).rejects.toBeInstanceOf(LeaseStoreUnavailableError);
  });
});
