/**
 * The JetStream KV lease store against the LeaseStore contract that
 * test/unit/lease/store-contract.test.ts holds the simulator's store to.
 * Every test gets a bucket of its own, so revisions and keys start empty
 * even on a shared server (NATS_URL).
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe } from 'vitest';
import { KvLeaseStore } from '../../lib/lease/kv-store.js';
import { describeLeaseStoreContract } from '../support/lease-store-contract.js';
import { withNats } from './support/nats.js';

/** Bound on one store call: a stuck server fails a test within this, not at the test timeout. */
const REQUEST_TIMEOUT_MS = 2_000;

// Skips (loudly) only outside CI; under CI a missing server throws here and the file fails.
const nats = await withNats();
/** Bucket names unique to this run: the server may be shared with other runs. */
const RUN = `lease_contract_${process.pid}_${Date.now().toString(36)}`;

describe.skipIf(nats === null)('lease store contract on JetStream KV', () => {
  let nc: NatsConnection;
  let buckets = 0;
  /** Buckets not destroyed yet: afterAll removes those a failed close left behind. */
  const open = new Set<KvLeaseStore>();

  beforeAll(async () => {
    nc = await connect({ servers: nats!.url, name: 'specula-lease-contract-test', timeout: 2_000 });
  });

  afterAll(async () => {
    for (const store of open) await store.kv.destroy().catch(() => undefined);
    await nc?.close();
    await nats?.stop();
  });

  describeLeaseStoreContract('KvLeaseStore', async () => {
    const store = await KvLeaseStore.open(nc, { bucket: `${RUN}_${buckets++}`, history: 1, requestTimeoutMs: REQUEST_TIMEOUT_MS });
    open.add(store);
    return {
      store,
      close: async () => {
        await store.kv.destroy();
        open.delete(store);
      },
    };
  });
});
