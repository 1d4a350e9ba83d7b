/**
 * The simulator's in-memory lease store against the LeaseStore contract that
 * test/integration/lease-store-contract.test.ts holds the JetStream KV store to.
 */
import { MemoryLeaseStore } from '../../../lib/lease/memory-store.js';
import { describeLeaseStoreContract } from '../../support/lease-store-contract.js';

describeLeaseStoreContract('MemoryLeaseStore', async () => ({ store: new MemoryLeaseStore(), close: async () => undefined }));
