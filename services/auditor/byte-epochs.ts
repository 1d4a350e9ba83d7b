/**
 * Which epoch first emitted each byte of the guest's stream: ranges by first
 * emission, [previous end, ends[i]) from epochs[i]. A promotion rolls back
 * what the old guest emitted after the restored checkpoint (it never left;
 * the new guest emits it again under new epochs). One entry per epoch
 * that emitted new bytes, not per segment; entries for bytes that can no
 * longer reach the wire are forgotten (`forgetBelow`), so a long audit
 * holds a window of the stream, not all of it. Entries not yet released are
 * at most MAX_ENTRIES_AHEAD: past it the newest merge, erring towards a later
 * epoch (an early release is never missed).
 */
/** What a ByteEpochs' bounds did: entries merged ahead of release, entries forgotten early behind it. */
export interface ByteEpochCounters {
  byteEpochEntriesMerged: number;
  byteEpochEntriesForgottenEarly: number;
}

/** Forgotten entries go in runs at least this long. */
const FORGET_BATCH = 256;
/**
 * Entries kept for bytes at or beyond the released end (`releasedTo`). Those
 * are forgotten only once release passes them, so a forged guest stream far
 * ahead of release, alternating epochs, would add an entry per segment for
 * ever. An honest guest's bytes ahead of release are within its send window:
 * an entry per epoch not yet committed or not yet let out by the client
 * (`maxInflightEpochs`, and what the client's window holds back), far fewer. Past the bound the two newest entries merge (counted).
 */
export const MAX_ENTRIES_AHEAD = 4_096;
/**
 * Entries kept for bytes behind the released end, within the retained window.
 * An honest guest has one per epoch there; forged one-byte ranges of
 * alternating epochs, released as they come, could have one per byte of the
 * window. Past it the oldest are forgotten as if they had left the window.
 */
export const MAX_ENTRIES_BEHIND = 4_096;
/**
 * The epoch of bytes the auditor never saw emitted: a guest sends new bytes
 * in order, so a range that starts beyond everything seen means the messages
 * before it were missed (the auditor's own connection was cut off). Such
 * bytes cannot be judged by their first emission.
 */
export const UNSEEN_EPOCH = -1;

export class ByteEpochs {
  #ends: number[] = [];
  #epochs: number[] = [];
  #maxSeen = 0;
  #firstSeq = 0;
  /** Bytes below this were forgotten; the newest epoch among them stands for all of them. */
  #forgottenEnd = 0;
  #forgottenMaxEpoch = 0;
  /** Bytes in ranges never seen emitted (UNSEEN_EPOCH), over the whole stream. */
  unseenBytes = 0;
  /** The observer missed messages and has seen no new byte since: bytes beyond everything seen may have been emitted. */
  #mayHaveMissedEnd = false;
  /** Where released bytes end: entries from the one holding this byte on count against MAX_ENTRIES_AHEAD. */
  #releasedEnd = 0;

  constructor(
    /** Where it counts what its bounds did: its own, or the auditor's counters shared by its connections. */
    readonly counters: ByteEpochCounters = { byteEpochEntriesMerged: 0, byteEpochEntriesForgottenEarly: 0 },
  ) {}

  /** Entries forgotten at MAX_ENTRIES_BEHIND while their bytes were still in the retained window (in `counters`). */
  get entriesForgottenEarly(): number {
    return this.counters.byteEpochEntriesForgottenEarly;
  }

  /** Entries merged into a newer one at MAX_ENTRIES_AHEAD (in `counters`). */
  get entriesMerged(): number {
    return this.counters.byteEpochEntriesMerged;
  }

  /** Bytes before `end` reached the wire: nothing before it is ahead of release any more. */
  releasedTo(end: number): void {
    this.#releasedEnd = Math.max(this.#releasedEnd, end);
  }

