import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Log level of services unless SPECULA_LOG_LEVEL says otherwise. */
export const DEFAULT_LOG_LEVEL = 'info';

/** What every line of a service process carries. */
export interface LoggerBindings {
  readonly role: string;
  /** The specula host the process serves (host-a); null for the failover service and the client. */
  readonly host: string | null;
  readonly vms: readonly string[];
}

/**
 * A structured logger writing JSON lines to stderr (stdout carries a
 * service's results), bound to the actor's role, its specula host and its
 * VM. The machine's own name is `hostname`, as pino calls it: with every
 * process of `specula up` on one machine, it tells them apart no more than
 * `pid` does. A process of several VMs binds them as `vms`, and each VM's
 * shell logs under `vmLogger`; each key appears once in a line.
 */
export function createLogger(bindings: LoggerBindings, level = process.env.SPECULA_LOG_LEVEL || DEFAULT_LOG_LEVEL, destination: DestinationStream = pino.destination({ dest: 2, sync: true })): Logger {
  const { role, host, vms } = bindings;
  const base = { role, ...(host === null ? {} : { host }), ...(vms.length === 1 ? { vm: vms[0] } : { vms: vms.join(',') }), hostname: hostname(), pid: process.pid };
  return pino({ name: 'specula', level, base, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** The logger of one VM's shell: the process's own when that is its only VM (bound already), else a child naming it. */
export function vmLogger(logger: Logger, vms: readonly string[], vmId: string): Logger {
  return vms.length === 1 && vms[0] === vmId ? logger : logger.child({ vm: vmId });
}
