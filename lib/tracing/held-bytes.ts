import type { Effect } from '../runtime/types.js';
import type { SpanName, SpanRef, TraceKey } from './model.js';
import { sampledByteKey, type Sampler } from './sampling.js';

/** Where spans go: a core's effect list, or anything that takes effects one by one. */
export interface EffectSink {
  push(effect: Effect): unknown;
}

interface Tracked {
  readonly connId: number;
  readonly offset: number;
  readonly receivedAtUs: number;
  /** Its epoch, once that epoch's end came; null before. */
  epoch: number | null;
  epochEndAtUs: number;
  committed: boolean;
}

/**
 * Sends remembered per sampled byte, for numbering retransmissions: far more
 * than a window holds. The oldest goes: a forgotten byte sent again is taken
 * for its first send in the term (a second `replay`, not a `retransmit`).
 */
export const MAX_REMEMBERED_SENDS = 8_192;

/**
 * The path of sampled bytes through a service that holds output (the acker
 * in speculative modes, the netbuffer in remus) in one fencing term, as
 * spans: `buffer` from arrival to the end of its epoch, `hold` from there to
 * the commit that lets it out (linked to the epoch's commit span), then
 * `wire.release` when it leaves, `retransmit` when it leaves again, and
 * `replay` when a promoted service first sends a byte it got from a
 * checkpoint rather than from its guest (its parent: `replayParent`, the
 * step that brought the byte to this host). Stream offsets (seq − 1);
 * bounded: beyond `maxTracked` bytes in flight the oldest is forgotten
 * (counted). A new term starts a new tracer.
 */
export class HeldBytesTracer {
  readonly #tracked: Tracked[] = [];
  /** Sends of each released sampled byte (for retransmission instances), the newest few. */
  readonly #sends = new Map<number, number>();
  forgotten = 0;

  constructor(
    readonly vmId: string,
    readonly sampler: Sampler,
    readonly term: number,
    readonly replayParent: SpanRef | null,
    readonly maxTracked = 1_024,
  ) {}

  #key(connId: number, offset: number): TraceKey {
    return { kind: 'segment', vmId: this.vmId, connId, offset };
  }

  #ref(name: SpanName): SpanRef {
    return { name, term: this.term };
  }

  #span(out: EffectSink, key: TraceKey, name: SpanName, parent: SpanRef | null, startUs: number, endUs: number, attributes: Record<string, string | number | boolean> = {}, extra: { instance?: number; links?: { trace: TraceKey; span: SpanRef }[] } = {}): void {
    out.push({ kind: 'span', span: { trace: key, name, term: this.term, parent, startUs, endUs, attributes, ...extra } });
  }

  /** New bytes [start, end) arrived from the guest (a TSO segment may carry several sampled ones); `specAck`: and were acknowledged speculatively at once. */
  received(connId: number, startOffset: number, endOffset: number, specAck: boolean, nowUs: number, out: EffectSink): void {
    for (let offset = this.sampler.sampledIn(connId, startOffset, endOffset); offset !== null; offset = this.sampler.sampledIn(connId, offset + 1, endOffset)) {
      this.#receivedByte(connId, offset, specAck, nowUs, out);
    }
  }

  #receivedByte(connId: number, offset: number, specAck: boolean, nowUs: number, out: EffectSink): void {
    // Held already, or sent already (this copy is a retransmission: it shows as one when it leaves).
    if (this.#sends.has(sampledByteKey(connId, offset)) || this.#tracked.some((t) => t.connId === connId && t.offset === offset)) return;
    if (this.#tracked.length >= this.maxTracked) {
      this.#tracked.shift();
      this.forgotten++;
    }
    this.#tracked.push({ connId, offset, receivedAtUs: nowUs, epoch: null, epochEndAtUs: 0, committed: false });
    if (specAck) this.#span(out, this.#key(connId, offset), 'spec-ack', this.#ref('emit'), nowUs, nowUs);
  }

  /** Epoch `epoch` ended, on each connection (by id − 1) with the byte before `endOffsets[i]`: what arrived before belongs to it. */
  epochEnded(epoch: number, endOffsets: readonly number[], nowUs: number, out: EffectSink): void {
    for (const t of this.#tracked) {
      if (t.epoch !== null || t.offset >= (endOffsets[t.connId - 1] ?? 0)) continue;
      t.epoch = epoch;
      t.epochEndAtUs = nowUs;
      this.#span(out, this.#key(t.connId, t.offset), 'buffer', this.#ref('emit'), t.receivedAtUs, nowUs, { epoch });
    }
  }

  /** Epochs up to `epoch` committed: their bytes may leave. */
  committed(epoch: number, nowUs: number, out: EffectSink): void {
    for (const t of this.#tracked) {
      if (t.committed || t.epoch === null || t.epoch > epoch) continue;
      t.committed = true;
      this.#span(out, this.#key(t.connId, t.offset), 'hold', this.#ref('buffer'), t.epochEndAtUs, nowUs, { epoch: t.epoch }, { links: [{ trace: { kind: 'epoch', vmId: this.vmId, epoch: t.epoch }, span: this.#ref('commit') }] });
    }
  }

  /** Bytes [start, end) left for the client; `retransmitReason` when they had left before. */
  sent(connId: number, startOffset: number, endOffset: number, retransmitReason: string | null, nowUs: number, out: EffectSink): void {
    const offset = this.sampler.sampledIn(connId, startOffset, endOffset);
    if (offset === null) return;
    const key = this.#key(connId, offset);
    const i = this.#tracked.findIndex((t) => t.connId === connId && t.offset === offset);
    const byte = sampledByteKey(connId, offset);
    const sends = this.#sends.get(byte) ?? 0;
    this.#sends.set(byte, sends + 1);
    if (this.#sends.size > MAX_REMEMBERED_SENDS) this.#sends.delete(this.#sends.keys().next().value!);
    if (sends > 0) {
      // After its release (or replay) in this term: either is the release slot of the term.
      this.#span(out, key, 'retransmit', this.#ref('wire.release'), nowUs, nowUs, { reason: retransmitReason ?? 'resend' }, { instance: sends });
    } else if (i >= 0) {
      this.#tracked.splice(i, 1);
      this.#span(out, key, 'wire.release', this.#ref('hold'), nowUs, nowUs);
    } else {
      // Never received here: it came in a checkpoint, and the primary before us may have sent it already.
      this.#span(out, key, 'replay', this.replayParent, nowUs, nowUs, { reason: 'failover', ...(retransmitReason === null ? {} : { cause: retransmitReason }) });
    }
  }
}
