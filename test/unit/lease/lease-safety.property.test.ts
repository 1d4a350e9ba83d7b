/**
 * Property: two or three hosts renew one VM's lease, each through a
 * LeaseHolder on its own clock (offset and drift from true time), against a
 * linearizable compare-and-set store (MemoryLeaseTable), with requests and
 * answers delayed, reordered, lost and timed out (a timed-out request may
 * still apply later). A failover actor, on verdicts that may be wrong, reads
 * the lease and takes it over for another host with takeOverRecord (CAS on
 * the revision it read), lets the successor start only at
 * successorMayStartAtUs of the record it replaced on its own clock, and
 * changes the membership with withBackup. A started successor renews the
 * lease itself and releases only with a 'granted' permit of its own; a
 * deposed host keeps the permit it had.
 *
 * At every true instant at most one host may release (host h may release at
 * true time t iff it has started, has been granted, and its clock at t reads
 * less than its permitUntilUs), and the terms written grow by exactly one per
 * take-over (renewals and membership changes keep holder and term; renewals
 * keep the membership). The checks run after every change of state: between
 * changes a host's clock only moves forward, so the set of hosts that may
 * release only shrinks.
 *
 * Time moves only by `advance`, which stops early at the instant a successor
 * may start; `flush` delivers everything in flight at once, so a successor
 * can be granted at the very instant it starts (the hardest case).
 *
 * Modelling choice: the failover actor gives up a successor that has not
 * started when it takes the lease over again, as the host agent refuses a
 * role change older than its newest one. LeaseHolder itself does not
 * refuse that: after a 'lost' answer it holds the winner's revision, so a
 * renewal under an older term would overwrite the newer record.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeaseHolder } from '../../../lib/lease/holder.js';
import { MemoryLeaseTable } from '../../../lib/lease/memory-store.js';
import { sameWrite, successorMayStartAtUs, takeOverRecord, withBackup } from '../../../lib/lease/take-over.js';
import type { LeaseRecord, VersionedLease } from '../../../lib/lease/types.js';
import type { LeaseOp, LeaseResult } from '../../../lib/runtime/types.js';

const VM = 'vm-1';
const DURATION_US = 30_000;
/** ε: the skew bound everyone believes (and, in the main property, the one that holds). */
const SKEW_US = 1_000;
const SAFETY_US = 5_000;
/** As the host agent sets it: safety + skew bound (services/host-agent/options-from-config.ts). */
const MARGIN_US = SAFETY_US + SKEW_US;
/** Clock rate error ρ: 100 ppm. */
const DRIFT_MAX = 100e-6;
/** A run ends by this true time: drift moves a clock at most ε/4 by then, offsets are within ±ε/4, so any two clocks stay within ε. */
const HORIZON_US = SKEW_US / 4 / DRIFT_MAX;
const MAX_COMMANDS = 160;

/** A clock reads floor(offset + t·(1 + drift)) µs at true time t. */
interface Clock {
  readonly offsetUs: number;
  readonly drift: number;
}

interface Believed {
  readonly marginUs: number;
  readonly skewUs: number;
}
const BELIEVED: Believed = { marginUs: MARGIN_US, skewUs: SKEW_US };

type Fate = 'deliver' | 'lose' | 'timeout';
type Command =
  | { readonly op: 'advance'; readonly us: number }
  | { readonly op: 'renew'; readonly host: number }
  | { readonly op: 'step'; readonly pick: number; readonly fate: Fate }
  /** Every message in flight delivered at once, oldest first (and the answers and retries they cause): round trips of no time. */
  | { readonly op: 'flush' }
  | { readonly op: 'verdict'; readonly pick: number }
  | { readonly op: 'membership'; readonly pick: number };

type Actor = number | 'failover';
type Flight =
  | { readonly stage: 'request'; readonly from: Actor; readonly purpose: 'renew' | 'read' | 'take' | 'change'; readonly requestId: number; readonly op: LeaseOp; orphan: boolean }
  | { readonly stage: 'answer'; readonly to: Actor; readonly result: LeaseResult };

interface Host {
  readonly name: string;
  readonly holder: LeaseHolder;
  readonly clock: Clock;
  /** active: renews (the first primary, or a started successor until deposed); deposed: a 'lost' answer came. */
  mode: 'idle' | 'active' | 'deposed';
  /** The term its renewals carry. */
  term: number;
  /** The first primary from the start; a successor once the failover actor let it start. */
  started: boolean;
  /** A renewal of its own was granted. */
  granted: boolean;
  readonly sentUs: Map<number, number>;
}

