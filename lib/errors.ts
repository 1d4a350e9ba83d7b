/**
 * Typed errors: shells decide retry vs. exit from `code` and `retryable`, never
 * from message text.
 */
export abstract class SpeculaError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A broken invariant: a bug. The simulator turns it into a failing seed. */
export class InvariantError extends SpeculaError {
  readonly code = 'INVARIANT';
  readonly retryable = false;
}

/** A configuration value is invalid; the process names it and exits 2. */
export class ConfigError extends SpeculaError {
  readonly code = 'CONFIG';
  readonly retryable = false;
}

/** Bytes on the wire could not be decoded into a known message. */
export class DecodeError extends SpeculaError {
  readonly code = 'DECODE';
  readonly retryable = false;
}

/** A message arrived on a subject no handler knows. */
export class UnknownSubjectError extends SpeculaError {
  readonly code = 'UNKNOWN_SUBJECT';
  readonly retryable = false;
}

/** The transport (NATS) is unreachable or closed; worth retrying. */
export class TransportError extends SpeculaError {
  readonly code: string = 'TRANSPORT';
  readonly retryable: boolean = true;
}

/**
 * The NATS server answered and refused the credentials: a transport error
 * (the bus is not there for this process), but not worth retrying with the
 * same ones, and no sign that nothing answers (`specula up` starts its own
 * server only then).
 */
export class CredentialsRefusedError extends TransportError {
  override readonly code = 'CREDENTIALS_REFUSED';
  override readonly retryable = false;
}

/** A checkpointed state snapshot is malformed or of another version; it cannot be restored. */
export class SnapshotError extends SpeculaError {
  readonly code = 'SNAPSHOT';
  readonly retryable = false;
}

/** The auditor saw a broken invariant (docs/auditor.md); `violation` says which, where and when. */
export class InvariantViolationError extends SpeculaError {
  readonly code = 'INVARIANT_VIOLATION';
  readonly retryable = false;
  constructor(readonly violation: { readonly invariant: string; readonly rule: string; readonly atUs: number; readonly detail: string }) {
    super(`${violation.invariant} (${violation.rule}) at ${violation.atUs}µs: ${violation.detail}`);
  }
}

/** A command's output file could not be written after its work was done (a disk full, a path that refused the write). */
export class OutputFileError extends SpeculaError {
  readonly code = 'OUTPUT_FILE';
  readonly retryable = false;
}

/** A run's VMs did not become protected (a backup with a whole image) in the time allowed; worth retrying on a quieter machine. */
export class NotProtectedError extends SpeculaError {
  readonly code = 'NOT_PROTECTED';
  readonly retryable = true;
}

/**
 * An audit that did not see the VM's bus (a subscription the server refused,
 * or no message at all): its zero violations would prove nothing, so the run
 * fails instead of passing.
 */
export class AuditIncompleteError extends SpeculaError {
  readonly code = 'AUDIT_INCOMPLETE';
  readonly retryable = false;
}

/** A run stopped by a signal (SIGINT, SIGTERM) before it finished: every process it started was stopped. */
export class InterruptedError extends SpeculaError {
  readonly code = 'INTERRUPTED';
  readonly retryable = true;

  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}; every process the run started was stopped`);
  }
}

/** A VM to be created is running already: a live holder renews its lease (on this bus, from another run or deployment). */
export class VmRunningError extends SpeculaError {
  readonly code = 'VM_RUNNING';
  readonly retryable = false;
}
