/**
 * What every LeaseStore promises (lib/lease/types.ts), as one suite run
 * against each implementation: the simulator's MemoryLeaseStore must behave
 * as the JetStream KV store does, or simulated runs prove nothing about real
 * ones. Only a healthy store is exercised here; failure modes (unavailable,
 * lost responses) are implementation-specific and tested next to each store.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { ConfigError, InvariantError } from '../../lib/errors.js';
import { LeaseConflictError } from '../../lib/lease/errors.js';
import { LEASE_KEY_MAX_CHARS, type LeaseRecord, type LeaseStore, type Revision } from '../../lib/lease/types.js';

export interface LeaseStoreUnderTest {
  readonly store: LeaseStore;
  /** Releases what `make` set up (a bucket, a connection); called once per test, pass or fail. */
  close(): Promise<void>;
}

// Frozen: a store that aliases what it is given must fail the copy tests, not rewrite these expectations.
const A1: LeaseRecord = Object.freeze({ primaryHost: 'host-a', term: 1, expiresAtMs: 3_000 });
const A1_RENEWED: LeaseRecord = Object.freeze({ primaryHost: 'host-a', term: 1, expiresAtMs: 4_000, backupHost: 'host-b', committedEpoch: 7 });
const B2: LeaseRecord = Object.freeze({ primaryHost: 'host-b', term: 2, expiresAtMs: 6_000, backupHost: '', committedEpoch: 7 });

/** Records that break leaseRecordSchema: a caller's bug, whatever the store. */
const BAD_RECORDS: readonly (readonly [string, LeaseRecord])[] = [
  ['term 0', { ...A1, term: 0 }],
  ['fractional term', { ...A1, term: 1.5 }],
  ['empty primaryHost', { ...A1, primaryHost: '' }],
  ['NaN expiresAtMs', { ...A1, expiresAtMs: Number.NaN }],
  ['infinite expiresAtMs', { ...A1, expiresAtMs: Number.POSITIVE_INFINITY }],
  ['negative committedEpoch', { ...A1, committedEpoch: -1 }],
  ['non-string backupHost', { ...A1, backupHost: 7 } as unknown as LeaseRecord],
  ['an unknown field', { ...A1, holder: 'host-a' } as unknown as LeaseRecord],
  ['a missing field', { primaryHost: 'host-a', term: 1 } as unknown as LeaseRecord],
];

/** VM ids that cannot be NATS KV keys: a configuration error, whatever the store. */
const BAD_VM_IDS: readonly string[] = ['', 'vm 1', '.vm', 'vm.', 'vm..1', 'vm.*', 'vm.>', 'vm:1', 'vm-ü', '$KV'];

/** Unusual but valid keys: every store must accept them. */
const ODD_VALID_VM_IDS: readonly string[] = ['vm', 'vm.a', 'vm.a.b', 'A_1/b=c-d'];

/** Revisions the store can never have given a record: an update against one never applies. */
const IMPOSSIBLE_REVISIONS: readonly Revision[] = [0, -1, 1.5, Number.NaN];

