import { UnknownSubjectError } from '../errors.js';
import type { WireMessageType } from './messages.js';

/** Subjects are per protected VM so that many VMs shard across a cluster. */
export const subjects = (vmId: string) => ({
  /** host → link → client */
  wireOut: `specula.${vmId}.wire.out`,
  /** client → link → host */
  wireIn: `specula.${vmId}.wire.in`,
});

const SUBJECT_TYPES: ReadonlyArray<[RegExp, WireMessageType]> = [[/^specula\.[^.]+\.wire\.(out|in)$/, 'segment']];

/** The message type a subject carries; unknown subjects are a counted error. */
export function messageTypeOf(subject: string): WireMessageType {
  for (const [pattern, type] of SUBJECT_TYPES) if (pattern.test(subject)) return type;
  throw new UnknownSubjectError(`no message type for subject ${subject}`);
}
