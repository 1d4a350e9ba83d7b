/**
 * Leases with fencing terms, one per protected VM. Pure parts only: the
 * JetStream KV store is shell code, imported from lib/lease/kv-store.js by
 * processes that talk to NATS.
 */
export { LeaseConflictError, LeaseStoreUnavailableError } from './errors.js';
export { expiresAtMs, LeaseHolder, type LeaseHolderOptions, type LostTo, type RenewalOutcome } from './holder.js';
export { sameWrite, successorMayStartAtUs, takeOverRecord, withBackup } from './take-over.js';
export { MemoryLeaseStore, MemoryLeaseTable, NO_FAULT, type LeaseReply, type LeaseRequest, type LeaseStoreFault, type MemoryLeaseStoreOptions, type MemoryLeaseTableOptions } from './memory-store.js';
export { liveLease, MAX_LIVE_LEASE_WAIT_MS, type LiveLeaseOptions } from './live-lease.js';
export { assertLeaseKey, assertLeaseRecord, leaseRecordSchema, type LeaseRecord, type LeaseStore, type Revision, type VersionedLease } from './types.js';