export function describeLeaseStoreContract(name: string, make: () => Promise<LeaseStoreUnderTest>): void {

  /** A fresh, empty store for one test, closed when the test ends however it ends. */
  const fresh = async (): Promise<LeaseStore> => {
    const { store, close } = await make();
    onTestFinished(close);
    return store;
  };

  describe(`LeaseStore contract: ${name}`, () => {
    describe('get', () => {
      it('returns null for a VM that has no record, even while other VMs have one', async () => {
        const store = await fresh();
        expect(await store.get('vm-1')).toBeNull();
        await store.create('vm-2', A1);
        expect(await store.get('vm-1')).toBeNull();
      });
    });

    describe('create (expects no record)', () => {
      it('writes the first record and answers its revision, a positive integer, which get then reports', async () => {
        const store = await fresh();
        const rev = await store.create('vm-1', A1);
        expect(Number.isInteger(rev) && rev > 0).toBe(true);
        expect(await store.get('vm-1')).toEqual({ record: A1, revision: rev });
      });

      it('keeps the optional fields (backupHost, including the empty one, and committedEpoch)', async () => {
        const store = await fresh();
        const rev = await store.create('vm-1', B2);
        expect(await store.get('vm-1')).toEqual({ record: B2, revision: rev });
      });

      it('fails with LeaseConflictError when the VM has a record, which stays as it was', async () => {
        const store = await fresh();
        const rev = await store.create('vm-1', A1);
        await expect(store.create('vm-1', B2)).rejects.toBeInstanceOf(LeaseConflictError);
        await expect(store.create('vm-1', A1)).rejects.toBeInstanceOf(LeaseConflictError);
        expect(await store.get('vm-1')).toEqual({ record: A1, revision: rev });
      });

      it('fails with LeaseConflictError after updates too: a record exists at any revision', async () => {
        const store = await fresh();
        const rev = await store.update('vm-1', A1_RENEWED, await store.create('vm-1', A1));
        await expect(store.create('vm-1', B2)).rejects.toBeInstanceOf(LeaseConflictError);
        expect(await store.get('vm-1')).toEqual({ record: A1_RENEWED, revision: rev });
      });
    });

    describe('update (expects a revision)', () => {
      it('replaces the record when the expected revision is current, answering a larger revision', async () => {
        const store = await fresh();
        const created = await store.create('vm-1', A1);
        const renewed = await store.update('vm-1', A1_RENEWED, created);
        expect(Number.isInteger(renewed) && renewed > created).toBe(true);
        expect(await store.get('vm-1')).toEqual({ record: A1_RENEWED, revision: renewed });
        const takenOver = await store.update('vm-1', B2, renewed);
        expect(takenOver).toBeGreaterThan(renewed);
        expect(await store.get('vm-1')).toEqual({ record: B2, revision: takenOver });
      });

      it('fails with LeaseConflictError on a stale revision (the one just replaced), changing nothing', async () => {
        const store = await fresh();
        const created = await store.create('vm-1', A1);
        const renewed = await store.update('vm-1', A1_RENEWED, created);
        await expect(store.update('vm-1', B2, created)).rejects.toBeInstanceOf(LeaseConflictError);
        expect(await store.get('vm-1')).toEqual({ record: A1_RENEWED, revision: renewed });
      });

      it('fails with LeaseConflictError on a revision the store has not given yet', async () => {
        const store = await fresh();
        const created = await store.create('vm-1', A1);
        await expect(store.update('vm-1', B2, created + 1)).rejects.toBeInstanceOf(LeaseConflictError);
        await expect(store.update('vm-1', B2, created + 1_000)).rejects.toBeInstanceOf(LeaseConflictError);
        expect(await store.get('vm-1')).toEqual({ record: A1, revision: created });
      });

      it('never creates: on a VM without a record every revision conflicts', async () => {
        const store = await fresh();
        const other = await store.create('vm-2', A1);
        for (const revision of [...IMPOSSIBLE_REVISIONS, 1, other]) {
          await expect(store.update('vm-1', A1, revision), `revision ${revision}`).rejects.toBeInstanceOf(LeaseConflictError);
        }
        expect(await store.get('vm-1')).toBeNull();
      });

      it('never applies against an impossible revision (0, negative, fractional, NaN) on an existing record', async () => {
        const store = await fresh();
        const created = await store.create('vm-1', A1);
        for (const revision of IMPOSSIBLE_REVISIONS) {
          await expect(store.update('vm-1', B2, revision), `revision ${revision}`).rejects.toBeInstanceOf(LeaseConflictError);
        }
        expect(await store.get('vm-1')).toEqual({ record: A1, revision: created });
      });

      it('of two updates sent together against the same revision exactly one wins; the other conflicts', async () => {
        const store = await fresh();
        const created = await store.create('vm-1', A1);
        const results = await Promise.allSettled([store.update('vm-1', A1_RENEWED, created), store.update('vm-1', B2, created)]);
        const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [{ i, revision: r.value }] : []));
        const lost = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
        expect(won).toHaveLength(1);
        expect(lost).toHaveLength(1);
        expect(lost[0]).toBeInstanceOf(LeaseConflictError);
        expect(await store.get('vm-1')).toEqual({ record: [A1_RENEWED, B2][won[0]!.i], revision: won[0]!.revision });
      });
    });

    describe('records that break the schema: InvariantError, nothing written', () => {
      it.each(BAD_RECORDS)('create with %s', async (_what, bad) => {
        const store = await fresh();
        await expect(store.create('vm-1', bad)).rejects.toBeInstanceOf(InvariantError);
        expect(await store.get('vm-1')).toBeNull();
      });

      it.each(BAD_RECORDS)('update with %s, even on the current revision', async (_what, bad) => {
        const store = await fresh();
        const created = await store.create('vm-1', A1);
        await expect(store.update('vm-1', bad, created)).rejects.toBeInstanceOf(InvariantError);
        expect(await store.get('vm-1')).toEqual({ record: A1, revision: created });
        // Nothing was consumed either: the revision read before still updates.
        expect(await store.update('vm-1', A1_RENEWED, created)).toBeGreaterThan(created);
      });

      it('a bad record is a bug before it is a conflict: InvariantError on an existing VM and on a stale revision', async () => {
        const store = await fresh();
        const created = await store.create('vm-1', A1);
        const [, bad] = BAD_RECORDS[0]!;
        await expect(store.create('vm-1', bad)).rejects.toBeInstanceOf(InvariantError);
        await expect(store.update('vm-1', bad, created + 1)).rejects.toBeInstanceOf(InvariantError);
        await expect(store.update('vm-2', bad, 0)).rejects.toBeInstanceOf(InvariantError);
      });
    });

    describe('VM ids that cannot be lease keys: ConfigError, nothing written', () => {
      it.each(BAD_VM_IDS)('%j, on get, create and update', async (vmId) => {
        const store = await fresh();
        await expect(store.get(vmId)).rejects.toBeInstanceOf(ConfigError);
        await expect(store.create(vmId, A1)).rejects.toBeInstanceOf(ConfigError);
        await expect(store.update(vmId, A1, 1)).rejects.toBeInstanceOf(ConfigError);
      });

      it('the id is checked first: a bad id with a bad record or revision is still a ConfigError', async () => {
        const store = await fresh();
        const [, bad] = BAD_RECORDS[0]!;
        await expect(store.create('vm 1', bad)).rejects.toBeInstanceOf(ConfigError);
        await expect(store.update('vm 1', bad, 0)).rejects.toBeInstanceOf(ConfigError);
      });

      it('a rejected id leaves the store usable and unchanged', async () => {
        const store = await fresh();
        const created = await store.create('vm-1', A1);
        await expect(store.create('vm 1', B2)).rejects.toBeInstanceOf(ConfigError);
        expect(await store.get('vm-1')).toEqual({ record: A1, revision: created });
        expect(await store.create('vm-2', B2)).toBeGreaterThan(created);
      });

      it('rejects an id longer than LEASE_KEY_MAX_CHARS with ConfigError, before anything is sent, and stays usable', async () => {
        const store = await fresh();
        const longest = 'v'.repeat(LEASE_KEY_MAX_CHARS);
        const tooLong = 'v'.repeat(LEASE_KEY_MAX_CHARS + 1);
        await expect(store.get(tooLong)).rejects.toBeInstanceOf(ConfigError);
        await expect(store.create(tooLong, A1)).rejects.toBeInstanceOf(ConfigError);
        await expect(store.update(tooLong, A1, 1)).rejects.toBeInstanceOf(ConfigError);
        const created = await store.create(longest, A1);
        expect(await store.get(longest)).toEqual({ record: A1, revision: created });
      });
    });

    describe('copies', () => {
      it('stores a copy: changing the caller’s object after create or update changes nothing stored', async () => {
        const store = await fresh();
        const record = { ...A1 };
        const created = await store.create('vm-1', record);
        record.expiresAtMs = 99;
        record.primaryHost = 'host-z';
        expect(await store.get('vm-1')).toEqual({ record: A1, revision: created });
        const renewal = { ...A1_RENEWED };
        const renewed = await store.update('vm-1', renewal, created);
        renewal.term = 9;
        renewal.backupHost = 'host-z';
        expect(await store.get('vm-1')).toEqual({ record: A1_RENEWED, revision: renewed });
      });

      it('hands out a copy: changing a record get returned changes nothing stored', async () => {
        const store = await fresh();
        const created = await store.create('vm-1', { ...A1 });
        // The type says readonly; a caller that casts it away must still not reach the store's state.
        const seen = (await store.get('vm-1'))!.record as { -readonly [K in keyof LeaseRecord]: LeaseRecord[K] };
        seen.expiresAtMs = 99;
        expect(await store.get('vm-1')).toEqual({ record: A1, revision: created });
      });
    });

    describe('VMs are independent', () => {
      it('writes and conflicts on one VM leave another’s record and revision as they were', async () => {
        const store = await fresh();
        const one = await store.create('vm-1', A1);
        const two = await store.create('vm-2', B2);
        const oneRenewed = await store.update('vm-1', A1_RENEWED, one);
        await expect(store.update('vm-1', B2, one)).rejects.toBeInstanceOf(LeaseConflictError);
        await expect(store.create('vm-1', B2)).rejects.toBeInstanceOf(LeaseConflictError);
        expect(await store.get('vm-2')).toEqual({ record: B2, revision: two });
        expect(await store.get('vm-1')).toEqual({ record: A1_RENEWED, revision: oneRenewed });
      });

      it('a revision another VM holds does not let an update through', async () => {
        const store = await fresh();
        const one = await store.create('vm-1', A1);
        const two = await store.create('vm-2', B2);
        await expect(store.update('vm-1', B2, two)).rejects.toBeInstanceOf(LeaseConflictError);
        await expect(store.update('vm-2', A1, one)).rejects.toBeInstanceOf(LeaseConflictError);
        expect(await store.get('vm-1')).toEqual({ record: A1, revision: one });
        expect(await store.get('vm-2')).toEqual({ record: B2, revision: two });
      });

      it('dotted ids are separate keys, not a hierarchy: "vm" and "vm.a" never see each other', async () => {
        const store = await fresh();
        const revisions = new Map<string, Revision>();
        for (const [i, vmId] of ODD_VALID_VM_IDS.entries()) revisions.set(vmId, await store.create(vmId, { ...A1, expiresAtMs: i }));
        for (const [i, vmId] of ODD_VALID_VM_IDS.entries()) {
          expect(await store.get(vmId), vmId).toEqual({ record: { ...A1, expiresAtMs: i }, revision: revisions.get(vmId) });
        }
        expect(await store.get('vm.b')).toBeNull();
        expect(await store.get('a')).toBeNull();
      });
    });

    describe('revisions', () => {
      it('grow with every write, across VMs, in the order the writes were made', async () => {
        const store = await fresh();
        const current = new Map<string, Revision>();
        const given: Revision[] = [];
        // A fixed, bounded schedule of creates and renewals interleaved over three VMs.
        for (const vmId of ['vm-3', 'vm-1', 'vm-2', 'vm-1', 'vm-3', 'vm-1', 'vm-2', 'vm-2']) {
          const expected = current.get(vmId);
          const revision = expected === undefined ? await store.create(vmId, A1) : await store.update(vmId, { ...A1, expiresAtMs: A1.expiresAtMs + given.length }, expected);
          current.set(vmId, revision);
          given.push(revision);
        }
        for (let i = 1; i < given.length; i++) expect(given[i], `write ${i}`).toBeGreaterThan(given[i - 1]!);
        for (const [vmId, revision] of current) expect((await store.get(vmId))?.revision, vmId).toBe(revision);
      });

      it('a write that failed changes neither the record nor its revision, and the revision read before still updates', async () => {
        const store = await fresh();
        const created = await store.create('vm-1', A1);
        await expect(store.create('vm-1', A1)).rejects.toBeInstanceOf(LeaseConflictError);
        await expect(store.update('vm-1', A1, created + 1)).rejects.toBeInstanceOf(LeaseConflictError);
        await expect(store.create('vm-1', { ...A1, term: 0 })).rejects.toBeInstanceOf(InvariantError);
        expect((await store.get('vm-1'))?.revision).toBe(created);
        expect(await store.update('vm-1', A1_RENEWED, created)).toBeGreaterThan(created);
      });
    });
  });
}
