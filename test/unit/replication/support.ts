import type { CheckpointChunk, Segment, WireMessage } from '../../../lib/codec/messages.js';
import type { Effect, Input } from '../../../lib/runtime/types.js';

export { segment } from '../support/segments.js';

export const VM = 'vm1';

export const message = (subject: string, msg: WireMessage): Input => ({ kind: 'message', subject, msg });
export const timer = (name: string): Input => ({ kind: 'timer', name });

type Send = Extract<Effect, { kind: 'send' }>;

/** The messages sent on `subject`, in order. */
export function sentOn(effects: readonly Effect[], subject: string): WireMessage[] {
  return effects.filter((e): e is Send => e.kind === 'send' && e.subject === subject).map((e) => e.msg);
}

/** The segments sent on `subject`, in order. */
export function segmentsOn(effects: readonly Effect[], subject: string): Segment[] {
  return sentOn(effects, subject).filter((m): m is Segment => m.type === 'segment');
}

/** The checkpoint chunks sent on `subject`, in order. */
export function chunksOn(effects: readonly Effect[], subject: string): CheckpointChunk[] {
  return sentOn(effects, subject).filter((m): m is CheckpointChunk => m.type === 'checkpointChunk');
}

/** The time each timer was (last) set to in `effects`. */
export function timersSet(effects: readonly Effect[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of effects) if (e.kind === 'setTimer') out.set(e.name, e.atUs);
  return out;
}

/** Concatenated bytes. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Deterministic stream bytes: the byte at stream offset `seq`. */
export const streamByte = (seq: number): number => (seq * 167 + 13) & 0xff;
export const streamBytes = (seq: number, len: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => streamByte(seq + i));
