/**
 * The lease store on JetStream KV: bucket `specula_leases`, key = vmId,
 * value = the LeaseRecord as JSON, compare-and-set with kv.create (expects no
 * record) and kv.update (expects a revision). This is shell code (NATS I/O);
 * cores use the pure lease logic and never import it.
 */
import { JetStreamApiCodes, JetStreamApiError, jetstream } from '@nats-io/jetstream';
import { jserrors } from '@nats-io/jetstream/internal';
import { Kvm, type KV } from '@nats-io/kv';
import { errors as natsErrors, type NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { parseConfig } from '../config/parse.js';
import { DecodeError } from '../errors.js';
import { LeaseConflictError, LeaseStoreUnavailableError } from './errors.js';
import { assertLeaseKey, assertLeaseRecord, leaseRecordSchema, type LeaseRecord, type LeaseStore, type Revision, type VersionedLease } from './types.js';

export const LEASE_BUCKET = 'specula_leases';

export const kvLeaseStoreOptionsSchema = z.object({
  bucket: z.string().regex(/^[-\w]+$/).default(LEASE_BUCKET),
  /** Records kept per key (the last few terms, for post-mortems); JetStream KV allows up to 64, we keep 1–5. */
  history: z.number().int().min(1).max(5).default(5),
  /** Replicas of the bucket's stream (1, 3 or 5; more than one needs a JetStream cluster). */
  replicas: z.union([z.literal(1), z.literal(3), z.literal(5)]).default(1),
  /** How long one store call may wait for JetStream before it fails as unavailable. */
  requestTimeoutMs: z.number().int().positive().default(2_000),
});
export type KvLeaseStoreOptionsInput = z.input<typeof kvLeaseStoreOptionsSchema>;
export type KvLeaseStoreOptions = z.infer<typeof kvLeaseStoreOptionsSchema>;

/** Errors that mean "could not reach JetStream or no answer in time": the write may have been applied. */
const UNAVAILABLE_ERRORS = [
  natsErrors.TimeoutError,
  natsErrors.ClosedConnectionError,
  natsErrors.DrainingConnectionError,
  natsErrors.ConnectionError,
  natsErrors.NoRespondersError,
  natsErrors.RequestError,
] as const;

/** JetStream status for "temporarily unavailable" (no leader, restarting). */
const JS_STATUS_UNAVAILABLE = 503;

/**
 * Maps a NATS error to the lease errors: a wrong last sequence is a lost
 * compare-and-set; connection trouble and timeouts are unavailable (outcome
 * unknown). Anything else (permissions, bad configuration) passes through.
 */
export function mapKvError(err: unknown, what: string): unknown {
  if (err instanceof JetStreamApiError) {
    if (err.code === JetStreamApiCodes.StreamWrongLastSequence || err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown) {
      return new LeaseConflictError(`${what}: ${err.message}`, { cause: err });
    }
    if (err.status === JS_STATUS_UNAVAILABLE) return new LeaseStoreUnavailableError(`${what}: ${err.message}`, { cause: err });
    return err;
  }
  // No responders to a write or a read: the stream has no leader (a replica is lost, an election runs) or JetStream is down.
  if (err instanceof jserrors.JetStreamNotEnabled) return new LeaseStoreUnavailableError(`${what}: ${err.message} (no JetStream answer)`, { cause: err });
  if (UNAVAILABLE_ERRORS.some((type) => err instanceof type)) {
    return new LeaseStoreUnavailableError(`${what}: ${(err as Error).message}`, { cause: err });
  }
  return err;
}

export class KvLeaseStore implements LeaseStore {
  private constructor(
    readonly kv: KV,
    readonly options: KvLeaseStoreOptions,
  ) {}

  /** Opens the bucket, creating it when missing. LeaseStoreUnavailableError when JetStream does not answer. */
  static async open(nc: NatsConnection, input: KvLeaseStoreOptionsInput = {}): Promise<KvLeaseStore> {
    const options = parseConfig(kvLeaseStoreOptionsSchema, input);
    try {
      const js = jetstream(nc, { timeout: options.requestTimeoutMs });
      const kv = await new Kvm(js).create(options.bucket, { history: options.history, replicas: options.replicas, timeout: options.requestTimeoutMs });
      return new KvLeaseStore(kv, options);
    } catch (err) {
      // Opening, it means a server without JetStream: openLeaseStore says so.
      if (err instanceof jserrors.JetStreamNotEnabled) throw err;
      throw mapKvError(err, `open lease bucket ${options.bucket}`);
    }
  }

  /**
   * Opens a bucket that exists, as it was made (a deployment's has its own
   * replicas, which creating it with these options would contradict).
   */
  static async openExisting(nc: NatsConnection, input: KvLeaseStoreOptionsInput = {}): Promise<KvLeaseStore> {
    const options = parseConfig(kvLeaseStoreOptionsSchema, input);
    try {
      const kv = await new Kvm(jetstream(nc, { timeout: options.requestTimeoutMs })).open(options.bucket);
      return new KvLeaseStore(kv, options);
    } catch (err) {
      throw mapKvError(err, `open lease bucket ${options.bucket}`);
    }
  }

  async get(vmId: string): Promise<VersionedLease | null> {
    const key = checkKey(vmId);
    let entry;
    try {
      entry = await this.kv.get(key);
    } catch (err) {
      throw mapKvError(err, `get lease ${vmId}`);
    }
    if (entry === null || entry.operation !== 'PUT') return null;
    return { record: decodeRecord(vmId, entry.string()), revision: entry.revision };
  }

  async create(vmId: string, record: LeaseRecord): Promise<Revision> {
    const key = checkKey(vmId);
    assertLeaseRecord(record);
    try {
      return await this.kv.create(key, JSON.stringify(record));
    } catch (err) {
      throw mapKvError(err, `create lease ${vmId}`);
    }
  }

  async update(vmId: string, record: LeaseRecord, expectedRevision: Revision): Promise<Revision> {
    const key = checkKey(vmId);
    assertLeaseRecord(record);
    if (!(Number.isInteger(expectedRevision) && expectedRevision > 0)) throw new LeaseConflictError(`update lease ${vmId}: no record has revision ${expectedRevision}`);
    try {
      return await this.kv.update(key, JSON.stringify(record), expectedRevision, this.options.requestTimeoutMs);
    } catch (err) {
      throw mapKvError(err, `update lease ${vmId}`);
    }
  }
}

/**
 * Forgets `vmId`'s lease (purges its history): only for a VM being created
 * anew under an id an earlier one used (`specula up`), never while it is
 * protected. Its first primary then creates the record at term 1.
 */
export async function forgetLease(store: KvLeaseStore, vmId: string): Promise<void> {
  try {
    await store.kv.purge(checkKey(vmId));
  } catch (err) {
    throw mapKvError(err, `forget lease ${vmId}`);
  }
}

function checkKey(vmId: string): string {
  assertLeaseKey(vmId);
  return vmId;
}

function decodeRecord(vmId: string, text: string): LeaseRecord {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DecodeError(`lease ${vmId}: value is not JSON`, { cause: err });
  }
  const parsed = leaseRecordSchema.safeParse(json);
  if (!parsed.success) throw new DecodeError(`lease ${vmId}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