interface TakeAttempt {
  readonly record: LeaseRecord;
  /** The record its compare-and-set replaces (the one read at the revision it expects). */
  readonly replaced: LeaseRecord;
}

type Pending =
  | { readonly id: number; readonly purpose: 'readToTake'; readonly pick: number }
  | { readonly id: number; readonly purpose: 'readToChange'; readonly pick: number }
  | { readonly id: number; readonly purpose: 'take'; readonly attempt: TakeAttempt }
  | { readonly id: number; readonly purpose: 'change' };
type PendingRequest = Pending extends infer P ? (P extends Pending ? Omit<P, 'id'> : never) : never;

interface Stats {
  /** Checks at which exactly one host could release. */
  solo: number;
  /** Checks at which a successor (a host started by a take-over) could release. */
  successorReleasing: number;
  takeOvers: number;
  /** Take-overs whose answer was lost, found applied by sameWrite and adopted. */
  adopted: number;
  membershipWrites: number;
  outcomes: Record<'granted' | 'rewritten' | 'lost' | 'unavailable' | 'ignored', number>;
  /** Requests applied after their sender was told unavailable. */
  lateApplied: number;
  /** The shortest true time between one host's permit running out and another host releasing (how close hand-overs came). */
  closestHandOverUs: number;
}

class Violation extends Error {}

class World {
  realUs = 0;
  readonly hosts: Host[];
  readonly table: MemoryLeaseTable;
  readonly stats: Stats = { solo: 0, successorReleasing: 0, takeOvers: 0, adopted: 0, membershipWrites: 0, outcomes: { granted: 0, rewritten: 0, lost: 0, unavailable: 0, ignored: 0 }, lateApplied: 0, closestHandOverUs: Infinity };
  readonly flights: Flight[] = [];
  /** Successors the failover actor will start once its clock reads `atUs`. */
  readonly starts: { readonly host: number; readonly term: number; readonly atUs: number }[] = [];
  /** The request being applied, for the checks on every applied write. */
  #writer: Extract<Flight, { stage: 'request' }> | null = null;
  #last: VersionedLease | null = null;
  #failoverRequestId = 0;
  #pending: Pending | null = null;
  /** Take-overs whose outcome is unknown (answered unavailable) since the last known one. */
  #attempts: TakeAttempt[] = [];

