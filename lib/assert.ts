import { InvariantError } from './errors.js';

/**
 * An invariant that must hold; a failure is a bug, never bad input. A message
 * built from values is passed as a function: it is built only on failure, so
 * an assertion on the hot path costs the test alone (a template literal
 * formats its numbers on every call; that was a quarter of a simulation's
 * time). The lint rule `purity/lazy-assert-message` keeps it that way.
 */
export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new InvariantError(typeof message === 'string' ? message : message());
}
