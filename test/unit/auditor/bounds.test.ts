/**
 * The auditor's collections that a hostile publisher with valid credentials
 * could grow: the violations it keeps, the subjects it caches, and the
 * byte-epoch entries ahead of the released stream. Each is driven past its
 * bound here; the counts stay exact, and no early release goes unflagged.
 */
import { describe, expect, it } from 'vitest';
import { MAX_CACHED_SUBJECTS, MAX_KEPT_VIOLATIONS } from '../../../services/auditor/auditor.js';
import { ByteEpochs, MAX_ENTRIES_AHEAD, MAX_ENTRIES_BEHIND, UNSEEN_EPOCH } from '../../../services/auditor/byte-epochs.js';
import { A, AuditDriver, B, data, S } from './support.js';

/** The guest's first data byte (lib/tcp/endpoint.ts, ISS = 0). */
const FIRST = 1;
/** Where a forged stream starts: far ahead of anything released. */
const FAR = 1_000_000;

describe('Auditor: violations kept', () => {
  it('keeps the first MAX_KEPT_VIOLATIONS, counts every one (in total and per rule), and hands each to onViolation', () => {
    const d = AuditDriver.protectedPrimary();
    const forged = MAX_KEPT_VIOLATIONS + 7;
    // Each forged wire.out segment from outside the hosts is a violation of its own.
    for (let i = 0; i < forged; i++) d.release(null, 1, 1, i, 1);
    expect(d.auditor.violations).toHaveLength(MAX_KEPT_VIOLATIONS);
    expect(d.auditor.stats.violations).toBe(forged);
    expect(d.auditor.stats.violationsNotKept).toBe(7);
    expect(d.auditor.violationCounts).toEqual({ 'output-from-non-holder': forged });
    expect(d.seen).toHaveLength(forged);
    // The kept ones are the first.
    expect(d.auditor.violations).toEqual(d.seen.slice(0, MAX_KEPT_VIOLATIONS));
    // Another rule past the bound is counted under its own name.
    d.release(A, 0, 1, 0, 1);
    expect(d.auditor.violationCounts['older-term-after-newer']).toBe(1);
    expect(d.auditor.stats.violations).toBe(forged + 1);
  });

  it('counts nothing as not kept below the bound', () => {
    const d = AuditDriver.protectedPrimary();
    d.release(null, 1, 1, 0, 1);
    expect(d.auditor.stats).toMatchObject({ violations: 1, violationsNotKept: 0 });
    expect(d.auditor.violations).toHaveLength(1);
  });
});

describe('Auditor: subjects cached', () => {
  it('caches MAX_CACHED_SUBJECTS subjects; past them it parses each one again, counted, and still learns guest bytes from them', () => {
    const d = AuditDriver.protectedPrimary();
    for (let i = 0; i < MAX_CACHED_SUBJECTS; i++) d.observe(S.host(`forged-${i}`).tx, data(1, 9, FAR + i, 0), `forged-${i}`);
    expect(d.auditor.stats.subjectsUncached).toBe(0);
    // Past the bound: A's own guest output subject is not cached, but is still known as guest output.
    d.emit(A, 1, 1, 0, 100);
    d.emit(A, 1, 1, 100, 100);
    expect(d.auditor.stats.subjectsUncached).toBe(2);
    d.ack(B, 1, 1).commit(A, 1, 1).release(A, 1, 1, 0, 200);
    expect(d.auditor.violations).toEqual([]);
  });
});

