import { assert } from '../assert.js';

/**
 * Entries kept per role a service held (one per primary term, VM or backup
 * image): the newest, and one that sums every older one. A long-running
 * process changes roles at every failover; its history stays this long.
 */
export const ROLE_HISTORY_ENTRIES = 16;

/**
 * The numbers of every role a service held, live ones included. A live entry
 * (a running VM, a primary term) is replaced by its numbers when it ends; past
 * the bound, the two oldest ended entries fold into one, so totals over the
 * history stay exact while its length stays at most `maxEntries`.
 */
export class RoleHistory<T extends object> {
  readonly #entries: T[] = [];
  readonly #live = new Set<T>();
  /** Entries folded into an older one to stay within the bound. */
  folds = 0;

  constructor(
    readonly fold: (older: T, newer: T) => T,
    readonly maxEntries: number = ROLE_HISTORY_ENTRIES,
  ) {
    assert(Number.isInteger(maxEntries) && maxEntries >= 4, () => `a role history of ${maxEntries} entries cannot hold the live ones and a fold`);
  }

  get entries(): readonly T[] {
    return this.#entries;
  }

  get length(): number {
    return this.#entries.length;
  }

  /** A role starts: its live object is an entry until it ends. */
  add(live: T): void {
    assert(!this.#live.has(live), 'a live role added to its history twice');
    this.#entries.push(live);
    this.#live.add(live);
    this.#trim();
  }

  /** The numbers of a role that ended before its history heard of it. */
  addEnded(totals: T): void {
    this.#entries.push(totals);
    this.#trim();
  }

  /** A role ends: its numbers take its place (the live object, with its memory, goes). */
  retire(live: T, totals: T): void {
    assert(this.#live.delete(live), 'a role retired that is not live in the history');
    const at = this.#entries.lastIndexOf(live);
    assert(at >= 0, 'a live role missing from the history');
    this.#entries[at] = totals;
    this.#trim();
  }

  #trim(): void {
    while (this.#entries.length > this.maxEntries) {
      const older = this.#entries.findIndex((e) => !this.#live.has(e));
      const newer = this.#entries.findIndex((e, i) => i > older && !this.#live.has(e));
      // At most two or three roles are live at once (a VM, a backup image and one being promoted).
      assert(older >= 0 && newer > older, () => `a role history over its bound with ${this.#live.size} live entries`);
      this.#entries[older] = this.fold(this.#entries[older]!, this.#entries[newer]!);
      this.#entries.splice(newer, 1);
      this.folds++;
    }
  }
}

/** How counters of two ended roles combine; every field not named here is a sum (booleans: all held). */
export interface FoldRules<T> {
  /** Fields where the highest value stands (epoch numbers: the last committed, applied…). */
  readonly highest?: readonly (keyof T)[];
  /** Samples kept per field (arrays keep the oldest, as a role keeps its first ones). */
  readonly samplesMax?: number;
}

/**
 * Folds two roles' counters into one: numbers add, booleans must both hold,
 * sample arrays concatenate up to `samplesMax`, records of numbers (histograms,
 * per-source sums) add key by key.
 */
export function foldCounters<T extends object>(older: T, newer: T, rules: FoldRules<T> = {}): T {
  const highest = new Set<PropertyKey>(rules.highest ?? []);
  const out: Record<string, unknown> = {};
  const a = older as Record<string, unknown>;
  const b = newer as Record<string, unknown>;
  for (const key of Object.keys(b)) {
    const x = a[key];
    const y = b[key];
    assert(typeof x === typeof y && Array.isArray(x) === Array.isArray(y), () => `folding counters: ${key} differs in kind`);
    if (highest.has(key)) out[key] = Math.max(x as number, y as number);
    else if (typeof y === 'number') out[key] = (x as number) + y;
    else if (typeof y === 'boolean') out[key] = (x as boolean) && y;
    else if (Array.isArray(y)) out[key] = [...(x as unknown[]), ...y].slice(0, rules.samplesMax ?? Infinity);
    else if (typeof y === 'object' && y !== null) out[key] = addRecords(x as Record<string, number>, y as Record<string, number>);
    else assert(false, () => `folding counters: ${key} is neither a number, a flag, samples nor a record`);
  }
  return out as T;
}

function addRecords(a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = { ...a };
  for (const [k, n] of Object.entries(b)) {
    assert(typeof n === 'number', () => `folding counters: record entry ${k} is not a number`);
    out[k] = (out[k] ?? 0) + n;
  }
  return out;
}
