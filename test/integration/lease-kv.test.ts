/**
 * The lease store on a real nats-server's JetStream KV: compare-and-set on
 * revision, take-over by term, error mapping when the server goes away.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecodeError } from '../../lib/errors.js';
import { LeaseConflictError, LeaseStoreUnavailableError } from '../../lib/lease/errors.js';
import { KvLeaseStore, LEASE_BUCKET } from '../../lib/lease/kv-store.js';
import { LeaseHolder } from '../../lib/lease/lease-logic.js';
import { leaseOptionsSchema } from '../../lib/lease/options.js';
import type { LeaseNow, LeaseRecord, VersionedLease } from '../../lib/lease/types.js';
import { findNatsServerBinary, startNatsServer, withNats, type NatsServerProcess } from './support/nats.js';

/** Bound on one store call in these tests: a dead server fails a call within this. */
const REQUEST_TIMEOUT_MS = 500;
const OPTIONS = leaseOptionsSchema.parse({});

const nats = await withNats();
/** Keys unique to this run: the server may be shared (NATS_URL). */
const RUN = `t${process.pid}-${Date.now().toString(36)}`;
let keys = 0;
const vmKey = (): string => `${RUN}-vm${keys++}`;
const at = (ms: number): LeaseNow => ({ wallMs: ms, monoMs: ms });
const record = (primaryHost: string, term: number, expiresAtMs: number): LeaseRecord => ({ primaryHost, term, expiresAtMs });

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

  it('a take-over increments the term by exactly 1 and fences the old holder’s renewal', async () => {
    const vm = vmKey();
    const a = new LeaseHolder('host-a', OPTIONS);
    const b = new LeaseHolder('host-b', OPTIONS);

    const da = a.acquire(await first.get(vm), at(0));
    if (da.kind !== 'write') throw new Error(`host-a: ${da.kind}`);
    a.written(await first.create(vm, da.attempt.record));
    expect(a.term).toBe(1);

    // host-b sees the lease expired on its clock and takes it over.
    const db = b.acquire(await second.get(vm), at(OPTIONS.leaseDurationMs));
    if (db.kind !== 'write') throw new Error(`host-b: ${db.kind}`);
    expect(db.attempt.kind).toBe('takeOver');
    b.written(await second.update(vm, db.attempt.record, db.attempt.expectedRevision!));
    expect(b.term).toBe(2);
    expect((await first.get(vm))?.record).toEqual({ primaryHost: 'host-b', term: 2, expiresAtMs: 2 * OPTIONS.leaseDurationMs });

    const ra = a.renew(at(OPTIONS.leaseDurationMs + 1));
    if (ra.kind !== 'write') throw new Error(`host-a renew: ${ra.kind}`);
    await expect(first.update(vm, ra.attempt.record, ra.attempt.expectedRevision!)).rejects.toBeInstanceOf(LeaseConflictError);
    a.conflict();
    a.observe(await first.get(vm));
    expect(a.grant).toBeNull();
    expect(a.highestTermSeen).toBe(2);
  });

  it('a value that is not a lease record fails to decode with DecodeError', async () => {
    const vm = vmKey();
    await first.kv.put(vm, '{"primaryHost":"a"}');
    await expect(first.get(vm)).rejects.toBeInstanceOf(DecodeError);
  });
});

describe.skipIf(findNatsServerBinary() === null)('lease store when its own nats-server goes away', () => {
  let server: NatsServerProcess;
  let nc: NatsConnection;
  let store: KvLeaseStore;
  /** The VM whose lease was written before the kill. */
  const vm = vmKey();

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

  it('after the server is killed, get, create and update fail with LeaseStoreUnavailableError', async () => {
    const rev = await store.create(vm, record('a', 1, 3_000));
    await server.kill('SIGKILL');
    for (const call of [() => store.get(vm), () => store.create(vmKey(), record('a', 1, 3_000)), () => store.update(vm, record('a', 1, 4_000), rev)]) {
      const started = performance.now();
      const err = await call().then(
        () => new Error('call succeeded against a dead server'),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LeaseStoreUnavailableError);
      expect((err as LeaseStoreUnavailableError).retryable).toBe(true);
      expect(performance.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + 2_000);
    }
  });

  it('after a restart on the same store the record is still there and calls work again', async () => {
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
    await nc.close();
    await expect(KvLeaseStore.open(nc)).rejects.toBeInstanceOf(LeaseStoreUnavailableError);
  });
});
