import { describe, expect, it } from 'vitest';
import { liveLease, MAX_LIVE_LEASE_WAIT_MS } from '../../../lib/lease/live-lease.js';
import type { LeaseRecord, VersionedLease } from '../../../lib/lease/types.js';

const RENEW_MS = 50;
const SKEW_MS = 10;

/** A store whose record a holder renews at the times given (ms on the test's clock), each renewal one revision up and a lease of `leaseMs`. */
function world(startRecord: LeaseRecord | null, renewalsAtMs: readonly number[], leaseMs = 500) {
  let nowMs = 1_000;
  let reads = 0;
  const current = (): VersionedLease | null => {
    if (startRecord === null) return null;
    const done = renewalsAtMs.filter((t) => t <= nowMs);
    if (done.length === 0) return { record: startRecord, revision: 7 };
    return { record: { ...startRecord, expiresAtMs: done[done.length - 1]! + leaseMs }, revision: 7 + done.length };
  };
  return {
    store: { get: async () => (reads++, current()) },
    options: { nowMs: () => nowMs, sleepMs: async (ms: number) => void (nowMs += ms), renewIntervalMs: RENEW_MS, clockSkewMs: SKEW_MS },
    now: () => nowMs,
    reads: () => reads,
  };
}

const RECORD: LeaseRecord = { primaryHost: 'host-b', term: 2, expiresAtMs: 1_400, committedEpoch: 766 };

describe('liveLease', () => {
  it('is null for a VM without a lease, after one read', async () => {
    const w = world(null, []);
    expect(await liveLease(w.store, 'vm1', w.options)).toBeNull();
    expect(w.reads()).toBe(1);
  });

  it('is null, at once, for a record already expired past the skew bound (an earlier run that ended)', async () => {
    const w = world({ ...RECORD, expiresAtMs: 1_000 - SKEW_MS }, []);
    expect(await liveLease(w.store, 'vm1', w.options)).toBeNull();
    expect(w.now()).toBe(1_000);
  });

  it('finds a holder that renews, within one renewal interval', async () => {
    const w = world(RECORD, [1_030, 1_080, 1_130]);
    const live = await liveLease(w.store, 'vm1', w.options);
    expect(live).toEqual({ ...RECORD, expiresAtMs: 1_530 });
    expect(w.now()).toBe(1_000 + RENEW_MS);
  });

  it('waits out an unexpired record nobody renews, reading it once an interval, and is null once it has expired (a run just stopped)', async () => {
    const w = world(RECORD, []);
    expect(await liveLease(w.store, 'vm1', w.options)).toBeNull();
    expect(w.now()).toBe(RECORD.expiresAtMs + SKEW_MS);
    expect(w.reads()).toBe(1 + Math.ceil((RECORD.expiresAtMs + SKEW_MS - 1_000) / RENEW_MS));
  });

  it('is null when the record is forgotten meanwhile', async () => {
    let gone = false;
    const w = world(RECORD, []);
    const store = { get: async () => (gone ? null : ((gone = true), w.store.get())) };
    expect(await liveLease(store, 'vm1', w.options)).toBeNull();
  });

  it('gives up after its bound on a record whose expiry lies far ahead and is never renewed', async () => {
    const w = world({ ...RECORD, expiresAtMs: 1_000 + 3_600_000 }, []);
    expect(await liveLease(w.store, 'vm1', w.options)).toBeNull();
    expect(w.now() - 1_000).toBe(MAX_LIVE_LEASE_WAIT_MS);
  });
});