describe('ByteEpochs: entries ahead of the released end', () => {
  /** Bytes [FIRST, 101) of epoch 1, released; then `ranges` forged ranges of 10 bytes from FAR on, alternating epochs 5 and 3 (every other one `gap` bytes after the last: unseen bytes between). */
  function forged(ranges: number, gap = 0): { b: ByteEpochs; truth: (seq: number) => number } {
    const b = new ByteEpochs();
    b.emitted(FIRST, 101, 1);
    b.releasedTo(101);
    const starts: number[] = [];
    let seq = FAR;
    for (let i = 0; i < ranges; i++) {
      seq += i % 2 === 1 ? gap : 0;
      starts.push(seq);
      b.emitted(seq, seq + 10, i % 2 === 0 ? 5 : 3);
      seq += 10;
    }
    /** The epoch each byte was first emitted in (UNSEEN_EPOCH: never seen). */
    const truth = (x: number) => {
      if (x < 101) return 1;
      let [lo, hi] = [0, starts.length]; // the last range starting at or before x
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (starts[mid]! <= x) lo = mid + 1;
        else hi = mid;
      }
      const i = lo - 1;
      return i < 0 || x >= starts[i]! + 10 ? UNSEEN_EPOCH : i % 2 === 0 ? 5 : 3;
    };
    return { b, truth };
  }

  it('holds at most MAX_ENTRIES_AHEAD entries beyond the released end, merging the newest (counted), and leaves released bytes alone', () => {
    const { b, truth } = forged(3 * MAX_ENTRIES_AHEAD);
    expect(b.entries).toBe(1 + MAX_ENTRIES_AHEAD); // the released range, and the bound
    // Past the bound each epoch-3 range merges into the epoch-5 one before it, which the next epoch-5 range extends.
    expect(b.entriesMerged).toBeGreaterThanOrEqual(MAX_ENTRIES_AHEAD);
    expect(b.epochOf(50)).toBe(1);
    expect(b.epochOf(FAR - 1)).toBe(UNSEEN_EPOCH);
    // Never older than the truth: a merged range stands for its newest epoch.
    for (let x = FAR; x < FAR + 30 * MAX_ENTRIES_AHEAD; x += 7) {
      const t = truth(x);
      const got = b.epochOf(x)!;
      if (t !== UNSEEN_EPOCH) expect(got, `byte ${x}`).toBeGreaterThanOrEqual(t);
    }
    expect(b.epochOf(FAR + 30 * MAX_ENTRIES_AHEAD - 1)).toBe(5);
  });

  it('merges unseen holes into the seen epoch next to them: judged by more, never by less', () => {
    const { b, truth } = forged(3 * MAX_ENTRIES_AHEAD, 5);
    expect(b.entries).toBeLessThanOrEqual(1 + MAX_ENTRIES_AHEAD);
    const end = FAR + 30 * MAX_ENTRIES_AHEAD + 5 * Math.floor((3 * MAX_ENTRIES_AHEAD) / 2);
    for (let x = FAR; x < end; x += 3) {
      const t = truth(x);
      const got = b.epochOf(x)!;
      if (t !== UNSEEN_EPOCH) expect(got, `byte ${x}`).toBeGreaterThanOrEqual(t);
      else expect(got === UNSEEN_EPOCH || got >= 3, `byte ${x}`).toBe(true);
    }
  });

  it('counts only entries beyond the released end: as many behind it merge nothing', () => {
    const b = new ByteEpochs();
    let seq = FIRST;
    for (let epoch = 1; epoch <= 2 * MAX_ENTRIES_AHEAD; epoch++) {
      b.emitted(seq, seq + 10, epoch);
      seq += 10;
      b.releasedTo(seq - 5); // release keeps up with the guest, half a range behind
    }
    expect(b.entries).toBe(2 * MAX_ENTRIES_AHEAD);
    expect(b.entriesMerged).toBe(0);
    expect(b.epochOf(FIRST)).toBe(1);
    expect(b.epochOf(seq - 1)).toBe(2 * MAX_ENTRIES_AHEAD);
  });

  it('bounds the entries a forged epoch end adds too', () => {
    const b = new ByteEpochs();
    b.emitted(FIRST, 101, 1);
    b.releasedTo(101);
    // Each says bytes beyond everything seen were sent by a newer epoch: an entry each, none lowered.
    for (let i = 1; i <= 2 * MAX_ENTRIES_AHEAD; i++) b.sentBy(FAR + 10 * i, 1 + i);
    expect(b.entries).toBe(1 + MAX_ENTRIES_AHEAD);
    expect(b.entriesMerged).toBe(MAX_ENTRIES_AHEAD);
    // The newest entry stands for the newest epoch among those merged into it.
    expect(b.epochOf(FAR + 10 * 2 * MAX_ENTRIES_AHEAD - 1)).toBe(1 + 2 * MAX_ENTRIES_AHEAD);
    expect(b.epochOf(FAR + 10 * MAX_ENTRIES_AHEAD + 5)).toBe(1 + 2 * MAX_ENTRIES_AHEAD);
    expect(b.epochOf(FAR + 5)).toBe(2);
  });
});

