import { NO_SACK_BLOCKS } from '../codec/messages.js';
import { Reassembly } from './reassembly.js';
import { expectSnapshot, MAX_SACK_BLOCKS, parseSnapshot, tcpReceiverSnapshotSchema, type TcpReceiverSnapshot } from './snapshot.js';

export const MAX_WINDOW_FIELD = 0xffff;
/** Linux's TCP_MAX_QUICKACKS: segments acknowledged at once in quick-ack mode. */
export const MAX_QUICKACKS = 16;
export const MAX_WSCALE = 14;
/** SACK blocks that fit in an ACK beside the timestamp option (RFC 2018 §3). */
export const MAX_SACK_BLOCKS_SENT = 3;

/** What the endpoint should do after a segment reached the receive side. */
export const enum AckDecision {
  None,
  Delay,
  Now,
}

/**
 * The receive half of a connection: in-order delivery to the application,
 * reassembly of out-of-order data within the advertised window, the window
 * itself (never shrinking its right edge) and the timestamp to echo.
 * The application consumes data when it is delivered, so the receive buffer
 * holds out-of-order data only.
 */
export class TcpReceiver {
  rcvNxt = 0;
  /** RFC 7323 TS.Recent: the timestamp to echo. */
  tsRecentUs = 0;
  /** The ACK number last sent, for the TS.Recent update rule. */
  lastAckSent = 0;
  finReceived = false;
  #finSeq: number | null = null;
  #rightEdge = 0;
  readonly #reassembly = new Reassembly();
  /** Full-sized segments received since the last ACK sent. */
  unackedSegments = 0;
  /**
   * Quick-ack mode (Linux): at the start of a connection and after data out
   * of order, the next segments are acknowledged at once rather than every
   * other one, so the sender's slow start and recovery are not held back by
   * delayed ACKs.
   */
  quickAcks = 0;
  dupSegments = 0;
  outOfOrderSegments = 0;
  /** Both ends offered SACK-permitted in their SYNs. */
  sackEnabled = false;
  /**
   * What we SACK, most recent first (RFC 2018 §4), as flat [start, end)
   * pairs, at most MAX_SACK_BLOCKS: kept as Linux does, by extending and
   * coalescing blocks as segments arrive, not by walking the queue.
   */
  #sackBlocks: number[] = [];

  constructor(
    readonly rcvBufBytes: number,
    /** Shift applied to windows we advertise (ours, offered in our SYN). */
    public rcvWscale: number,
  ) {}

  get outOfOrderBytes(): number {
    return this.#reassembly.bytes;
  }

  /** Everything the receive side will act on, with the out-of-order bytes it holds. */
  snapshot(): TcpReceiverSnapshot {
    return {
      rcvBufBytes: this.rcvBufBytes,
      rcvWscale: this.rcvWscale,
      rcvNxt: this.rcvNxt,
      tsRecentUs: this.tsRecentUs,
      lastAckSent: this.lastAckSent,
      finReceived: this.finReceived,
      finSeq: this.#finSeq,
      rightEdge: this.#rightEdge,
      unackedSegments: this.unackedSegments,
      quickAcks: this.quickAcks,
      dupSegments: this.dupSegments,
      outOfOrderSegments: this.outOfOrderSegments,
      outOfOrder: this.#reassembly.snapshot(),
      sackEnabled: this.sackEnabled,
      sackBlocks: this.#sackBlocks.slice(),
    };
  }

  /** Takes a snapshot's state; throws SnapshotError if it is malformed or of another buffer size. */
  restore(snapshot: TcpReceiverSnapshot): void {
    const s = parseSnapshot(tcpReceiverSnapshotSchema, snapshot, 'TCP receiver');
    expectSnapshot(s.rcvBufBytes === this.rcvBufBytes, `receiver snapshot of a ${s.rcvBufBytes} B buffer for a ${this.rcvBufBytes} B one`);
    this.rcvWscale = s.rcvWscale;
    this.rcvNxt = s.rcvNxt;
    this.tsRecentUs = s.tsRecentUs;
    this.lastAckSent = s.lastAckSent;
    this.finReceived = s.finReceived;
    this.#finSeq = s.finSeq;
    this.#rightEdge = s.rightEdge;
    this.unackedSegments = s.unackedSegments;
    this.quickAcks = s.quickAcks;
    this.dupSegments = s.dupSegments;
    this.outOfOrderSegments = s.outOfOrderSegments;
    this.#reassembly.restore(s.outOfOrder);
    this.sackEnabled = s.sackEnabled;
    this.#sackBlocks = s.sackBlocks.slice();
  }

  /** The SACK blocks for the next ACK, as flat [start, end) pairs: none unless SACK was negotiated. */
  sackBlocksToSend(): readonly number[] {
    if (!this.sackEnabled || this.#sackBlocks.length === 0) return NO_SACK_BLOCKS;
    return this.#sackBlocks.slice(0, 2 * MAX_SACK_BLOCKS_SENT);
  }

  /** [start, end) arrived out of order: its block goes first, swallowing any it touches. */
  #sackArrived(start: number, end: number): void {
    let s = start;
    let e = end;
    let rest = this.#sackBlocks;
    for (let merged = true; merged; ) {
      merged = false;
      const kept: number[] = [];
      for (let i = 0; i < rest.length; i += 2) {
        if (rest[i + 1]! >= s && rest[i]! <= e) {
          s = Math.min(s, rest[i]!);
          e = Math.max(e, rest[i + 1]!);
          merged = true;
        } else kept.push(rest[i]!, rest[i + 1]!);
      }
      rest = kept;
    }
    this.#sackBlocks = [s, e, ...rest].slice(0, 2 * MAX_SACK_BLOCKS);
  }

