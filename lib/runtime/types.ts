import type { WireMessage } from '../codec/messages.js';

/** What a core asks its shell to do. Cores never act themselves. */
export type Effect =
  | { readonly kind: 'send'; readonly subject: string; readonly msg: WireMessage }
  | { readonly kind: 'setTimer'; readonly name: string; readonly atUs: number }
  | { readonly kind: 'cancelTimer'; readonly name: string }
  | { readonly kind: 'log'; readonly level: LogLevel; readonly event: string; readonly fields?: Readonly<Record<string, unknown>> };

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** What a shell feeds a core. */
export type Input =
  | { readonly kind: 'start' }
  | { readonly kind: 'message'; readonly subject: string; readonly msg: WireMessage }
  | { readonly kind: 'timer'; readonly name: string };

/**
 * A service core: a pure function of (state, input, time) → effects. No I/O,
 * timers, wall clock or randomness; the shell injects time and any RNG.
 */
export interface Core {
  readonly name: string;
  readonly subscriptions: readonly string[];
  handle(input: Input, nowUs: number): Effect[];
}

export const START: Input = { kind: 'start' };
