import { InvariantError } from './errors.js';

/** An invariant that must hold; a failure is a bug, never bad input. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}
