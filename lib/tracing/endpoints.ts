import type { EffectSink } from './held-bytes.js';
import { sampledByteKey, type Sampler } from './sampling.js';

/**
 * Bounded memory of the guest's sends of sampled bytes in one term. A byte
 * stays in flight for at most a window, far fewer sampled bytes than this;
 * one evicted and then sent again would be reported as a second `emit`.
 */
export const MAX_REMEMBERED = 8_192;

/**
 * The guest's side of a sampled byte's trace: `emit` (a root) when it first
 * sends the segment that carries it in its term, `guest.retransmit` when it
 * sends it again, with the cause. A promoted guest's first send of a byte its
 * predecessor had sent is a retransmission to its TCP but an `emit` of its
 * term (attribute `reason`): the predecessor's spans are not its to name.
 */
export class EmitTracer {
  /** Sampled offset → sends after the first, in `#term`. */
  readonly #resends = new Map<number, number>();
  #term = -1;

  constructor(
    readonly vmId: string,
    readonly sampler: Sampler,
  ) {}

  /**
   * A segment of `term` with bytes [start, end) of connection `connId` left
   * the guest; `resendCause` when its TCP sent them before. A TSO segment
   * carries several sampled bytes: each is a traced packet of its own.
   */
  sent(term: number, connId: number, startOffset: number, endOffset: number, epoch: number, resendCause: string | null, nowUs: number, out: EffectSink): void {
    for (let offset = this.sampler.sampledIn(connId, startOffset, endOffset); offset !== null; offset = this.sampler.sampledIn(connId, offset + 1, endOffset)) {
      this.#sentByte(term, connId, offset, startOffset, endOffset, epoch, resendCause, nowUs, out);
    }
  }

  #sentByte(term: number, connId: number, offset: number, startOffset: number, endOffset: number, epoch: number, resendCause: string | null, nowUs: number, out: EffectSink): void {
    if (term !== this.#term) {
      this.#term = term;
      this.#resends.clear();
    }
    const trace = { kind: 'segment' as const, vmId: this.vmId, connId, offset };
    const byte = sampledByteKey(connId, offset);
    const before = this.#resends.get(byte);
    if (before === undefined) {
      this.#resends.set(byte, 0);
      if (this.#resends.size > MAX_REMEMBERED) this.#resends.delete(this.#resends.keys().next().value!);
      const attributes = { seq: startOffset + 1, bytes: endOffset - startOffset, epoch, ...(resendCause === null ? {} : { reason: resendCause }) };
      out.push({ kind: 'span', span: { trace, name: 'emit', term, parent: null, startUs: nowUs, endUs: nowUs, attributes } });
      return;
    }
    const n = before + 1;
    this.#resends.set(byte, n);
    // Its own name: the wire side numbers its retransmissions of the same byte apart.
    out.push({ kind: 'span', span: { trace, name: 'guest.retransmit', term, instance: n, parent: { name: 'emit', term }, startUs: nowUs, endUs: nowUs, attributes: { reason: resendCause ?? 'resend' } } });
  }
}

/**
 * The client's side: `deliver` when a sampled byte reaches the application,
 * in order. Its parent is the release in the term of the segment that
 * brought the byte first (the client sees terms on segments, not who sent
 * them); a byte's term is kept from its arrival to its delivery, for at most
 * `MAX_REMEMBERED` bytes (the oldest goes: its delivery names the newest term seen).
 */
export class DeliveryTracer {
  /** Sampled offset → the term of the segment that brought it. */
  readonly #arrivals = new Map<number, number>();
  #newestTerm = 0;

  constructor(
    readonly vmId: string,
    readonly sampler: Sampler,
    readonly connId: number,
  ) {}

  /** A segment of `term` carried bytes [start, end). */
  arrived(term: number, startOffset: number, endOffset: number): void {
    this.#newestTerm = Math.max(this.#newestTerm, term);
    for (let from = startOffset; ; ) {
      const offset = this.sampler.sampledIn(this.connId, from, endOffset);
      if (offset === null) return;
      if (!this.#arrivals.has(offset)) {
        this.#arrivals.set(offset, term);
        if (this.#arrivals.size > MAX_REMEMBERED) this.#arrivals.delete(this.#arrivals.keys().next().value!);
      }
      from = offset + 1;
    }
  }

  /** Bytes [start, end) reached the application. */
  delivered(startOffset: number, endOffset: number, nowUs: number, out: EffectSink): void {
    for (let from = startOffset; ; ) {
      const offset = this.sampler.sampledIn(this.connId, from, endOffset);
      if (offset === null) return;
      const term = this.#arrivals.get(offset) ?? this.#newestTerm;
      this.#arrivals.delete(offset);
      out.push({ kind: 'span', span: { trace: { kind: 'segment', vmId: this.vmId, connId: this.connId, offset }, name: 'deliver', term, parent: { name: 'wire.release', term }, startUs: nowUs, endUs: nowUs } });
      from = offset + 1;
    }
  }
}
