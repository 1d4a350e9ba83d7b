import { SpeculaError } from '../errors.js';

/**
 * A compare-and-set lost: the record changed since the revision the caller
 * wrote against (or exists, for a create). Retrying the same write cannot
 * succeed; re-read and decide again.
 */
export class LeaseConflictError extends SpeculaError {
  readonly code = 'LEASE_CONFLICT';
  readonly retryable = false;
}

/**
 * The lease store could not be reached or did not answer in time. A write
 * may or may not have been applied: re-read before writing again.
 */
export class LeaseStoreUnavailableError extends SpeculaError {
  readonly code = 'LEASE_UNAVAILABLE';
  readonly retryable = true;
}
