import type { LeaseRecord } from '../lease/types.js';
import type { WireMessage } from '../codec/messages.js';
import type { SpanRecord } from '../tracing/model.js';

/** What a core asks its shell to do. Cores never act themselves. */
export type Effect =
  | { readonly kind: 'send'; readonly subject: string; readonly msg: WireMessage }
  | { readonly kind: 'setTimer'; readonly name: string; readonly atUs: number }
  | { readonly kind: 'cancelTimer'; readonly name: string }
  | { readonly kind: 'log'; readonly level: LogLevel; readonly event: string; readonly fields?: Readonly<Record<string, unknown>> }
  | { readonly kind: 'lease'; readonly requestId: number; readonly op: LeaseOp }
  /** A finished span of a sampled packet's or an epoch's trace; only when tracing is on. */
  | { readonly kind: 'span'; readonly span: SpanRecord };


export type { LeaseRecord };

/** A lease-store operation; compare-and-set on the record's revision is the fencing. */
export type LeaseOp =
  | { readonly type: 'read'; readonly vmId: string }
  /** expectedRevision 0 creates the record. */
  | { readonly type: 'cas'; readonly vmId: string; readonly expectedRevision: number; readonly record: LeaseRecord };

export interface LeaseResult {
  readonly requestId: number;
  /** conflict: the revision moved (someone else wrote); unavailable: no answer from the store. */
  readonly outcome: 'ok' | 'conflict' | 'unavailable';
  readonly record: LeaseRecord | null;
  readonly revision: number;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** What a shell feeds a core. */
export type Input =
  | { readonly kind: 'start' }
  | { readonly kind: 'message'; readonly subject: string; readonly msg: WireMessage }
  | { readonly kind: 'timer'; readonly name: string }
  | { readonly kind: 'leaseResult'; readonly result: LeaseResult }
  /**
   * The shell lost (false) or regained (true) its connection to the bus:
   * what it heard nothing of meanwhile says nothing about the others.
   * Cores that judge silence (failover) use it; the others ignore it.
   */
  | { readonly kind: 'connection'; readonly connected: boolean };

/**
 * A service core: a pure function of (state, input, time) → effects. No I/O,
 * timers, wall clock or randomness; the shell injects time and any RNG.
 */
export interface Core {
  readonly name: string;
  /**
   * The subjects the core listens on. A core that changes role may replace
   * the list (a new array) while it handles an input; shells re-read it
   * after every input and subscribe or unsubscribe the difference.
   */
  readonly subscriptions: readonly string[];
  handle(input: Input, nowUs: number): Effect[];
  /**
   * Whether what the core sent on `subject` at an earlier step may still
   * leave at `nowUs`. A shell that sends later than the step (the NATS
   * runtime sends once the current task ends) asks before sending: output
   * released under a permit must not leave after the permit ends, and a
   * process paused between the two (a stopped host, a long collection)
   * would otherwise let it. Absent: it may. The simulator sends at the step.
   */
  mayStillSend?(subject: string, nowUs: number): boolean;
}

export const START: Input = { kind: 'start' };
