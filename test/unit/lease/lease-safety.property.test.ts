/**
 * Property: hosts acquire, renew and take over one VM's lease against a
 * linearizable CAS store (MemoryLeaseTable) with requests and answers
 * delayed, reordered across hosts and lost, wall clocks stepping within the
 * skew bound and monotonic clocks drifting. At every instant at most one host
 * believes it may release, and terms only grow, by exactly 1 per take-over.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeaseHolder, type LeaseAttempt } from '../../../lib/lease/lease-logic.js';
import { MemoryLeaseTable, type LeaseReply } from '../../../lib/lease/memory-store.js';
import { leaseOptionsSchema, type LeaseOptions } from '../../../lib/lease/options.js';
import type { LeaseNow, VersionedLease } from '../../../lib/lease/types.js';

const VM = 'vm-1';
const OPTIONS: LeaseOptions = leaseOptionsSchema.parse({ leaseDurationMs: 3_000, renewIntervalMs: 1_000, clockSkewBoundMs: 250, safetyMs: 100 });
/** Each wall clock stays within this of true time, so two differ by at most clockSkewBoundMs. */
const HALF_SKEW_MS = OPTIONS.clockSkewBoundMs / 2;
/** Monotonic drift rate ρ (1000 ppm, far worse than real crystals); safetyMs must cover ρ·leaseDurationMs ≈ 3 ms. */
const DRIFT_MAX = 1e-3;
const HOSTS = 3;
const MAX_COMMANDS = 150;

type Command =
  | { readonly op: 'advance'; readonly ms: number }
  | { readonly op: 'acquire'; readonly host: number; readonly holderDead: boolean }
  | { readonly op: 'renew'; readonly host: number }
  | { readonly op: 'step'; readonly pick: number; readonly lose: boolean }
  | { readonly op: 'clock'; readonly host: number; readonly offsetMs: number };

interface HostClock {
  offsetMs: number;
  readonly monoBaseMs: number;
  readonly drift: number;
}

type Flight =
  | { readonly kind: 'read'; readonly host: number; readonly purpose: 'acquire' | 'observe'; readonly holderDead: boolean; readonly lease: VersionedLease | null }
  | { readonly kind: 'write'; readonly host: number; readonly attempt: LeaseAttempt; reply: LeaseReply | null };

const offsetArb = fc.oneof(fc.constantFrom(-HALF_SKEW_MS, HALF_SKEW_MS), fc.integer({ min: -HALF_SKEW_MS, max: HALF_SKEW_MS }));
const hostArb = fc.integer({ min: 0, max: HOSTS - 1 });
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.oneof(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 400, max: 3_500 })) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('acquire' as const), host: hostArb, holderDead: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('renew' as const), host: hostArb }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant('step' as const), pick: fc.nat(), lose: fc.integer({ min: 0, max: 9 }).map((n) => n === 0) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('clock' as const), host: hostArb, offsetMs: offsetArb }) },
);
const clockArb: fc.Arbitrary<HostClock> = fc.record({
  offsetMs: offsetArb,
  monoBaseMs: fc.integer({ min: 0, max: 1_000_000 }),
  drift: fc.oneof(fc.constantFrom(-DRIFT_MAX, DRIFT_MAX), fc.double({ min: -DRIFT_MAX, max: DRIFT_MAX, noNaN: true })),
});
const scenarioArb = fc.record({
  clocks: fc.array(clockArb, { minLength: HOSTS, maxLength: HOSTS }),
  commands: fc.array(commandArb, { maxLength: MAX_COMMANDS, size: 'max' }),
});

interface Outcome {
  /** Instants checked at which exactly one host could release (the property is not vacuous). */
  soloInstants: number;
  takeOvers: number;
  /** Each host's view at the end. */
  holders: readonly LeaseHolder[];
  /** Who may release at real time `tMs` (with the clocks as they are at the end). */
  releasersAt: (tMs: number) => string[];
}

/**
 * Runs one scenario; throws on a violation. `believed` are the options the
 * hosts use (the real skew and drift are fixed above), so a test can show
 * that a rule without the skew margin fails.
 */