  constructor(
    hostClocks: readonly Clock[],
    readonly failoverClock: Clock,
    readonly believed: Believed = BELIEVED,
  ) {
    this.hosts = hostClocks.map((clock, i) => ({
      name: `h${i}`,
      // The first primary's first record names h1 as its backup.
      holder: new LeaseHolder({ vmId: VM, host: `h${i}`, leaseDurationUs: DURATION_US, releaseMarginUs: believed.marginUs }, i === 0 ? 'h1' : ''),
      clock,
      mode: i === 0 ? 'active' : 'idle',
      term: 1,
      started: i === 0,
      granted: false,
      sentUs: new Map(),
    }));
    this.table = new MemoryLeaseTable({ onApply: (_vm, lease) => this.#onApply(lease) });
  }

  static read(clock: Clock, tUs: number): number {
    return Math.floor(clock.offsetUs + tUs * (1 + clock.drift));
  }

  /** Hosts that may release at true time `tUs`, as their state is now. */
  releasersAt(tUs: number): string[] {
    return this.hosts.filter((h) => h.started && h.granted && World.read(h.clock, tUs) < h.holder.permitUntilUs).map((h) => h.name);
  }

  run(commands: readonly Command[]): this {
    for (const c of commands) this.apply(c);
    return this;
  }

  apply(c: Command): void {
    switch (c.op) {
      case 'advance':
        this.#advance(Math.min(this.realUs + c.us, HORIZON_US));
        break;
      case 'renew': {
        const i = c.host % this.hosts.length;
        if (this.hosts[i]!.mode === 'active') this.#renew(i);
        break;
      }
      case 'step':
        this.#step(c.pick, c.fate);
        break;
      case 'flush':
        for (let n = 0; n < 50 && this.flights.length > 0; n++) {
          this.#step(0, 'deliver');
          this.#check();
        }
        break;
      case 'verdict':
      case 'membership':
        if (this.#pending === null) this.#failoverSend(c.op === 'verdict' ? { purpose: 'readToTake', pick: c.pick } : { purpose: 'readToChange', pick: c.pick }, { type: 'read', vmId: VM });
        break;
    }
    this.#check();
  }

  /** The final record's term is 1 + the take-overs applied. */
  checkTerms(): void {
    const last = this.table.peek(VM);
    if (last !== null) expect(last.record.term, 'final term').toBe(1 + this.stats.takeOvers);
  }

  #check(): void {
    const releasers = this.releasersAt(this.realUs);
    if (releasers.length > 1) throw new Violation(`hosts ${releasers.join(', ')} may release at once at true time ${this.realUs} µs`);
    if (releasers.length === 1) {
      this.stats.solo++;
      if (releasers[0] !== 'h0' || this.hosts[0]!.term > 1) this.stats.successorReleasing++;
      for (const h of this.hosts) {
        if (h.name === releasers[0] || !h.granted) continue;
        const stoppedUs = (h.holder.permitUntilUs - h.clock.offsetUs) / (1 + h.clock.drift);
        this.stats.closestHandOverUs = Math.min(this.stats.closestHandOverUs, this.realUs - stoppedUs);
      }
    }
  }

  /**
   * Moves true time to `toUs`, or only to the first instant at which the
   * failover actor's clock lets a successor start (it starts then, and the
   * next commands happen at that very instant).
   */
  #advance(toUs: number): void {
    let next: { at: number; index: number } | null = null;
    for (const [index, s] of this.starts.entries()) {
      const at = this.#failoverReachesAt(s.atUs);
      if (at <= toUs && (next === null || at < next.at)) next = { at, index };
    }
    if (next === null) {
      this.realUs = Math.max(this.realUs, toUs);
      return;
    }
    const [s] = this.starts.splice(next.index, 1);
    this.realUs = Math.max(this.realUs, next.at);
    this.#start(s!.host, s!.term);
  }

  /** The first true time ≥ now at which the failover actor's clock reads at least `clockUs`. */
  #failoverReachesAt(clockUs: number): number {
    const c = this.failoverClock;
    let t = Math.max(this.realUs, (clockUs - c.offsetUs) / (1 + c.drift));
    while (World.read(c, t) < clockUs) t += Math.max(1e-6, Math.abs(t) * 4 * Number.EPSILON);
    return t;
  }

