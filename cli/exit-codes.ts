import { ConfigError, TransportError, VmRunningError, type SpeculaError } from '../lib/errors.js';
import { LeaseStoreUnavailableError } from '../lib/lease/errors.js';
import { ServiceProcessError } from './launcher/service-process-error.js';

/** Process exit codes of the specula CLI: a script tells failures apart by these, never by what stderr says. */
export const EXIT_OK = 0;
/** The run finished but found a problem (stream not verified, invariant broken), or an error of no class below. */
export const EXIT_FAILED = 1;
/** Bad flags or configuration: nothing ran. */
export const EXIT_USAGE = 2;
/**
 * The bus is not there or not fit for the service (sysexits' EX_UNAVAILABLE):
 * NATS unreachable, credentials refused, a server without JetStream or with a
 * max_payload below a checkpoint chunk, the lease store lost. Worth a retry
 * once the server is fixed; nothing the command was asked to do is wrong.
 */
export const EXIT_UNAVAILABLE = 69;
/**
 * The VM runs elsewhere: another `specula up` or a deployment renews its
 * lease (sysexits' EX_TEMPFAIL: it may start once that one has stopped).
 */
export const EXIT_VM_RUNNING = 75;

/** The exit code of a command ended by an expected, typed failure. */
export function exitCodeOf(err: SpeculaError): number {
  // By class, not by `code`: a code misspelt here would pass the compiler and exit 1.
  if (err instanceof ConfigError) return EXIT_USAGE;
  if (err instanceof TransportError || err instanceof LeaseStoreUnavailableError) return EXIT_UNAVAILABLE;
  if (err instanceof VmRunningError) return EXIT_VM_RUNNING;
  // A service this command launched ended for a reason of these kinds (its bus is unfit, its VM runs elsewhere): so did the command.
  const childCode = err instanceof ServiceProcessError ? err.childExit?.code : undefined;
  if (childCode === EXIT_UNAVAILABLE || childCode === EXIT_VM_RUNNING) return childCode;
  return EXIT_FAILED;
}
