import { assert } from '../assert.js';
import { US_PER_MS } from '../units.js';
import type { LeaseRecord, Revision } from './types.js';
import type { LeaseOp, LeaseResult } from '../runtime/types.js';

export interface LeaseHolderOptions {
  readonly vmId: string;
  /** The host this holder writes for. */
  readonly host: string;
  /** How far past the writer's clock at send a record's expiry lies, µs. */
  readonly leaseDurationUs: number;
  /**
   * The release permit ends this long before the lease may expire: the
   * safety margin (clock drift over one lease, check-to-emit time) plus the
   * clock-skew bound. See docs/fencing.md.
   */
  readonly releaseMarginUs: number;
}

/** Whose record deposed a holder. */
export type LostTo = 'anotherHost' | 'anotherTerm' | 'earlierProcess';

/** What one renewal's answer means to the holder. */
export type RenewalOutcome =
  /** Written: output may leave until `permitUntilUs` of the holder's clock (counted from the send, never the answer). */
  | { readonly kind: 'granted'; readonly permitUntilUs: number }
  /** The record is still this host's at its term, rewritten by another writer (a membership change): renew on the new revision. */
  | { readonly kind: 'rewritten' }
  /**
   * The record is not this holder's: this host is deposed (it keeps its permit, which runs out). `by` says whose
   * it is: another host's, this host's under another term, or this host's and term's written by an earlier process
   * of this host (it restarted, and the VM it runs now is not the one the lease protects).
   */
  | { readonly kind: 'lost'; readonly holder: string; readonly term: number; readonly by: LostTo }
  /** No answer from the store (the write may or may not have applied): the permit runs out on its own. */
  | { readonly kind: 'unavailable' }
  /** An answer to an older request than the newest, or a conflict without a record: nothing to learn. */
  | { readonly kind: 'ignored' };

/**
 * One host's side of its lease on one VM: the renewals it sends (CAS on the
 * revision it last saw) and what each answer means. The permit it derives
 * from a confirmed write is the whole fencing rule on the holder's side:
 * `send time + duration − margin` on the holder's own clock, so a slow answer
 * shortens the window and never lengthens it. Pure: the caller performs the
 * operation and feeds the answer back.
 */
export class LeaseHolder {
  #revision: Revision = 0;
  #requestId = 0;
  #sentUs = 0;
  #term = 0;
  #backupHost: string;
  #permitUntilUs = 0;
  /** The newest committed epoch written or read: renewals never write less. */
  #committedEpoch = 0;
  /** The writer's process (0: none given), written into every renewal. */
  #incarnation = 0;

  /** `backupHost`: the membership a first record (a create) names; renewals carry over what the store says. */
  constructor(
    readonly options: LeaseHolderOptions,
    backupHost = '',
  ) {
    assert(options.releaseMarginUs >= 0 && options.releaseMarginUs < options.leaseDurationUs, () => `a release margin of ${options.releaseMarginUs}µs leaves nothing of a ${options.leaseDurationUs}µs lease`);
    this.#backupHost = backupHost;
  }

  /** The newest permit deadline a confirmed renewal gave (holder's clock, µs); 0 before the first. */
  get permitUntilUs(): number {
    return this.#permitUntilUs;
  }
  /** When the renewal that gave `permitUntilUs` was sent (holder's clock, µs): the permit's output leaves at or after it. */
  get permitFromUs(): number {
    assert(this.#permitUntilUs > 0, 'no renewal confirmed yet');
    return this.#permitUntilUs - (this.options.leaseDurationUs - this.options.releaseMarginUs);
  }
  /** The membership the store last showed: renewals carry it over unchanged. */
  get backupHost(): string {
    return this.#backupHost;
  }

  /**
   * The compare-and-set that renews the lease for `term` at `nowUs` (the first
   * one creates it), recording `committedEpoch` (never below what the store
   * showed) and the writer's `incarnation` (its process; 0: none). A newer
   * request supersedes an outstanding one.
   */
  renewal(term: number, nowUs: number, committedEpoch = 0, incarnation = 0): { readonly requestId: number; readonly op: LeaseOp } {
    assert(term >= 1, () => `renewing term ${term}`);
    assert(committedEpoch >= 0, () => `renewing with committed epoch ${committedEpoch}`);
    assert(this.#incarnation === 0 || incarnation === this.#incarnation, () => `one holder renewing for incarnations ${this.#incarnation} and ${incarnation}`);
    this.#requestId++;
    this.#sentUs = nowUs;
    this.#term = term;
    this.#incarnation = incarnation;
    this.#committedEpoch = Math.max(this.#committedEpoch, committedEpoch);
    const record: LeaseRecord = {
      primaryHost: this.options.host,
      term,
      expiresAtMs: expiresAtMs(nowUs, this.options.leaseDurationUs),
      backupHost: this.#backupHost,
      ...(this.#committedEpoch > 0 ? { committedEpoch: this.#committedEpoch } : {}),
      ...(incarnation > 0 ? { holderIncarnation: incarnation } : {}),
    };
    return { requestId: this.#requestId, op: { type: 'cas', vmId: this.options.vmId, expectedRevision: this.#revision, record } };
  }

  answer(r: LeaseResult): RenewalOutcome {
    if (r.requestId !== this.#requestId) return { kind: 'ignored' };
    if (r.outcome === 'unavailable') return { kind: 'unavailable' };
    if (r.outcome === 'ok') {
      this.#revision = r.revision;
      const until = this.#sentUs + this.options.leaseDurationUs - this.options.releaseMarginUs;
      this.#permitUntilUs = Math.max(this.#permitUntilUs, until);
      return { kind: 'granted', permitUntilUs: until };
    }
    const record = r.record;
    if (record === null) {
      this.#revision = r.revision; // the record vanished: the next renewal creates it
      return { kind: 'ignored' };
    }
    // Another holder, or this host under another term, or an earlier process of this host (it restarted, and the
    // VM it runs now is not the one the lease protects): deposed. Its revision is not adopted, so no later renewal
    // of this holder can replace that record by compare-and-set.
    const by = this.#lostTo(record);
    if (by !== null) return { kind: 'lost', holder: record.primaryHost, term: record.term, by };
    this.#revision = r.revision;
    if (record.backupHost !== undefined) this.#backupHost = record.backupHost;
    if (record.committedEpoch !== undefined) this.#committedEpoch = Math.max(this.#committedEpoch, record.committedEpoch);
    return { kind: 'rewritten' };
  }

  /** Whose record this is, if not this holder's (null: its own). */
  #lostTo(record: LeaseRecord): LostTo | null {
    if (record.primaryHost !== this.options.host) return 'anotherHost';
    if (record.term !== this.#term) return 'anotherTerm';
    if (record.holderIncarnation !== undefined && record.holderIncarnation !== this.#incarnation) return 'earlierProcess';
    return null;
  }
}

/** A record's expiry on its writer's clock: `nowUs` plus the duration, in ms. */
export function expiresAtMs(writerNowUs: number, leaseDurationUs: number): number {
  return (writerNowUs + leaseDurationUs) / US_PER_MS;
}