  #start(i: number, term: number): void {
    const h = this.hosts[i]!;
    h.started = true;
    h.mode = 'active';
    h.term = term;
    this.#renew(i); // a promoted host claims the lease with a renewal of its own first
  }

  #renew(i: number): void {
    const h = this.hosts[i]!;
    const nowUs = World.read(h.clock, this.realUs);
    const { requestId, op } = h.holder.renewal(h.term, nowUs);
    h.sentUs.set(requestId, nowUs);
    this.flights.push({ stage: 'request', from: i, purpose: 'renew', requestId, op, orphan: false });
  }

  #step(pick: number, fate: Fate): void {
    if (this.flights.length === 0) return;
    const index = pick % this.flights.length;
    const f = this.flights[index]!;
    this.flights.splice(index, 1);
    if (f.stage === 'answer') {
      // A lost answer: the sender's call times out.
      this.#deliver(f.to, fate === 'deliver' ? f.result : unavailable(f.result.requestId));
      return;
    }
    if (fate === 'deliver') {
      const result = this.#store(f);
      if (f.orphan) this.stats.lateApplied += result.outcome === 'ok' ? 1 : 0;
      else this.flights.push({ stage: 'answer', to: f.from, result });
    } else if (fate === 'timeout' && !f.orphan) {
      // The sender gives up and hears unavailable; the request is still on its way and may apply later.
      this.flights.push({ stage: 'answer', to: f.from, result: unavailable(f.requestId) }, { ...f, orphan: true });
    } else if (!f.orphan) {
      // Lost on the way: never applied, the sender times out.
      this.flights.push({ stage: 'answer', to: f.from, result: unavailable(f.requestId) });
    }
  }

  /** The store applies a request when it arrives; every answer carries the record as it now stands (sim/lease-store.ts). */
  #store(f: Extract<Flight, { stage: 'request' }>): LeaseResult {
    const { op, requestId } = f;
    const id = requestId;
    let reply;
    if (op.type === 'read') reply = this.table.handle({ kind: 'get', id, vmId: op.vmId });
    else {
      this.#writer = f;
      reply =
        op.expectedRevision === 0
          ? this.table.handle({ kind: 'create', id, vmId: op.vmId, record: op.record })
          : this.table.handle({ kind: 'update', id, vmId: op.vmId, record: op.record, expectedRevision: op.expectedRevision });
      this.#writer = null;
    }
    const current = this.table.peek(op.vmId);
    const outcome = reply.kind === 'conflict' ? 'conflict' : reply.kind === 'unavailable' ? 'unavailable' : 'ok';
    return { requestId, outcome, record: current?.record ?? null, revision: current?.revision ?? 0 };
  }

  #onApply(lease: VersionedLease): void {
    const w = this.#writer!;
    const last = this.#last;
    const r = lease.record;
    if (last !== null) expect(lease.revision, 'revisions grow').toBeGreaterThan(last.revision);
    if (w.from !== 'failover') {
      const host = this.hosts[w.from]!.name;
      expect(r.primaryHost, 'a renewal names its writer').toBe(host);
      if (last === null) expect(r.term, 'the first record').toBe(1);
      else {
        // A holder renews the record it saw: it never writes over another host, another term or the membership.
        expect(r.primaryHost, `${host} renewed over ${last.record.primaryHost}'s record`).toBe(last.record.primaryHost);
        expect(r.term, `${host} renewed term ${last.record.term} as ${r.term}`).toBe(last.record.term);
        expect(r.backupHost, `${host}'s renewal changed the membership`).toBe(last.record.backupHost);
      }
    } else if (w.purpose === 'take') {
      expect(last, 'a take-over replaces a record').not.toBeNull();
      expect(r.term, `a take-over after term ${last!.record.term}`).toBe(last!.record.term + 1);
      expect(r.primaryHost, 'a take-over names another host').not.toBe(last!.record.primaryHost);
      expect(r.backupHost).toBe('');
      this.stats.takeOvers++;
    } else {
      expect(sameWrite(r, last!.record), 'a membership change keeps holder, term and expiry').toBe(true);
      this.stats.membershipWrites++;
    }
    this.#last = lease;
  }

  #deliver(to: Actor, result: LeaseResult): void {
    if (to === 'failover') {
      this.#failoverAnswer(result);
      return;
    }
    const h = this.hosts[to]!;
    const before = h.holder.permitUntilUs;
    const outcome = h.holder.answer(result);
    this.stats.outcomes[outcome.kind]++;
    expect(h.holder.permitUntilUs, 'permitUntilUs never moves back').toBeGreaterThanOrEqual(before);
    switch (outcome.kind) {
      case 'granted':
        // Counted from the send of the request answered, on the holder's clock.
        expect(outcome.permitUntilUs).toBe(h.sentUs.get(result.requestId)! + DURATION_US - this.believed.marginUs);
        if (h.mode === 'active') h.granted = true;
        break;
      case 'rewritten':
        if (h.mode === 'active') this.#renew(to); // renew at once on the new revision, as the host agent does
        break;
      case 'lost':
        h.mode = 'deposed'; // no more renewals; the permit it has runs out on its own
        break;
      default:
        break;
    }
  }

  #failoverSend(pending: PendingRequest, op: LeaseOp): void {
    const id = ++this.#failoverRequestId;
    this.#pending = { ...pending, id } as Pending;
    const purpose = pending.purpose === 'take' || pending.purpose === 'change' ? pending.purpose : 'read';
    this.flights.push({ stage: 'request', from: 'failover', purpose, requestId: id, op, orphan: false });
  }

  #failoverAnswer(result: LeaseResult): void {
    const p = this.#pending;
    if (p === null || p.id !== result.requestId) return;
    this.#pending = null;
    if (p.purpose === 'take' && result.outcome === 'ok') {
      this.#attempts = [];
      this.#scheduleStart(p.attempt.record, p.attempt.replaced);
      return;
    }
    const found = result.outcome === 'unavailable' ? null : result.record;
    // A take-over of ours answered unavailable may have applied: exactly what we wrote is ours (sameWrite).
    const ours = found === null ? [] : this.#attempts.filter((a) => sameWrite(a.record, found));
    if (ours.length > 0) {
      // Identical attempts (same successor, term and clock reading) may have replaced different records:
      // which one applied cannot be told, so the successor waits out the latest of them.
      const replaced = ours.map((a) => a.replaced).reduce((a, b) => (b.expiresAtMs > a.expiresAtMs ? b : a));
      this.#attempts = [];
      this.stats.adopted++;
      this.#scheduleStart(ours[0]!.record, replaced);
      if (p.purpose !== 'readToChange') return;
    }
    switch (p.purpose) {
      case 'readToTake': {
        if (found === null) return;
        const others = this.hosts.map((_, i) => i).filter((i) => this.hosts[i]!.name !== found.primaryHost);
        const successor = others[p.pick % others.length]!;
        const nowUs = World.read(this.failoverClock, this.realUs);
        const attempt: TakeAttempt = { record: takeOverRecord(this.hosts[successor]!.name, found.term + 1, nowUs, DURATION_US), replaced: found };
        // A successor not yet started is given up: it never starts under a term a newer take-over may replace
        // (the host agent refuses a role change older than its newest one; see the header).
        this.starts.length = 0;
        this.#attempts.push(attempt);
        this.#failoverSend({ purpose: 'take', attempt }, { type: 'cas', vmId: VM, expectedRevision: result.revision, record: attempt.record });
        return;
      }
      case 'readToChange': {
        if (found === null) return;
        const names = [...this.hosts.map((h) => h.name).filter((n) => n !== found.primaryHost), ''];
        this.#failoverSend({ purpose: 'change' }, { type: 'cas', vmId: VM, expectedRevision: result.revision, record: withBackup(found, names[p.pick % names.length]!) });
        return;
      }
      case 'take': // a conflict (the holder renewed) or unavailable (the attempt stays remembered)
      case 'change':
        return;
    }
  }

  #scheduleStart(record: LeaseRecord, replaced: LeaseRecord): void {
    const host = this.hosts.findIndex((h) => h.name === record.primaryHost);
    this.starts.push({ host, term: record.term, atUs: successorMayStartAtUs(replaced, this.believed.skewUs) });
  }
}