  /** rcvNxt moved: blocks now below it are acknowledged cumulatively. */
  #sackDelivered(): void {
    if (this.#sackBlocks.length === 0) return;
    const kept: number[] = [];
    for (let i = 0; i < this.#sackBlocks.length; i += 2) {
      if (this.#sackBlocks[i + 1]! > this.rcvNxt) kept.push(Math.max(this.#sackBlocks[i]!, this.rcvNxt), this.#sackBlocks[i + 1]!);
    }
    this.#sackBlocks = kept;
  }

  /** The peer's SYN consumed sequence number `irs`. */
  init(irs: number): void {
    this.rcvNxt = irs + 1;
    this.lastAckSent = this.rcvNxt;
    this.quickAcks = MAX_QUICKACKS;
  }

  /** The 16-bit window field for the next segment we send. */
  windowField(syn: boolean): number {
    const free = this.rcvBufBytes - this.#reassembly.bytes;
    if (syn) return Math.min(MAX_WINDOW_FIELD, free); // SYN windows are never scaled
    const wnd = Math.max(free, this.#rightEdge - this.rcvNxt); // never shrink the right edge
    const unitBytes = 1 << this.rcvWscale;
    const field = Math.min(MAX_WINDOW_FIELD, Math.floor(wnd / unitBytes));
    this.#rightEdge = Math.max(this.#rightEdge, this.rcvNxt + field * unitBytes);
    return field;
  }

  /**
   * Accepts a segment's data and FIN. In-order bytes go to `deliver`, in
   * stream order, exactly once.
   */
  accept(seq: number, payload: Uint8Array, fin: boolean, tsValUs: number, mssBytes: number, deliver: (chunk: Uint8Array) => void): AckDecision {
    const len = payload.length;
    const end = seq + len + (fin ? 1 : 0);
    if (len === 0 && !fin) return seq < this.rcvNxt ? AckDecision.Now : AckDecision.None; // probe, or pure ACK
    if (end <= this.rcvNxt) {
      this.dupSegments++;
      return AckDecision.Now;
    }
    const windowEnd = Math.max(this.#rightEdge, this.rcvNxt + this.rcvBufBytes - this.#reassembly.bytes);
    if (seq >= windowEnd) return AckDecision.Now; // beyond the window: drop, re-advertise
    const fitBytes = Math.max(0, Math.min(len, windowEnd - seq));
    // Views only where a part is cut off: the whole payload is the common case.
    const fits = fitBytes === len ? payload : payload.subarray(0, fitBytes);
    const finFits = fin && fits.length === len;
    if (seq <= this.lastAckSent && tsValUs >= this.tsRecentUs) this.tsRecentUs = tsValUs;
    if (seq > this.rcvNxt) {
      this.outOfOrderSegments++;
      this.quickAcks = MAX_QUICKACKS;
      this.#reassembly.insert(seq, fits);
      if (fits.length > 0) this.#sackArrived(seq, seq + fits.length);
      if (finFits) this.#finSeq = seq + len;
      return AckDecision.Now; // a duplicate ACK tells the sender about the hole
    }
    const fresh = seq === this.rcvNxt ? fits : fits.subarray(this.rcvNxt - seq);
    const hadHoles = !this.#reassembly.isEmpty;
    // rcv_nxt moves before the application sees the bytes, as in Linux's tcp_data_queue: an application that answers
    // at once (a request-response server) sends its answer with the ACK of the request it answers. The other way round
    // the answer carried the ACK from before the request, and only a pure ACK after it acknowledged the request: with
    // that one lost, a client whose next request waited for it (Nagle) stalled until its retransmission timer
    // (vopr seed 49770: three such ACKs lost, the timer backed off past the run's end).
    if (fresh.length > 0) {
      this.rcvNxt += fresh.length;
      deliver(fresh);
    }
    if (finFits) this.#finSeq = seq + len;
    for (const chunk of this.#reassembly.pull(this.rcvNxt)) {
      this.rcvNxt += chunk.length;
      deliver(chunk);
    }
    this.#sackDelivered();
    if (this.#finSeq !== null && this.#finSeq === this.rcvNxt && !this.finReceived) {
      this.finReceived = true;
      this.rcvNxt += 1;
      return AckDecision.Now;
    }
    if (hadHoles) return AckDecision.Now; // RFC 5681 §4.2: ACK at once when a gap fills
    if (this.quickAcks > 0) {
      this.quickAcks--;
      return AckDecision.Now;
    }
    if (len >= mssBytes) this.unackedSegments++;
    else this.unackedSegments += 2; // a short segment is usually the end of a burst
    return this.unackedSegments >= 2 ? AckDecision.Now : AckDecision.Delay;
  }
}

/** The smallest shift that lets `bufferBytes` fit the 16-bit window field. */
export function windowScaleFor(bufferBytes: number): number {
  let shift = 0;
  while (shift < MAX_WSCALE && bufferBytes / 2 ** shift > MAX_WINDOW_FIELD) shift++;
  return shift;
}
