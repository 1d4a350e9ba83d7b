import { assert } from '../../lib/assert.js';
import type { AckerConnectionState } from '../../lib/checkpoint/spec-delta.js';
import { RttSampler } from '../../lib/tcp/rtt-sampler.js';
import { MAX_WSCALE } from '../../lib/tcp/receiver.js';
import type { SendBuffer } from '../../lib/tcp/send-buffer.js';
import type { TcpSender } from '../../lib/tcp/sender.js';

/** The guest's ACK, window and timestamps as one of its segments carried them, with the epoch that produced it. */
export interface GuestHeader {
  readonly epoch: number;
  readonly ack: number;
  readonly window: number;
  readonly tsValUs: number;
  readonly tsEcrUs: number;
}

/**
 * One TCP connection of the guest as the acker serves it: what the client's
 * SYN said, the speculative buffer and the wire-side sender (from the
 * guest's SYN-ACK on), where each epoch's bytes end, and the guest headers
 * waiting for their epoch's commit.
 */
export class AckerConnection {
  clientNxt = 0;
  clientWscale: number | undefined;
  clientSynWindow = 0;
  guestOfferedWscale = false;
  /** From the guest's SYN-ACK (or a handover) on. */
  spec: SendBuffer | null = null;
  wire: TcpSender | null = null;
  /** Right edge (ack + window) last advertised to the guest. */
  guestRightEdge = 0;
  /** Sequence number where the current epoch's data starts. */
  epochStartSeq = 0;
  /** Where each uncommitted epoch's bytes end, oldest first (at most `uncommittedEpochsMax`). */
  readonly epochEnds: { epoch: number; endSeq: number }[] = [];
  /** The newest guest header of each uncommitted epoch, oldest first (at most `uncommittedEpochsMax`). */
  readonly headers: GuestHeader[] = [];
  committedHeader: GuestHeader | null = null;
  /** Where committed data ends: the wire side may send below it. */
  committedSeq = 0;
  /** The RTT samples of the wire side, one per ACK of data sent once. */
  readonly rttSampler = new RttSampler();

  constructor(
    readonly connId: number,
    /** Its wire sender's timer names start with this. */
    readonly timerPrefix: string,
    /** Per-epoch records kept while their epochs wait for a commit (the checkpointer's in-flight epochs bound them). */
    readonly uncommittedEpochsMax: number,
    /** The acker's counters: records of a newer epoch that took the newest one's place, the list being full (commits came late or were lost). */
    readonly counters: { uncommittedEpochsCoalesced: number },
  ) {
    assert(Number.isInteger(uncommittedEpochsMax) && uncommittedEpochsMax >= 2, () => `an acker connection needs room for two uncommitted epochs, not ${uncommittedEpochsMax}`);
  }

  /**
   * Records where an epoch's bytes end. At the bound the newest record gives
   * way to this one: its bytes are then released with this later epoch's
   * commit, never before their own.
   */
  noteEpochEnd(epoch: number, endSeq: number): void {
    const last = this.epochEnds[this.epochEnds.length - 1];
    assert(last === undefined || (epoch > last.epoch && endSeq >= last.endSeq), () => `epoch ${epoch} ending at ${endSeq} after epoch ${last?.epoch} ending at ${last?.endSeq}`);
    this.#pushBounded(this.epochEnds, { epoch, endSeq });
  }

  /** Keeps a header of a newer epoch than any kept; at the bound it takes the newest one's place (the client then sees an older, committed header for longer). */
  noteHeader(header: GuestHeader): void {
    const last = this.headers[this.headers.length - 1] ?? this.committedHeader;
    assert(last === null || header.epoch > last.epoch, () => `guest header of epoch ${header.epoch} after one of epoch ${last?.epoch}`);
    this.#pushBounded(this.headers, header);
  }

  /**
   * Keeps the header of an epoch older than the newest kept, when the bus
   * brought a later epoch's segment first (the guest's pure ACKs and its data
   * travel on two subjects, in no order between them). Without it that epoch's
   * commit found no header of its own, and the first one's left none at all
   * for the data it committed. Kept in epoch order, so the client still sees
   * the ACK and timestamps only grow; one already committed past is dropped.
   * At the bound it is not kept (counted): a later epoch's header then stands
   * for it at its commit, as when records coalesce.
   */
  noteOvertakenHeader(header: GuestHeader): void {
    if (this.committedHeader !== null && header.epoch <= this.committedHeader.epoch) return;
    const at = this.headers.findIndex((h) => h.epoch >= header.epoch);
    assert(at >= 0, () => `an overtaken header of epoch ${header.epoch} with no later one kept`);
    const there = this.headers[at]!;
    if (there.epoch === header.epoch) {
      if (header.tsValUs >= there.tsValUs) this.headers[at] = header;
      return;
    }
    if (this.headers.length >= this.uncommittedEpochsMax) {
      this.counters.uncommittedEpochsCoalesced++;
      return;
    }
    this.headers.splice(at, 0, header);
  }

  #pushBounded<T>(list: T[], entry: T): void {
    if (list.length < this.uncommittedEpochsMax) list.push(entry);
    else {
      list[list.length - 1] = entry;
      this.counters.uncommittedEpochsCoalesced++;
    }
  }

  /** The client's windows, and ours standing in for them, are scaled by the shift the client offered. */
  get clientShift(): number {
    return this.clientWscale !== undefined && this.guestOfferedWscale ? Math.min(this.clientWscale, MAX_WSCALE) : 0; // RFC 7323 2.3
  }

  /** Held bytes that wait for a commit: taken into the buffer, not yet committed. */
  get uncommittedBytes(): number {
    return this.spec === null ? 0 : this.spec.endSeq - Math.max(this.committedSeq, this.spec.startSeq);
  }

  /** Committed data the wire side has not sent yet: output held now would wait behind it anyway. */
  get backlogged(): boolean {
    return this.wire !== null && this.wire.sndMax < this.committedSeq;
  }

  /**
   * The connection as the acker sees it; a promoted acker starts from it.
   * The guest header is the newest of epoch `upToEpoch` at most: the guest
   * runs the next epoch while a checkpoint is taken, and a header of that
   * epoch in a checkpoint would reach the client before its epoch commits.
   */
  state(upToEpoch = Infinity): AckerConnectionState {
    let guestHeader = this.committedHeader;
    for (const h of this.headers) if (h.epoch <= upToEpoch) guestHeader = h;
    return {
      connId: this.connId,
      clientWscale: this.clientWscale ?? null,
      clientSynWindow: this.clientSynWindow,
      guestOfferedWscale: this.guestOfferedWscale,
      clientNxt: this.clientNxt,
      guestHeader,
      ...(this.spec === null ? { awaitingSynAck: true as const } : {}),
      ...(this.wire?.sackEnabled === true ? { sackPermitted: true as const } : {}),
      ...(this.wire !== null ? { clientWindowBytes: this.wire.sndWnd } : {}),
    };
  }
}