const unavailable = (requestId: number): LeaseResult => ({ requestId, outcome: 'unavailable', record: null, revision: 0 });

// ── arbitraries ──────────────────────────────────────────────────────────

/** Offsets within ±bound/4 (extremes likely), drift within ±ρ: with HORIZON_US, any two clocks stay within `bound`. */
const clockArb = (boundUs: number, driftMax = DRIFT_MAX): fc.Arbitrary<Clock> =>
  fc.record({
    offsetUs: fc.oneof(fc.constantFrom(-boundUs / 4, boundUs / 4), fc.integer({ min: -boundUs / 4, max: boundUs / 4 })),
    drift: fc.oneof(fc.constantFrom(-driftMax, driftMax, 0), fc.double({ min: -driftMax, max: driftMax, noNaN: true })),
  });

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({ op: fc.constant('advance' as const), us: fc.oneof(fc.integer({ min: 1, max: 2_000 }), fc.integer({ min: 1, max: DURATION_US / 2 }), fc.integer({ min: DURATION_US / 2, max: (3 * DURATION_US) / 2 })) }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('renew' as const), host: fc.nat(2) }) },
  {
    weight: 8,
    arbitrary: fc.record({ op: fc.constant('step' as const), pick: fc.nat(), fate: fc.oneof({ weight: 8, arbitrary: fc.constant('deliver' as const) }, { weight: 1, arbitrary: fc.constant('lose' as const) }, { weight: 1, arbitrary: fc.constant('timeout' as const) }) }),
  },
  { weight: 3, arbitrary: fc.constant({ op: 'flush' as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('verdict' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('membership' as const), pick: fc.nat() }) },
);

const scenarioArb = (boundUs: number) =>
  fc.integer({ min: 2, max: 3 }).chain((n) =>
    fc.record({
      hostClocks: fc.array(clockArb(boundUs), { minLength: n, maxLength: n }),
      failoverClock: clockArb(boundUs),
      commands: fc.array(commandArb, { maxLength: MAX_COMMANDS, size: 'max' }),
    }),
  );

function runScenario(s: { hostClocks: readonly Clock[]; failoverClock: Clock; commands: readonly Command[] }, believed: Believed = BELIEVED): World {
  const world = new World(s.hostClocks, s.failoverClock, believed).run(s.commands);
  world.checkTerms();
  return world;
}

const emptyStats = (): Stats => ({ solo: 0, successorReleasing: 0, takeOvers: 0, adopted: 0, membershipWrites: 0, outcomes: { granted: 0, rewritten: 0, lost: 0, unavailable: 0, ignored: 0 }, lateApplied: 0, closestHandOverUs: Infinity });