describe('ByteEpochs: entries behind the released end', () => {
  it('forgets the oldest past MAX_ENTRIES_BEHIND, still in the retained window (counted), and answers for them an epoch never older than their own', () => {
    const b = new ByteEpochs();
    const RANGES = 3 * MAX_ENTRIES_BEHIND;
    const epochOfRange = (i: number) => (i % 2 === 0 ? 5 : 3);
    // One-byte ranges of alternating epochs, each released as it comes; the retained window holds them all.
    for (let i = 0; i < RANGES; i++) {
      b.emitted(FIRST + i, FIRST + i + 1, epochOfRange(i));
      b.releasedTo(FIRST + i + 1);
      b.forgetBelow(0);
      expect(b.entries).toBeLessThanOrEqual(MAX_ENTRIES_BEHIND + 256 + 1);
    }
    expect(b.entriesForgottenEarly).toBeGreaterThanOrEqual(RANGES - MAX_ENTRIES_BEHIND - 256);
    for (let i = 0; i < RANGES; i++) expect(b.epochOf(FIRST + i)!, `byte ${FIRST + i}`).toBeGreaterThanOrEqual(epochOfRange(i));
    expect(b.epochOf(FIRST + RANGES - 1)).toBe(epochOfRange(RANGES - 1));
  });

  it('forgets nothing early from an honest stream: an entry per epoch, fewer than the bound', () => {
    const b = new ByteEpochs();
    for (let epoch = 1; epoch <= MAX_ENTRIES_BEHIND; epoch++) {
      b.emitted(FIRST + 100 * (epoch - 1), FIRST + 100 * epoch, epoch);
      b.releasedTo(FIRST + 100 * epoch);
      b.forgetBelow(0);
    }
    expect(b.entriesForgottenEarly).toBe(0);
    expect(b.epochOf(FIRST)).toBe(1);
  });
});

describe('Auditor: a forged guest stream far ahead of release', () => {
  it('stays bounded, counts what it merged, and still flags a release of a merged byte labelled older than its emission', () => {
    const d = AuditDriver.protectedPrimary().emit(A, 1, 1, FIRST, 100).ack(B, 1, 1).commit(A, 1, 1).release(A, 1, 1, FIRST, 100);
    // Any host name's tx subject is guest output: a forger alternates epochs far ahead of the released stream.
    for (let i = 0; i < 2 * MAX_ENTRIES_AHEAD; i++) d.observe(S.host('forged').tx, data(1, 2 + (i % 2), FAR + 10 * i, 10), 'forged');
    expect(d.auditor.byteEpochEntries).toBeLessThanOrEqual(1 + MAX_ENTRIES_AHEAD);
    expect(d.auditor.stats.byteEpochEntriesMerged).toBeGreaterThan(0);
    // A segment labelled with the committed epoch 1 carrying a forged byte of epoch 2 or 3: early, and seen so.
    d.release(A, 1, 1, FAR + 10 * (2 * MAX_ENTRIES_AHEAD - 1), 5);
    expect(d.rules).toEqual(['byte-before-commit']);
  });
});