function run(clocks: readonly HostClock[], commands: readonly Command[], believed: LeaseOptions = OPTIONS): Outcome {
  let realMs = 0;
  const clock = clocks.map((c) => ({ ...c }));
  const nowOf = (host: number, tMs: number): LeaseNow => ({ wallMs: tMs + clock[host]!.offsetMs, monoMs: clock[host]!.monoBaseMs + tMs * (1 + clock[host]!.drift) });
  const holders = clock.map((_, i) => new LeaseHolder(`h${i}`, believed));
  const busy = holders.map(() => false);
  const flights: Flight[] = [];
  const outcome = { soloInstants: 0, takeOvers: 0 };
  let last: VersionedLease | null = null;
  const ownerOfTerm = new Map<number, string>();
  const table = new MemoryLeaseTable({
    onApply: (_vm, lease) => {
      const { term, primaryHost } = lease.record;
      if (last === null) expect(term, 'first term').toBeGreaterThanOrEqual(1);
      else if (term === last.record.term) expect(primaryHost, `renewal of term ${term} by another host`).toBe(last.record.primaryHost);
      else {
        expect(term, `term after ${last.record.term}`).toBe(last.record.term + 1);
        outcome.takeOvers += 1;
      }
      if (last !== null) expect(lease.revision).toBeGreaterThan(last.revision);
      const owner = ownerOfTerm.get(term);
      if (owner !== undefined) expect(primaryHost, `two hosts at term ${term}`).toBe(owner);
      ownerOfTerm.set(term, primaryHost);
      last = lease;
    },
  });
  let nextId = 0;

  const releasersAt = (tMs: number): string[] => holders.filter((h, i) => h.canRelease(nowOf(i, tMs))).map((h) => h.hostId);
  const checkAt = (tMs: number): void => {
    const releasers = releasersAt(tMs);
    expect(releasers.length, `hosts ${releasers.join(', ')} may all release at real time ${tMs}`).toBeLessThanOrEqual(1);
    if (releasers.length === 1) outcome.soloInstants += 1;
  };
  /** canRelease is piecewise constant between each host's breakpoints: check every piece. */
  const checkInterval = (fromMs: number, toMs: number): void => {
    const points = [fromMs, toMs];
    holders.forEach((h, i) => {
      const deadline = h.releaseDeadlineMonoMs();
      const grant = h.grant;
      if (deadline === null || grant === null) return;
      points.push((deadline - clock[i]!.monoBaseMs) / (1 + clock[i]!.drift), grant.releaseNotBeforeWallMs - clock[i]!.offsetMs);
    });
    const inside = [...new Set(points.filter((p) => Number.isFinite(p) && p >= fromMs && p <= toMs))].sort((a, b) => a - b);
    for (let k = 0; k < inside.length; k++) {
      checkAt(inside[k]!);
      if (k + 1 < inside.length) checkAt((inside[k]! + inside[k + 1]!) / 2);
    }
  };
  const startWrite = (host: number, attempt: LeaseAttempt): void => {
    flights.push({ kind: 'write', host, attempt, reply: null });
    busy[host] = true;
  };
  const startRead = (host: number, purpose: 'acquire' | 'observe', holderDead: boolean): void => {
    const reply = table.handle({ kind: 'get', id: nextId++, vmId: VM });
    flights.push({ kind: 'read', host, purpose, holderDead, lease: reply.kind === 'got' ? reply.lease : null });
    busy[host] = true;
  };

  for (const cmd of commands) {
    switch (cmd.op) {
      case 'advance':
        checkInterval(realMs, realMs + cmd.ms);
        realMs += cmd.ms;
        break;
      case 'clock':
        clock[cmd.host]!.offsetMs = cmd.offsetMs;
        break;
      case 'acquire':
        if (!busy[cmd.host]) startRead(cmd.host, 'acquire', cmd.holderDead);
        break;
      case 'renew': {
        const h = holders[cmd.host]!;
        if (busy[cmd.host] || h.grant === null) break;
        const d = h.renew(nowOf(cmd.host, realMs));
        if (d.kind === 'write') startWrite(cmd.host, d.attempt);
        else startRead(cmd.host, 'observe', false);
        break;
      }
      case 'step': {
        if (flights.length === 0) break;
        const index = cmd.pick % flights.length;
        const f = flights[index]!;
        const h = holders[f.host]!;
        const now = nowOf(f.host, realMs);
        if (f.kind === 'write' && f.reply === null) {
          if (cmd.lose) {
            // Request lost on the way: never applied, the host sees a timeout.
            flights.splice(index, 1);
            busy[f.host] = false;
            h.unknown();
          } else {
            const a = f.attempt;
            f.reply =
              a.expectedRevision === null
                ? table.handle({ kind: 'create', id: nextId++, vmId: VM, record: a.record })
                : table.handle({ kind: 'update', id: nextId++, vmId: VM, record: a.record, expectedRevision: a.expectedRevision });
          }
          break;
        }
        flights.splice(index, 1);
        busy[f.host] = false;
        if (f.kind === 'read') {
          if (cmd.lose) break;
          if (f.purpose === 'observe') h.observe(f.lease);
          else {
            const d = h.acquire(f.lease, now, { holderDead: f.holderDead });
            if (d.kind === 'write') startWrite(f.host, d.attempt);
          }
        } else if (cmd.lose || f.reply!.kind === 'unavailable') h.unknown();
        else if (f.reply!.kind === 'written') h.written(f.reply!.revision);
        else h.conflict();
        break;
      }
    }
    checkAt(realMs);
  }
  return { ...outcome, holders, releasersAt };
}

