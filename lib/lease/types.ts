import { z } from 'zod';
import { ConfigError, InvariantError } from '../errors.js';

/**
 * The store's version of one key: a JetStream KV revision (the stream
 * sequence of the write), or its in-memory equivalent. Revisions of one store
 * only grow; compare-and-set is on this number.
 */
export type Revision = number;

/**
 * Who may release a protected VM's output, and until when.
 *
 * `expiresAtMs` is on the clock of the host that wrote the record (its time
 * at send plus the lease duration). The writer stops releasing a margin
 * before it on its own clock; the failover service lets a successor start
 * only once its own clock reads the expiry plus the skew bound
 * (lib/lease/README.md, docs/fencing.md).
 */
export interface LeaseRecord {
  readonly primaryHost: string;
  /** The fencing term: 1 for the first holder, +1 on every take-over. */
  readonly term: number;
  readonly expiresAtMs: number;
  /**
   * The host the failover service may promote ('' for none): written only by
   * the failover service, before it tells the primary to drop or replace its
   * backup; the primary's renewals carry it over. Absent in records of
   * writers that keep no membership.
   */
  readonly backupHost?: string;
  /**
   * The newest epoch the primary had committed when it renewed (only grows;
   * a take-over carries it over). A failover service that restarts after the
   * primary died learns from it that output has left, and never promotes a
   * backup whose image is a just-created VM's (epoch 0). Absent in records of
   * writers that keep no epochs.
   */
  readonly committedEpoch?: number;
  /**
   * The incarnation (start time) of the agent process whose renewal wrote
   * the record; a take-over writes none, and the successor's first renewal
   * fills it in. An agent that finds its own host and term under another
   * incarnation is that host restarted: the VM it holds now is not the one
   * the lease protects (vopr seed 20502), and it is deposed. Absent in
   * records of writers that keep none.
   */
  readonly holderIncarnation?: number;
}

export const leaseRecordSchema = z.strictObject({
  primaryHost: z.string().min(1),
  term: z.number().int().min(1),
  expiresAtMs: z.number().finite(),
  backupHost: z.string().optional(),
  committedEpoch: z.number().int().min(0).optional(),
  holderIncarnation: z.number().int().min(1).optional(),
});

/** A record with the revision the store gave it. */
export interface VersionedLease {
  readonly record: LeaseRecord;
  readonly revision: Revision;
}

/**
 * One lease per protected VM (key = vmId), compare-and-set on revision.
 * Every method rejects with LeaseStoreUnavailableError when the store cannot
 * be reached or did not answer; a write that rejected so may still have been
 * applied, so the caller re-reads before it writes again.
 */
export interface LeaseStore {
  /** The current record, or null when the VM has none. */
  get(vmId: string): Promise<VersionedLease | null>;
  /** Writes the first record of `vmId`; LeaseConflictError when one exists. */
  create(vmId: string, record: LeaseRecord): Promise<Revision>;
  /** Replaces the record iff its revision is still `expectedRevision`; LeaseConflictError otherwise. */
  update(vmId: string, record: LeaseRecord, expectedRevision: Revision): Promise<Revision>;
}

/** A lease record that breaks the schema is a caller's bug. */
export function assertLeaseRecord(record: LeaseRecord): void {
  const parsed = leaseRecordSchema.safeParse(record);
  if (!parsed.success) throw new InvariantError(`invalid lease record ${JSON.stringify(record)}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
}

/** NATS KV key rule, kept by every store so they accept the same VM ids: letters, digits, - _ / =, dot-separated tokens. */
const LEASE_KEY_PATTERN = /^[-/=\w]+(\.[-/=\w]+)*$/;

/**
 * The longest lease key: far past any vmId (64 characters) with a run's
 * suffix, and far under the NATS client's 4 KB protocol line, past which it
 * drops the connection (every service sharing it with the store).
 */
export const LEASE_KEY_MAX_CHARS = 256;

/** A VM id that cannot be a lease key is a configuration error. */
export function assertLeaseKey(vmId: string): void {
  if (vmId.length > LEASE_KEY_MAX_CHARS) throw new ConfigError(`vmId of ${vmId.length} characters cannot be a lease key (${LEASE_KEY_MAX_CHARS} at most)`);
  if (!LEASE_KEY_PATTERN.test(vmId)) throw new ConfigError(`vmId '${vmId}' cannot be a lease key (letters, digits, - _ / =, dot-separated tokens)`);
}
