import type { AssignedRole, Assignment, ReleasePermit } from '../../../lib/codec/messages.js';
import type { Core, Effect, Input } from '../../../lib/runtime/types.js';

/** The agent incarnation test assignments come from. */
export const AGENT_INCARNATION = 2;
/** A permit that outlasts any test. */
export const FOREVER_US = Number.MAX_SAFE_INTEGER;

/** An assignment from the host agent of `host`; seq 1 unless given. */
export const assignment = (vmId: string, host: string, role: AssignedRole, term: number, extra: Partial<Omit<Assignment, 'type' | 'vmId' | 'host' | 'role' | 'term'>> = {}): Assignment => ({
  type: 'assignment',
  vmId,
  host,
  role,
  term,
  peerHost: '',
  seq: 1,
  incarnation: AGENT_INCARNATION,
  joining: false,
  firstEpoch: role === 'primary' ? 1 : 0,
  joinSeq: 0,
  ...extra,
});

/** A release permit from the host agent of `host` for `term`, until `untilUs` of the host's clock. */
export const permit = (vmId: string, host: string, term: number, untilUs = FOREVER_US): ReleasePermit => ({ type: 'releasePermit', vmId, host, term, fromUs: 0, untilUs, seq: 1 });

const msg = (subject: string, m: Assignment | ReleasePermit): Input => ({ kind: 'message', subject, msg: m });

/**
 * Starts a supervised core and gives it what its host agent would: the
 * assignment (on `assignSubject`) and, for an output-releasing service, a
 * permit (on `permitSubject`). Returns every effect, in order.
 */
export function activate(core: Core, a: Assignment, subjects: { readonly assign: string; readonly permit?: string }, nowUs = 0): Effect[] {
  const out = [...core.handle({ kind: 'start' }, nowUs), ...core.handle(msg(subjects.assign, a), nowUs)];
  if (subjects.permit !== undefined) out.push(...core.handle(msg(subjects.permit, permit(a.vmId, a.host, a.term)), nowUs));
  return out;
}
