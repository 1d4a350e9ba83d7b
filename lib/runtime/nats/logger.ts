import { hostname } from 'node:os';
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Log level of services unless SPECULA_LOG_LEVEL says otherwise. */
export const DEFAULT_LOG_LEVEL = 'info';

/**
 * A structured logger writing JSON lines to stderr (stdout carries a
 * service's results), bound to the actor's role and VM.
 */
export function createLogger(bindings: { readonly role: string; readonly vm: string }, level = process.env.SPECULA_LOG_LEVEL || DEFAULT_LOG_LEVEL): Logger {
  return pino({ name: 'specula', level, base: { ...bindings, host: hostname(), pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 2, sync: true }));
}