describe('lease safety (property)', () => {
  it('at most one host may release at any instant, and terms grow by exactly 1 per take-over', () => {
    let solo = 0;
    let takeOvers = 0;
    fc.assert(
      fc.property(scenarioArb, ({ clocks, commands }) => {
        const o = run(clocks, commands);
        solo += o.soloInstants;
        takeOvers += o.takeOvers;
      }),
      { numRuns: 400 },
    );
    // Not vacuous: hosts did hold and release, and did take over.
    expect(solo).toBeGreaterThan(1_000);
    expect(takeOvers).toBeGreaterThan(50);
  });

  it('without the skew margin in the rule, the property finds two hosts releasing at once', () => {
    const careless = leaseOptionsSchema.parse({ ...OPTIONS, clockSkewBoundMs: 0, safetyMs: 0 });
    const result = fc.check(
      fc.property(scenarioArb, ({ clocks, commands }) => {
        run(clocks, commands, careless);
      }),
      { numRuns: 2_000, seed: 42 },
    );
    expect(result.failed).toBe(true);
    expect(String(result.errorInstance)).toMatch(/may all release/);
  });

  it('a scripted race: a take-over on a dead verdict wins over the holder’s renewal; the new holder waits out the old lease', () => {
    const worst: HostClock[] = [
      { offsetMs: -HALF_SKEW_MS, monoBaseMs: 0, drift: -DRIFT_MAX },
      { offsetMs: HALF_SKEW_MS, monoBaseMs: 0, drift: DRIFT_MAX },
      { offsetMs: 0, monoBaseMs: 0, drift: 0 },
    ];
    const next = { op: 'step', pick: 0, lose: false } as const;
    const o = run(worst, [
      { op: 'acquire', host: 0, holderDead: false },
      next, // h0 reads: no record → sends create
      next, // create applied
      next, // h0 holds term 1: sent at real 0 = its wall −125, so expiresAtMs 2875
      { op: 'advance', ms: 1_000 },
      { op: 'acquire', host: 1, holderDead: true },
      next, // h1 reads term 1 → sends a take-over on the dead verdict
      { op: 'renew', host: 0 }, // h0's renewal in flight behind it
      next, // take-over applied: term 2
      { op: 'step', pick: 1, lose: false }, // the renewal reaches the store: its revision moved → conflict
      next, // h1 holds term 2, may release from wall 2875
      next, // h0 learns of the conflict; keeps its grant until it reads
    ]);
    expect(o.takeOvers).toBe(1);
    expect(o.holders[1]!.term).toBe(2);
    expect(o.holders[0]!.mustRead).toBe(true);
    expect(o.releasersAt(1_500)).toEqual(['h0']);
    // h0 stops at mono 2650 (real ≈ 2652.7 with its slow clock); h1 starts at its wall 2875 = real 2750.
    expect(o.releasersAt(2_652)).toEqual(['h0']);
    expect(o.releasersAt(2_700)).toEqual([]);
    expect(o.releasersAt(2_800)).toEqual(['h1']);
  });
});
