import type { EffectSink } from './held-bytes.js';
import type { Sampler } from './sampling.js';

/** Bounded memory of the guest's sends of sampled bytes: retransmissions are numbered. */
const MAX_REMEMBERED = 1_024;

/**
 * The guest's side of a sampled byte's trace: `emit` (the root) when its TCP
 * first sends the segment that carries it, `guest.retransmit` when it sends
 * it again, with the cause (a promoted guest's first sends of bytes its
 * predecessor had sent are retransmissions too: its TCP says so).
 */
export class EmitTracer {
  readonly #resends = new Map<number, number>();

  constructor(
    readonly vmId: string,
    readonly sampler: Sampler,
  ) {}

  /** A segment with bytes [start, end) of connection `connId` left the guest; `resendCause` when its TCP sent them before. */
  sent(connId: number, startOffset: number, endOffset: number, epoch: number, resendCause: string | null, nowUs: number, out: EffectSink): void {
    const offset = this.sampler.sampledIn(connId, startOffset, endOffset);
    if (offset === null) return;
    const trace = { kind: 'segment' as const, vmId: this.vmId, connId, offset };
    if (resendCause === null) {
      out.push({ kind: 'span', span: { trace, name: 'emit', parent: null, startUs: nowUs, endUs: nowUs, attributes: { seq: startOffset + 1, bytes: endOffset - startOffset, epoch } } });
      return;
    }
    const n = (this.#resends.get(offset) ?? 0) + 1;
    this.#resends.set(offset, n);
    if (this.#resends.size > MAX_REMEMBERED) this.#resends.delete(this.#resends.keys().next().value!);
    // Its own name: the wire side numbers its retransmissions of the same byte apart.
    out.push({ kind: 'span', span: { trace, name: 'guest.retransmit', instance: n, parent: 'emit', startUs: nowUs, endUs: nowUs, attributes: { reason: resendCause } } });
  }
}

/** The client's side: `deliver` when the byte reaches the application, in order. */
export function deliverSpan(vmId: string, sampler: Sampler, connId: number, startOffset: number, endOffset: number, nowUs: number, out: EffectSink): void {
  const offset = sampler.sampledIn(connId, startOffset, endOffset);
  if (offset === null) return;
  out.push({ kind: 'span', span: { trace: { kind: 'segment', vmId, connId, offset }, name: 'deliver', parent: 'wire.release', startUs: nowUs, endUs: nowUs } });
}