function addStats(total: Stats, s: Stats): void {
  for (const k of ['solo', 'successorReleasing', 'takeOvers', 'adopted', 'membershipWrites', 'lateApplied'] as const) total[k] += s[k];
  for (const k of Object.keys(s.outcomes) as (keyof Stats['outcomes'])[]) total.outcomes[k] += s.outcomes[k];
  total.closestHandOverUs = Math.min(total.closestHandOverUs, s.closestHandOverUs);
}

/** fc.check of the safety property under `believed`, with clocks within `realBoundUs` of each other. */
function findViolation(realBoundUs: number, believed: Believed) {
  return fc.check(
    fc.property(scenarioArb(realBoundUs), (s) => {
      runScenario(s, believed);
    }),
    { numRuns: 2_000, seed: 42 },
  );
}

describe('lease safety (property)', () => {
  it('clocks within the bound: at most one host may release at any true instant, and terms grow by exactly 1 per take-over', () => {
    const total = emptyStats();
    fc.assert(
      fc.property(scenarioArb(SKEW_US), (s) => addStats(total, runScenario(s).stats)),
      { numRuns: 1_000 },
    );
    // Not vacuous: hosts held and released, successors released after take-overs, every answer's meaning came up.
    expect(total.solo).toBeGreaterThan(10_000);
    expect(total.takeOvers).toBeGreaterThan(300);
    expect(total.successorReleasing).toBeGreaterThan(1_000);
    expect(total.adopted).toBeGreaterThan(10);
    expect(total.membershipWrites).toBeGreaterThan(200);
    expect(total.lateApplied).toBeGreaterThan(50);
    for (const [kind, n] of Object.entries(total.outcomes)) expect(n, kind).toBeGreaterThan(100);
    // And close to the edge: the least gap the rule allows is about the margin (the failover's skew wait spent on real skew);
    // some hand-over came within one skew bound of it.
    expect(total.closestHandOverUs).toBeGreaterThanOrEqual(0);
    expect(total.closestHandOverUs).toBeLessThan(MARGIN_US + SKEW_US);
  });

  it('the bound is what the margin and the failover’s wait add up to: the skew bound on either side alone is enough in this model', () => {
    // No check-to-emit time is modelled here: the safety part of the margin covers that on real hosts.
    for (const believed of [
      { marginUs: 0, skewUs: SKEW_US },
      { marginUs: SKEW_US, skewUs: 0 },
    ]) {
      fc.assert(
        fc.property(scenarioArb(SKEW_US), (s) => {
          runScenario(s, believed);
        }),
        { numRuns: 300 },
      );
    }
  });

  it('the property has teeth: hosts that believe margin 0 and skew 0 are caught releasing together, with real clocks within the bound', () => {
    const result = findViolation(SKEW_US, { marginUs: 0, skewUs: 0 });
    expect(result.failed).toBe(true);
    expect(result.errorInstance).toBeInstanceOf(Violation);
  });

  it('the property has teeth: clocks skewed 20 times beyond the bound the hosts believe are caught releasing together', () => {
    const result = findViolation(20 * SKEW_US, BELIEVED);
    expect(result.failed).toBe(true);
    expect(result.errorInstance).toBeInstanceOf(Violation);
  });
});

