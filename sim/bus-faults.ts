import type { WireMessage } from '../lib/codec/messages.js';
import { parseHostSubject, type Subjects } from '../lib/codec/subjects.js';
import type { Rng } from '../lib/rng.js';

/**
 * The service bus subjects a bus fault can hit: everything between services
 * (the client's wire subjects have their own link loss). Host subjects and
 * heartbeats and control messages count for every host.
 */
export const BUS_SUBJECTS = ['tx', 'txEpoch', 'rx', 'epoch', 'ckptStage', 'ckptData', 'ckptAck', 'commit', 'heartbeat', 'control', 'assign', 'status', 'permit', 'handover'] as const;
export type BusSubject = (typeof BUS_SUBJECTS)[number];

/** Subjects of one VM are a few per host; the cache stops growing beyond this. */
const MAX_CACHED_SUBJECTS = 256;

/** A host subject's kind (after specula.<vm>.h.<host>.) as a bus-fault kind. */
const HOST_KINDS: ReadonlyMap<string, BusSubject> = new Map<string, BusSubject>([
  ['tx', 'tx'],
  ['tx.data', 'tx'],
  ['tx.epoch', 'txEpoch'],
  ['rx', 'rx'],
  ['epoch', 'epoch'],
  ['ckpt.stage', 'ckptStage'],
  ['commit', 'commit'],
  ['status', 'status'],
  ['permit', 'permit'],
  ['handover', 'handover'],
  ['handover.req', 'handover'],
]);

/** What a bus fault does to each message on its subjects while it lasts. */
export interface BusFaultSpec {
  /** Probability that a message is lost. */
  readonly dropRate: number;
  /** Probability that a message (not lost) is delivered twice. */
  readonly duplicateRate: number;
  /** Probability that a delivered copy is held back by an extra delay, uniform in [0, maxDelayUs]. */
  readonly delayRate: number;
  readonly maxDelayUs: number;
  readonly subjects: readonly BusSubject[];
}

export interface BusFaultStats {
  dropped: number;
  duplicated: number;
  delayed: number;
}

/**
 * Applies the bus faults active now to each published message, drawing from
 * its own seeded stream: the same seed loses, repeats and delays the same
 * messages on every replay. Subjects map to their kind once and are cached.
 */
export class BusFaultInjector {
  readonly stats: BusFaultStats = { dropped: 0, duplicated: 0, delayed: 0 };
  readonly #active: BusFaultSpec[] = [];
  readonly #kinds = new Map<string, BusSubject | null>();
  readonly #exact: ReadonlyMap<string, BusSubject>;
  readonly #heartbeatPrefix: string;
  readonly #controlPrefix: string;

  constructor(
    subjects: Subjects,
    hosts: readonly string[],
    readonly rng: Rng,
  ) {
    this.#exact = new Map<string, BusSubject>([[subjects.ckptAck, 'ckptAck'], ...hosts.map((h): [string, BusSubject] => [subjects.ckptData(h), 'ckptData'])]);
    this.#heartbeatPrefix = subjects.heartbeat('');
    this.#controlPrefix = subjects.control('');
  }

  get active(): number {
    return this.#active.length;
  }

  start(fault: BusFaultSpec): void {
    this.#active.push(fault);
  }

  end(fault: BusFaultSpec): void {
    const at = this.#active.indexOf(fault);
    if (at >= 0) this.#active.splice(at, 1);
  }

  /** The extra delays of the copies to deliver ([] lost), or null: untouched. */
  perturb(subject: string, _msg: WireMessage): number[] | null {
    if (this.#active.length === 0) return null;
    const kind = this.#kindOf(subject);
    if (kind === null) return null;
    let delays: number[] | null = null;
    for (const fault of this.#active) {
      if (!fault.subjects.includes(kind)) continue;
      delays ??= [0];
      if (this.rng.chance(fault.dropRate)) {
        this.stats.dropped++;
        return [];
      }
      if (this.rng.chance(fault.duplicateRate)) {
        this.stats.duplicated++;
        delays.push(0);
      }
      for (let i = 0; i < delays.length; i++) {
        if (!this.rng.chance(fault.delayRate)) continue;
        this.stats.delayed++;
        delays[i]! += Math.round(this.rng.next() * fault.maxDelayUs);
      }
    }
    // Faults overlapping on one subject could multiply copies: at most two reach the subscribers.
    return delays === null ? null : delays.slice(0, 2);
  }

  #kindOf(subject: string): BusSubject | null {
    let kind = this.#kinds.get(subject);
    if (kind === undefined) {
      kind = this.#exact.get(subject) ?? this.#hostKind(subject) ?? (subject.startsWith(this.#heartbeatPrefix) ? 'heartbeat' : subject.startsWith(this.#controlPrefix) ? 'control' : null);
      if (this.#kinds.size < MAX_CACHED_SUBJECTS) this.#kinds.set(subject, kind);
    }
    return kind;
  }

  #hostKind(subject: string): BusSubject | null {
    const parsed = parseHostSubject(subject);
    if (parsed === null) return null;
    return parsed.kind.startsWith('assign.') ? 'assign' : (HOST_KINDS.get(parsed.kind) ?? null);
  }
}