  /** The observer missed messages: until a new byte is seen, a byte beyond everything seen is UNSEEN_EPOCH, not unknown. */
  missedMessages(): void {
    if (this.#maxSeen > 0) this.#mayHaveMissedEnd = true;
  }

  /**
   * Bytes [seq, end) emitted in `epoch`; only bytes beyond everything seen
   * count (a retransmission keeps its first epoch). A range that starts
   * beyond them leaves a hole of UNSEEN_EPOCH bytes before it.
   */
  emitted(seq: number, end: number, epoch: number): void {
    if (end <= seq || end <= this.#maxSeen) return;
    this.#mayHaveMissedEnd = false;
    if (this.#maxSeen === 0) {
      this.#maxSeen = seq;
      this.#firstSeq = seq;
    }
    if (seq > this.#maxSeen) {
      this.unseenBytes += seq - this.#maxSeen;
      this.#ends.push(seq);
      this.#epochs.push(UNSEEN_EPOCH);
      this.#maxSeen = seq;
    }
    // Consecutive bytes of one epoch extend its range: one entry per epoch, not per segment (86,000 a second at 1 Gbit/s).
    const last = this.#ends.length - 1;
    if (last >= 0 && this.#epochs[last] === epoch && this.#ends[last] === this.#maxSeen) this.#ends[last] = end;
    else {
      this.#ends.push(end);
      this.#epochs.push(epoch);
    }
    this.#maxSeen = end;
    if (this.#ends.length > MAX_ENTRIES_AHEAD) this.#capAhead();
  }

  /**
   * At most MAX_ENTRIES_AHEAD entries at or beyond the released end: past it
   * the two newest merge into one range of the newer seen epoch of the two.
   * The error must go one way: the auditor may never miss an early release,
   * so a merged byte's recorded epoch is never older than its first
   * emission's: the merged range takes the newer of the two. A byte released from a merged range may then be flagged
   * as early when it was not (a false alarm, on a stream forged past the
   * bound), never the reverse. An unseen range (UNSEEN_EPOCH, judged by its
   * segment's label alone) takes the seen epoch: it is judged by more, not
   * less; merged with another unseen one it stays unseen.
   */
  #capAhead(): void {
    for (;;) {
      const firstAhead = this.#indexOf(this.#releasedEnd);
      const ahead = firstAhead < 0 ? 0 : this.#ends.length - firstAhead;
      if (ahead <= MAX_ENTRIES_AHEAD) return;
      const older = this.#epochs.length - 2;
      const a = this.#epochs[older]!;
      const b = this.#epochs[older + 1]!;
      this.#epochs[older + 1] = a === UNSEEN_EPOCH ? b : b === UNSEEN_EPOCH ? a : Math.max(a, b);
      this.#ends.splice(older, 1);
      this.#epochs.splice(older, 1);
      this.counters.byteEpochEntriesMerged++;
    }
  }

  /**
   * The guest says (its EpochEnd) that every byte before `endSeq` was sent
   * by the end of `epoch`, so that epoch's checkpoint holds it: none of
   * them is of a later epoch, whatever was seen first. A first emission
   * lost on the bus for everyone (a nats-server that died with it in
   * flight) is seen only as a later retransmission, under a later epoch.
   * Bytes beyond everything seen become known as of `epoch`.
   */
  sentBy(endSeq: number, epoch: number): void {
    if (this.#maxSeen === 0 || endSeq <= Math.max(this.#firstSeq, this.#forgottenEnd)) return;
    if (endSeq > this.#maxSeen) {
      this.#ends.push(endSeq);
      this.#epochs.push(epoch);
      this.#maxSeen = endSeq;
    }
    // The entry holding byte endSeq - 1, split if it straddles endSeq and is later.
    const i = this.#indexOf(endSeq - 1);
    if (i < 0) return;
    const later = (k: number) => this.#epochs[k] === UNSEEN_EPOCH || this.#epochs[k]! > epoch;
    if (later(i) && this.#ends[i]! > endSeq) {
      this.#ends.splice(i, 0, endSeq);
      this.#epochs.splice(i, 0, this.#epochs[i]!);
    }
    // Seen epochs never fall along the stream, but a hole of unseen bytes may lie before an earlier epoch's range,
    // so every entry up to endSeq is looked at (a few hundred at most: forgetBelow keeps the window short).
    let lowered = false;
    for (let k = i; k >= 0; k--) {
      if (!later(k)) continue;
      this.#epochs[k] = epoch;
      lowered = true;
    }
    if (lowered) this.#mergeEqualUpTo(i);
    if (this.#ends.length > MAX_ENTRIES_AHEAD) this.#capAhead();
  }

  /** Merges neighbouring entries of one epoch among entries 0..last. */
  #mergeEqualUpTo(last: number): void {
    for (let k = Math.min(last, this.#ends.length - 1); k > 0; k--) {
      if (this.#epochs[k - 1] !== this.#epochs[k]) continue;
      this.#ends.splice(k - 1, 1);
      this.#epochs.splice(k - 1, 1);
    }
  }

  /** The index of the entry holding byte `seq`, or -1. */
  #indexOf(seq: number): number {
    let lo = 0;
    let hi = this.#ends.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#ends[mid]! <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo < this.#ends.length ? lo : -1;
  }

  /** Forgets every byte from `seq` on. */
  rollbackTo(seq: number): void {
    while (this.#ends.length > 0 && this.#ends[this.#ends.length - 1]! > seq) {
      const start = this.#ends.length > 1 ? this.#ends[this.#ends.length - 2]! : Math.max(this.#firstSeq, this.#forgottenEnd);
      if (start >= seq) {
        this.#ends.pop();
        this.#epochs.pop();
      } else {
        this.#ends[this.#ends.length - 1] = seq;
        break;
      }
    }
    this.#maxSeen = Math.min(this.#maxSeen, seq);
  }

  /** Entries held: the audit's memory for this stream. */
  get entries(): number {
    return this.#ends.length;
  }

  /**
   * Forgets the epochs of bytes before `seq` (nothing can send them again),
   * and the oldest beyond MAX_ENTRIES_BEHIND behind the released end.
   * A forgotten byte asked for later is given the newest epoch among the
   * forgotten ones: never older than its own, so no early byte goes unseen.
   * Entries go in runs of FORGET_BATCH, so forgetting costs O(1) per entry.
   */
  forgetBelow(seq: number): void {
    // Ends ascend: the entries wholly below seq are those before the one holding it (a search: this runs per release).
    const holding = this.#indexOf(seq);
    const below = holding < 0 ? this.#ends.length : holding;
    const firstAhead = this.#indexOf(this.#releasedEnd);
    const behind = firstAhead < 0 ? this.#ends.length : firstAhead;
    const n = Math.max(below, behind - MAX_ENTRIES_BEHIND);
    if (n < FORGET_BATCH) return;
    this.counters.byteEpochEntriesForgottenEarly += n - below;
    for (let i = 0; i < n; i++) this.#forgottenMaxEpoch = Math.max(this.#forgottenMaxEpoch, this.#epochs[i]!);
    this.#forgottenEnd = this.#ends[n - 1]!;
    this.#ends = this.#ends.slice(n);
    this.#epochs = this.#epochs.slice(n);
  }

  /** The epoch that first emitted byte `seq` (UNSEEN_EPOCH: its emission was missed), or null if none did. */
  epochOf(seq: number): number | null {
    if (seq < this.#firstSeq) return null;
    if (seq >= this.#maxSeen && this.#mayHaveMissedEnd) return UNSEEN_EPOCH;
    if (seq < this.#forgottenEnd) return this.#forgottenMaxEpoch;
    const i = this.#indexOf(seq);
    return i < 0 ? null : this.#epochs[i]!;
  }
}
