/**
 * Leases with fencing terms, one per protected VM. Pure parts only: the
 * JetStream KV store is shell code, imported from lib/lease/kv-store.js by
 * processes that talk to NATS.
 */
export { LeaseConflictError, LeaseStoreUnavailableError, StaleTermError } from './errors.js';
export {
  canRelease,
  checkTerm,
  decideAcquire,
  HOLDER_ALIVE,
  isExpired,
  LeaseHolder,
  leaseRecordAt,
  releaseDeadlineMonoMs,
  renewAttempt,
  type AcquireDecision,
  type FailoverVerdict,
  type LeaseAttempt,
  type LeaseGrant,
  type LeaseWriteKind,
  type RenewDecision,
} from './lease-logic.js';
export { MemoryLeaseStore, MemoryLeaseTable, NO_FAULT, type LeaseReply, type LeaseRequest, type LeaseStoreFault, type MemoryLeaseStoreOptions, type MemoryLeaseTableOptions } from './memory-store.js';
export { leaseOptionsSchema, type LeaseOptions, type LeaseOptionsInput } from './options.js';
export { assertLeaseKey, assertLeaseRecord, leaseRecordSchema, type LeaseNow, type LeaseRecord, type LeaseStore, type Revision, type VersionedLease } from './types.js';