describe('lease safety: scripted races', () => {
  // h0's clock is slow, h1's and the failover's fast: the worst case within the bound.
  const slow: Clock = { offsetUs: -SKEW_US / 4, drift: -DRIFT_MAX };
  const fast: Clock = { offsetUs: SKEW_US / 4, drift: DRIFT_MAX };
  const deliver = (pick = 0): Command => ({ op: 'step', pick, fate: 'deliver' });

  it('a take-over on a wrong verdict wins over the holder’s renewal; the holder keeps its permit, the successor starts after the old lease and the skew bound, and releases once granted', () => {
    const w = new World([slow, fast], fast);
    w.run([{ op: 'advance', us: 10_000 }, { op: 'renew', host: 0 }, { op: 'flush' }]);
    const h0SentUs = World.read(slow, 10_000);
    expect(h0SentUs).toBe(9_749);
    expect(w.hosts[0]!.holder.permitUntilUs).toBe(h0SentUs + DURATION_US - MARGIN_US);
    w.run([
      { op: 'advance', us: 5_000 },
      { op: 'verdict', pick: 0 }, // the failover actor wrongly thinks h0 dead: it reads the lease
      { op: 'renew', host: 0 }, // h0's renewal, behind the read
      deliver(0), // the read
      deliver(1), // its answer: the take-over for h1 goes out
      deliver(1), // the take-over applies first: term 2
      deliver(0), // h0's renewal reaches the store: the revision moved → conflict
      deliver(0), // the failover actor hears: taken
      deliver(0), // h0 hears: lost
    ]);
    expect(w.stats.takeOvers).toBe(1);
    expect(w.table.peek(VM)?.record).toMatchObject({ primaryHost: 'h1', term: 2, backupHost: '' });
    expect(w.hosts[0]!.mode).toBe('deposed');
    expect(w.stats.outcomes.lost).toBe(1);
    // h0 keeps the permit it had (its last renewal was not granted); it stops when its slow clock reaches 33 749.
    expect(w.hosts[0]!.holder.permitUntilUs).toBe(h0SentUs + DURATION_US - MARGIN_US);
    const startAtUs = w.starts[0]!.atUs;
    expect(w.starts).toEqual([{ host: 1, term: 2, atUs: h0SentUs + DURATION_US + SKEW_US }]);
    expect(w.releasersAt(30_000)).toEqual(['h0']);
    expect(w.releasersAt(34_100)).toEqual([]);
    // The next advance stops at h1's start (true ≈ 40 495): it claims the lease with a renewal of its own.
    w.run([{ op: 'advance', us: 30_000 }]);
    expect(w.hosts[1]!.started).toBe(true);
    expect(World.read(fast, w.realUs)).toBe(startAtUs);
    expect(w.releasersAt(w.realUs)).toEqual([]); // not before its own grant
    // Its claim conflicts with the record written for it (rewritten); its second renewal is granted.
    w.run([{ op: 'flush' }]);
    expect(w.stats.outcomes.rewritten).toBe(1);
    expect(w.hosts[1]!.granted).toBe(true);
    expect(w.releasersAt(w.realUs)).toEqual(['h1']);
    // The hand-over gap: h0 stopped at true ≈ 34 002, h1 started at ≈ 40 495: more than the margin apart.
    const h0StopsUs = (h0SentUs + DURATION_US - MARGIN_US - slow.offsetUs) / (1 + slow.drift);
    expect(w.realUs - h0StopsUs).toBeGreaterThan(MARGIN_US);
    expect(w.stats.closestHandOverUs).toBeCloseTo(w.realUs - h0StopsUs, 6);
    w.checkTerms();
  });

  it('a take-over whose answer was lost is found by sameWrite on the next read and its successor started', () => {
    const w = new World([slow, fast, fast], fast);
    w.run([
      { op: 'renew', host: 0 },
      { op: 'flush' },
      { op: 'verdict', pick: 1 }, // for h2
      deliver(), // the read
      deliver(), // its answer: the take-over goes out
      deliver(), // applied
      { op: 'step', pick: 0, fate: 'lose' }, // its answer is lost: unavailable
    ]);
    expect(w.table.peek(VM)?.record).toMatchObject({ primaryHost: 'h2', term: 2 });
    expect(w.starts).toEqual([]);
    w.run([{ op: 'verdict', pick: 0 }, { op: 'flush' }]);
    expect(w.stats.adopted).toBe(1);
    expect(w.stats.takeOvers).toBe(1); // no second take-over
    // Started after the record the lost take-over replaced, not the one it wrote.
    expect(w.starts).toEqual([{ host: 2, term: 2, atUs: World.read(slow, 0) + DURATION_US + SKEW_US }]);
    w.checkTerms();
  });

  it('a membership change between renewals: the holder’s renewal is rewritten, then carries the new backup', () => {
    const w = new World([slow, fast, fast], fast);
    w.run([{ op: 'renew', host: 0 }, { op: 'flush' }, { op: 'membership', pick: 1 }, { op: 'flush' }]);
    expect(w.table.peek(VM)?.record.backupHost).toBe('h2');
    w.run([{ op: 'renew', host: 0 }, { op: 'flush' }]);
    expect(w.stats.outcomes.rewritten).toBe(1);
    expect(w.stats.membershipWrites).toBe(1);
    expect(w.table.peek(VM)).toMatchObject({ record: { primaryHost: 'h0', term: 1, backupHost: 'h2' }, revision: 3 });
    expect(w.hosts[0]!.holder.backupHost).toBe('h2');
  });
});
