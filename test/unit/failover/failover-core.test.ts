/**
 * The failover service's core, driven directly: heartbeats on
 * `specula.<vm>.hb.<host>`, its deadline timers by name, and answers to its
 * lease requests. Time is only what the test passes to `handle`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HostRole } from '../../../lib/codec/messages.js';
import type { Effect, LeaseRecord } from '../../../lib/runtime/types.js';
import { MAX_REMEMBERED_TAKE_ATTEMPTS } from '../../../services/failover/core.js';
import { BACKUP, FAILOVER_OPTIONS, FailoverDriver, heartbeatInput, FIRST_INCARNATION, INTERVAL_US, NONE_TAKEN, LEASE_US, lateTimer, leaseOps, MISS_COUNT, primaryRecord, PRIMARY, PROMOTE_TIMER, roleChangesTo, allRoleChanges, S, SKEW_US, silentTimer, SPARE, timer, timers, VM } from './support.js';

const LATE_AFTER_US = Math.ceil(1.5 * INTERVAL_US);
const SILENT_AFTER_US = MISS_COUNT * INTERVAL_US;

/** A core started at 0 that read the primary's lease (renewed at 0) at revision 1. */
/** A lease with committed epochs at the first read: a restart, whose roles are learned until this timer. */
const RECOVERED = 'failover.recovered';

function started(): FailoverDriver {
  const d = new FailoverDriver();
  d.start(0, primaryRecord(0), 1);
  return d;
}

/** The primary heartbeats at each of `timesUs`, then falls silent: both deadlines pass and the core asks for the lease. */
function silentAfter(timesUs: readonly number[]): FailoverDriver {
  const d = started();
  for (const t of timesUs) d.handle(heartbeatInput(PRIMARY, 'primary', 1), t);
  d.fire(lateTimer(PRIMARY));
  d.fire(silentTimer(PRIMARY));
  return d;
}

/** A take-over after the primary's heartbeats at `timesUs`: silent, lease granted on the first compare-and-set. */
function granted(timesUs: readonly number[] = [10_000]): FailoverDriver {
  const d = silentAfter(timesUs);
  d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: 2 });
  return d;
}

describe('FailoverCore: heartbeat deadlines', () => {
  it("subscribes to every host's heartbeats and arms each host's late and silent deadlines at start", () => {
    const d = new FailoverDriver();
    expect(d.core.subscriptions).toEqual([S.heartbeat(PRIMARY), S.heartbeat(BACKUP), S.heartbeat(SPARE)]);
    const effects = d.handle({ kind: 'start' }, 1_000);
    const set = timers(effects);
    for (const h of [PRIMARY, BACKUP, SPARE]) {
      expect(set.get(lateTimer(h))).toBe(1_000 + LATE_AFTER_US);
      expect(set.get(silentTimer(h))).toBe(1_000 + SILENT_AFTER_US);
    }
    expect(leaseOps(effects).map((e) => e.op)).toEqual([{ type: 'read', vmId: VM }]);
    expect(d.core.state).toBe('protected');
  });

  it('gives every host startupGraceUs from its own start before it is silent: processes start at their own pace', () => {
    const d = new FailoverDriver({ ...FAILOVER_OPTIONS, startupGraceUs: 5 * SILENT_AFTER_US });
    const set = timers(d.start(1_000));
    for (const h of [PRIMARY, BACKUP, SPARE]) expect(set.get(silentTimer(h))).toBe(1_000 + 5 * SILENT_AFTER_US);
    // From its first heartbeat on, a host is watched as always.
    expect(timers(d.handle(heartbeatInput(PRIMARY, 'primary', 1), 2_000)).get(silentTimer(PRIMARY))).toBe(2_000 + SILENT_AFTER_US);
  });

  it('handles a heartbeat heard before its first lease read answered once the answer shows a first start, as of when it came', () => {
    const d = new FailoverDriver({ ...FAILOVER_OPTIONS, startupGraceUs: 5 * SILENT_AFTER_US });
    d.handle({ kind: 'start' }, 1_000);
    expect(timers(d.handle(heartbeatInput(PRIMARY, 'primary', 1), 2_000)).has(silentTimer(PRIMARY))).toBe(false);
    expect(d.core.recovering).toBe(true);
    const effects = d.answer({ outcome: 'ok', record: primaryRecord(0), revision: 1 }, 3_000);
    expect(d.core.recovering).toBe(false);
    expect(timers(effects).get(silentTimer(PRIMARY))).toBe(2_000 + SILENT_AFTER_US);
    expect(effects).toContainEqual({ kind: 'cancelTimer', name: 'failover.recovered' });
  });

  it('looks again one interval later at a silence deadline that fired over an interval late (it was stalled itself), and a heartbeat read meanwhile keeps the primary', () => {
    const d = started();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), 10_000);
    const dueUs = d.armed.get(silentTimer(PRIMARY))!;
    // The service did not run from before the deadline until well after it: the timer fires late.
    const late = d.handle({ kind: 'timer', name: silentTimer(PRIMARY) }, dueUs + 3 * INTERVAL_US);
    expect(leaseOps(late)).toEqual([]);
    expect(timers(late).get(silentTimer(PRIMARY))).toBe(dueUs + 4 * INTERVAL_US);
    expect(d.core.stats.lateDeadlinesDeferred).toBe(1);
    // The heartbeat that waited in its inbox is read now: nothing happened to the primary.
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), dueUs + 3 * INTERVAL_US + 10);
    expect(d.core.state).toBe('protected');
    // Without that heartbeat, the second look, on time, declares it silent.
    const d2 = started();
    d2.handle(heartbeatInput(PRIMARY, 'primary', 1), 10_000);
    const due2 = d2.armed.get(silentTimer(PRIMARY))!;
    d2.handle({ kind: 'timer', name: silentTimer(PRIMARY) }, due2 + 3 * INTERVAL_US);
    expect(leaseOps(d2.fire(silentTimer(PRIMARY))).map((e) => e.op.type)).toEqual(['cas']);
  });

  it('adopts the term of the lease it reads at start', () => {
    const d = new FailoverDriver();
    d.start(0, primaryRecord(0, 4), 9);
    expect(d.core.term).toBe(4);
  });

  it("re-arms only the sender's deadlines, from the time its heartbeat arrives", () => {
    const d = started();
    const effects = d.handle(heartbeatInput(BACKUP, 'backup', 1), 7_000);
    expect([...timers(effects)]).toEqual([
      [lateTimer(BACKUP), 7_000 + LATE_AFTER_US],
      [silentTimer(BACKUP), 7_000 + SILENT_AFTER_US],
    ]);
  });

  it('ignores and counts a heartbeat that names another host than its subject, or another VM: a forged one arms nothing', () => {
    const d = started();
    const onBackupSubject = heartbeatInput(BACKUP, 'backup', 1);
    if (onBackupSubject.kind !== 'message' || onBackupSubject.msg.type !== 'heartbeat') throw new Error('heartbeatInput gives a heartbeat message');
    expect(d.handle({ ...onBackupSubject, msg: { ...onBackupSubject.msg, host: 'host-z' } }, 7_000)).toEqual([]);
    expect(d.handle({ ...onBackupSubject, msg: { ...onBackupSubject.msg, vmId: 'vm9' } }, 7_000)).toEqual([]);
    expect(d.handle({ ...onBackupSubject, subject: S.heartbeat(PRIMARY) }, 7_000)).toEqual([]);
    expect(d.core.stats.foreignHeartbeats).toBe(3);
    // The real one still counts.
    expect([...timers(d.handle(onBackupSubject, 7_000))]).toHaveLength(2);
  });

  it('drops and counts a message of another type on a heartbeat subject (the codec never decodes one there: a bug)', () => {
    const d = started();
    const roleChange = { type: 'roleChange' as const, vmId: VM, host: BACKUP, role: 'primary' as const, term: 9, peerHost: '', seq: 1, committedEpoch: 0, joinSeq: 0 };
    expect(d.handle({ kind: 'message', subject: S.heartbeat(BACKUP), msg: roleChange }, 7_000)).toEqual([]);
    expect(d.core.stats.unexpectedMessages).toBe(1);
    expect(d.core.term).toBe(1);
  });

  it('marks a primary whose heartbeat is late suspect, and protected again when a heartbeat comes', () => {
    const d = started();
    // Only its view changes: it tells watchers, and does nothing else yet.
    expect(d.fire(lateTimer(PRIMARY))).toEqual([{ kind: 'send', subject: S.failover, msg: { type: 'failoverStatus', vmId: VM, term: 1, state: 'suspect', primaryHost: PRIMARY, backupHost: BACKUP, recovering: false } }]);
    expect(d.core.state).toBe('suspect');
    const effects = d.handle(heartbeatInput(PRIMARY, 'primary', 1), 17_000);
    expect(d.core.state).toBe('protected');
    expect(leaseOps(effects)).toEqual([]);
    expect(timers(effects).get(silentTimer(PRIMARY))).toBe(17_000 + SILENT_AFTER_US);
  });

  it('takes no action on a late backup or spare', () => {
    const d = started();
    expect([...d.fire(lateTimer(BACKUP)), ...d.fire(lateTimer(SPARE)), ...d.fire(silentTimer(SPARE))]).toEqual([]);
    expect(d.core.state).toBe('protected');
  });
});

describe('FailoverCore: taking the lease', () => {
  it('after miss-count intervals of silence takes the lease by compare-and-set, at term + 1, naming the backup', () => {
    const d = started();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), 5_000);
    d.fire(lateTimer(PRIMARY));
    expect(d.nowUs).toBe(5_000 + LATE_AFTER_US);
    const effects = d.fire(silentTimer(PRIMARY));
    expect(d.nowUs).toBe(5_000 + SILENT_AFTER_US);
    expect(leaseOps(effects).map((e) => e.op)).toEqual([{ type: 'cas', vmId: VM, expectedRevision: 1, record: { primaryHost: BACKUP, term: 2, expiresAtMs: (d.nowUs + LEASE_US) / 1_000, backupHost: '' } }]);
    expect(d.core.state).toBe('failingOver');
    expect(allRoleChanges(effects)).toEqual([]);
  });

  it('acts on no deadline while its first lease read is unanswered, and gives every host a whole period once it shows a first start', () => {
    const d = new FailoverDriver();
    d.handle({ kind: 'start' }, 0);
    const early = d.fire(silentTimer(PRIMARY));
    expect(leaseOps(early)).toEqual([]);
    expect(timers(early).has(silentTimer(PRIMARY))).toBe(false);
    // Answered late: whether this is a restart was not known, so the deadline that passed meant nothing.
    const answeredUs = SILENT_AFTER_US + INTERVAL_US;
    const effects = d.answer({ outcome: 'ok', record: primaryRecord(0), revision: 1 }, answeredUs);
    expect(timers(effects).get(silentTimer(PRIMARY))).toBe(answeredUs + SILENT_AFTER_US);
    expect(leaseOps(d.fire(silentTimer(PRIMARY))).map((e) => e.op.type)).toEqual(['cas']);
  });

  it('retries at once, on the revision in the answer, when the silent primary renewed in between; at most 3 times', () => {
    const d = silentAfter([10_000]);
    for (let retry = 1; retry <= 3; retry++) {
      const revision = 1 + retry;
      const effects = d.answer({ outcome: 'conflict', record: primaryRecord(d.nowUs - 1_000), revision });
      expect(leaseOps(effects).map((e) => e.op), `retry ${retry}`).toEqual([{ type: 'cas', vmId: VM, expectedRevision: revision, record: { primaryHost: BACKUP, term: 2, expiresAtMs: (d.nowUs + LEASE_US) / 1_000, backupHost: '' } }]);
      expect(d.core.state).toBe('failingOver');
    }
    const fourth = d.answer({ outcome: 'conflict', record: primaryRecord(d.nowUs - 1_000), revision: 5 });
    expect(leaseOps(fourth)).toEqual([]);
    expect(timers(fourth).get(silentTimer(PRIMARY))).toBe(d.nowUs + INTERVAL_US);
    expect(d.core.state).toBe('suspect');
    expect(d.core.stats.leaseConflicts).toBe(4);
    // One interval later it tries again, on the newest revision.
    expect(leaseOps(d.fire(silentTimer(PRIMARY))).map((e) => e.op)).toMatchObject([{ type: 'cas', expectedRevision: 5 }]);
  });

  it('has its immediate retries again in a later silence, after the primary came back', () => {
    const d = silentAfter([10_000]);
    for (let revision = 2; revision <= 5; revision++) d.answer({ outcome: 'conflict', record: primaryRecord(d.nowUs), revision });
    expect(d.core.state).toBe('suspect');
    // The primary was only slow: it reports in, and later falls silent for good.
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), d.nowUs + 1_000);
    expect(d.core.state).toBe('protected');
    d.fire(lateTimer(PRIMARY));
    d.fire(silentTimer(PRIMARY));
    // Its last renewal raced with the take-over: the conflict is retried at once.
    const effects = d.answer({ outcome: 'conflict', record: primaryRecord(d.nowUs - 2_000), revision: 6 });
    expect(leaseOps(effects).map((e) => e.op)).toMatchObject([{ type: 'cas', expectedRevision: 6, record: { primaryHost: BACKUP, term: 2 } }]);
  });

  it('does not retry at once after a conflict with a newer term, and then takes the lease above that term', () => {
    const d = silentAfter([10_000]);
    const newer: LeaseRecord = { primaryHost: SPARE, term: 5, expiresAtMs: 80 };
    const effects = d.answer({ outcome: 'conflict', record: newer, revision: 7 });
    expect(leaseOps(effects)).toEqual([]);
    expect(timers(effects).get(silentTimer(PRIMARY))).toBe(d.nowUs + INTERVAL_US);
    expect(d.core.state).toBe('suspect');
    const retry = leaseOps(d.fire(silentTimer(PRIMARY)));
    // Terms only grow: writing term 2 over term 5 would hand out a term that was already fenced.
    expect(retry.map((e) => e.op)).toMatchObject([{ type: 'cas', expectedRevision: 7, record: { primaryHost: BACKUP, term: 6 } }]);
  });

  it('retries one interval later, on the revision it last saw, when the store is unavailable', () => {
    const d = silentAfter([10_000]);
    const effects = d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    expect(leaseOps(effects)).toEqual([]);
    expect(allRoleChanges(effects)).toEqual([]);
    expect(timers(effects).get(silentTimer(PRIMARY))).toBe(d.nowUs + INTERVAL_US);
    expect(d.core.stats.leaseUnavailable).toBe(1);
    expect(d.core.state).toBe('suspect');
    expect(leaseOps(d.fire(silentTimer(PRIMARY))).map((e) => e.op)).toMatchObject([{ type: 'cas', expectedRevision: 1, record: { term: 2 } }]);
  });

  it('takes a take-over answered "ok" without the record written (a malformed answer, found by fuzzing) as no answer: counted, logged, retried', () => {
    const d = silentAfter([10_000]);
    const effects = d.answer({ outcome: 'ok', record: null, revision: 5 });
    expect(d.core.stats.leaseMalformed).toBe(1);
    expect(effects).toContainEqual(expect.objectContaining({ kind: 'log', level: 'error', event: 'failover.lease_malformed' }));
    expect(allRoleChanges(effects)).toEqual([]);
    expect(d.core.state).toBe('suspect');
    expect(timers(effects).get(silentTimer(PRIMARY))).toBe(d.nowUs + INTERVAL_US);
  });

  it('takes a take-over answered "ok" with another record than the one sent (found by fuzzing) as no answer: no term adopted, no promotion', () => {
    const d = silentAfter([10_000]);
    const sent = d.pendingCas.record;
    const effects = d.answer({ outcome: 'ok', record: { ...sent, primaryHost: PRIMARY, term: 5 }, revision: 5 });
    expect(d.core.stats.leaseMalformed).toBe(1);
    expect(d.core.term).toBe(1);
    expect(d.core.state).toBe('suspect');
    expect(timers(effects).has(PROMOTE_TIMER)).toBe(false);
  });

  it('ignores an answer to a request that is not outstanding', () => {
    const d = silentAfter([10_000]);
    const { requestId } = d.pending!;
    d.handle({ kind: 'leaseResult', result: { requestId: requestId - 1, outcome: 'ok', record: d.pendingCas.record, revision: 2 } });
    expect(d.core.state).toBe('failingOver');
    expect(d.core.term).toBe(1);
  });

  it('never promotes, nor asks for the lease twice at once, without a granted lease (any heartbeats, deadlines, conflicts, outages)', () => {
    const hosts = [PRIMARY, BACKUP, SPARE];
    const step = fc.oneof(
      fc.record({ kind: fc.constant('heartbeat' as const), host: fc.constantFrom(...hosts), role: fc.constantFrom<HostRole>('primary', 'backup', 'spare'), term: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ kind: fc.constant('timer' as const), name: fc.constantFrom(...hosts.flatMap((h) => [lateTimer(h), silentTimer(h)]), PROMOTE_TIMER) }),
      fc.record({ kind: fc.constant('conflict' as const), host: fc.constantFrom(...hosts), term: fc.integer({ min: 1, max: 3 }) }),
      fc.constant({ kind: 'unavailable' as const }),
    );
    let checkedWhileOutstanding = 0;
    fc.assert(
      fc.property(fc.array(fc.record({ step, gapUs: fc.integer({ min: 0, max: 2 * INTERVAL_US }) }), { maxLength: 60 }), (steps) => {
        const d = started();
        let revision = 1;
        for (const { step: s, gapUs } of steps) {
          const atUs = d.nowUs + gapUs;
          const outstanding = d.pending !== null;
          let effects: Effect[] = [];
          if (s.kind === 'heartbeat') effects = d.handle(heartbeatInput(s.host, s.role, s.term), atUs);
          // A shell delivers only the timers the core armed, at their deadline or later.
          else if (s.kind === 'timer' && d.armed.has(s.name)) effects = d.handle({ kind: 'timer', name: s.name }, Math.max(atUs, d.armed.get(s.name)!));
          else if (d.pending !== null && s.kind === 'conflict') effects = d.answer({ outcome: 'conflict', record: { primaryHost: s.host, term: s.term, expiresAtMs: atUs / 1_000 }, revision: ++revision }, atUs);
          else if (d.pending !== null && s.kind === 'unavailable') effects = d.answer({ outcome: 'unavailable', record: null, revision: 0 }, atUs);
          if (outstanding && (s.kind === 'heartbeat' || s.kind === 'timer')) {
            expect(leaseOps(effects)).toEqual([]);
            checkedWhileOutstanding++;
          }
          // The backup may be asked to join again (it reported in as a spare), never to be primary.
          expect(roleChangesTo(effects, BACKUP).filter((c) => c.role !== 'backup')).toEqual([]);
          expect(timers(effects).has(PROMOTE_TIMER)).toBe(false);
          // A spare may join as backup (re-protection), never as primary.
          expect(roleChangesTo(effects, SPARE).filter((c) => c.role !== 'backup')).toEqual([]);
          expect(['protected', 'suspect', 'failingOver', 'unprotected', 'reprotecting']).toContain(d.core.state);
        }
        expect(d.core.stats.failovers).toBe(0);
        expect(d.core.primaryHost).toBe(PRIMARY);
      }),
      { numRuns: 300 },
    );
    // The runs reached a lease request in flight and went on from there: the second check above ran.
    expect(checkedWhileOutstanding).toBeGreaterThan(0);
  });
});

describe('FailoverCore: a backup silent during a take-over', () => {
  it('is given up once the take-over finds the silent primary renewing its lease: alive, only not heard, and waiting for the backup', () => {
    const d = silentAfter([10_000]);
    expect(d.core.state).toBe('failingOver');
    // The backup's last heartbeat was at 0; its deadline passes while the lease store does not answer.
    expect(allRoleChanges(d.fire(silentTimer(BACKUP)))).toEqual([]);
    // The primary renewed its lease since it fell silent here: the take-over meets its renewal.
    const effects = d.answer({ outcome: 'conflict', record: primaryRecord(d.nowUs), revision: 3 });
    expect(d.core.state).toBe('unprotected');
    expect(d.core.backupHost).toBeNull();
    // The primary is told it has no backup (so it commits alone), which it would otherwise wait for forever.
    expect(leaseOps(effects).map((e) => e.op)).toMatchObject([{ type: 'cas', record: { primaryHost: PRIMARY, backupHost: '' } }]);
    expect(allRoleChanges(d.grantMembership())).toEqual([{ type: 'roleChange', vmId: VM, term: 1, host: PRIMARY, role: 'primary', peerHost: '', seq: 1, committedEpoch: expect.any(Number), joinSeq: 0 }]);
  });

  it('silent when the primary comes back started over, does not stop the take-over for it: its silence counts once that take-over is over (vopr seed 107204)', () => {
    const d = silentAfter([10_000]);
    // The lease store is out: the take-over waits, and the backup, silent too, is kept (the primary may be dead).
    d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    d.fire(silentTimer(BACKUP));
    expect([d.core.state, d.core.backupHost]).toEqual(['suspect', BACKUP]);
    // The primary's host comes back, its services started over: only a take-over for the backup can save the VM.
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 1), d.nowUs + 100);
    expect([d.core.state, d.core.backupHost]).toEqual(['failingOver', BACKUP]);
    // The store refuses it (the record moved): the take-over is over, and the backup's silence now counts.
    d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    expect(d.core.state).not.toBe('failingOver');
  });

  it('is kept while nothing shows the silent primary alive (the lease store out): it holds the only image, and is promoted once the store answers (vopr seed 61585)', () => {
    const d = silentAfter([10_000]);
    d.fire(silentTimer(BACKUP));
    d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    expect(d.core.state).toBe('suspect');
    expect(d.core.backupHost).toBe(BACKUP);
    // The store stays out a while; each retry finds it so, and the backup stays.
    for (let i = 0; i < 3; i++) {
      d.fire(silentTimer(PRIMARY));
      d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    }
    expect(d.core.backupHost).toBe(BACKUP);
    // The backup's host comes back; the store too: the take-over is granted, and the backup promoted.
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 40, true), d.nowUs + 1_000);
    d.fire(silentTimer(PRIMARY));
    d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: 2 });
    expect(d.core.state).toBe('promoting');
    expect(d.core.term).toBe(2);
  });

  it('kept while the primary was silent, is given up once the primary beats again', () => {
    const d = silentAfter([10_000]);
    d.fire(silentTimer(BACKUP));
    d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    expect(d.core.backupHost).toBe(BACKUP);
    // The primary was only cut off; the backup is still silent: the primary must not wait for it.
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 50), d.nowUs + 1_000);
    expect(d.core.state).toBe('unprotected');
    expect(d.core.backupHost).toBeNull();
  });

  it('is kept when it reported in again before the take-over failed', () => {
    const d = silentAfter([10_000]);
    d.fire(silentTimer(BACKUP));
    d.handle(heartbeatInput(BACKUP, 'backup', 1), d.nowUs + 1_000);
    d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    expect(d.core.state).toBe('suspect');
    expect(d.core.backupHost).toBe(BACKUP);
  });
});

describe('FailoverCore: the primary restarts during a take-over', () => {
  it('takes it for a restart that left the backup its image, and takes over once the lease store answers (vopr seed 20502)', () => {
    const d = silentAfter([10_000]);
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 40, true), d.nowUs);
    expect(d.core.state).toBe('failingOver');
    // The lease store is out and has not answered yet when the primary's host comes back as at creation.
    const restart = d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), d.nowUs + 1_000);
    expect(d.core.state).toBe('failingOver');
    expect(restart).not.toContainEqual(expect.objectContaining({ event: 'failover.restart_without_image' }));
    expect(d.core.stats.restartsWithoutImage).toBe(0);
    d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    // Each of its heartbeats asks for the take-over for the backup until it is made.
    const asked = d.handle(heartbeatInput(PRIMARY, 'primary', 1, 1, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), d.nowUs + 10_000);
    expect(leaseOps(asked).map((e) => e.op)).toMatchObject([{ type: 'cas', record: { primaryHost: BACKUP, term: 2 } }]);
  });
});

describe('FailoverCore: promotion', () => {
  it("waits after the grant until the old lease's expiry plus the clock skew, then makes the backup primary", () => {
    // The primary renewed at 20 ms (its lease runs to 50 ms) just before the take-over at 50 ms read it.
    const d = silentAfter([10_000, 20_000]);
    expect(d.nowUs).toBe(50_000);
    d.answer({ outcome: 'conflict', record: primaryRecord(20_000), revision: 3 });
    const effects = d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: 4 });
    expect(d.core.state).toBe('promoting');
    expect(d.core.term).toBe(2);
    expect(timers(effects).get(PROMOTE_TIMER)).toBe(20_000 + LEASE_US + SKEW_US);
    expect(allRoleChanges(effects)).toEqual([]);
    const promote = d.fire(PROMOTE_TIMER);
    expect(d.nowUs).toBe(51_000);
    expect(allRoleChanges(promote)).toEqual([{ type: 'roleChange', vmId: VM, term: 2, host: BACKUP, role: 'primary', peerHost: '', seq: 1, committedEpoch: expect.any(Number), joinSeq: 0 }]);
    expect(sentSubjects(promote)).toEqual([S.control(BACKUP), S.failover]);
    expect(d.core.primaryHost).toBe(BACKUP);
  });

  it('publishes its view (state, term, primary, backup) whenever it changes, and only then', () => {
    const d = silentAfter([10_000, 20_000]);
    const views = () => d.log.filter((e) => e.kind === 'send' && e.subject === S.failover).map((e) => (e.kind === 'send' && e.msg.type === 'failoverStatus' ? `${e.msg.state}/${e.msg.term}/${e.msg.primaryHost}/${e.msg.backupHost}${e.msg.recovering ? ' (learning)' : ''}` : ''));
    d.answer({ outcome: 'conflict', record: primaryRecord(20_000), revision: 3 });
    d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: 4 });
    d.fire(PROMOTE_TIMER);
    // Learning until its first lease read shows a first start (no history in the record).
    expect(views()).toEqual([`protected/1/${PRIMARY}/${BACKUP} (learning)`, `protected/1/${PRIMARY}/${BACKUP}`, `suspect/1/${PRIMARY}/${BACKUP}`, `failingOver/1/${PRIMARY}/${BACKUP}`, `promoting/2/${PRIMARY}/${BACKUP}`, `promoting/2/${BACKUP}/`]);
  });

  it('waits a whole number of microseconds, never less than the expiry, when the expiry in milliseconds is not exact in binary', () => {
    const d = silentAfter([10_000, 20_000]);
    // 64.005 ms × 1000 is 64004.99999999999 in floating point.
    d.answer({ outcome: 'conflict', record: primaryRecord(34_005), revision: 3 });
    const effects = d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: 4 });
    expect(timers(effects).get(PROMOTE_TIMER)).toBe(64_005 + SKEW_US);
  });

  it('promotes once: the promotion timer firing again, or outside a take-over, promotes nothing (found by fuzzing: it threw)', () => {
    const d = granted([10_000]);
    const first = d.fire(PROMOTE_TIMER);
    expect(allRoleChanges(first)).toHaveLength(1);
    d.armed.set(PROMOTE_TIMER, d.nowUs);
    const again = d.fire(PROMOTE_TIMER);
    expect(allRoleChanges(again)).toEqual([]);
    expect(d.core.primaryHost).toBe(BACKUP);
    expect(d.core.stats.staleTimers).toBe(1);
    d.handle(heartbeatInput(BACKUP, 'primary', 2), d.nowUs + 1_000);
    expect(d.core.state).toBe('unprotected');
    d.armed.set(PROMOTE_TIMER, d.nowUs);
    expect(allRoleChanges(d.fire(PROMOTE_TIMER))).toEqual([]);
    expect(d.core.stats.staleTimers).toBe(2);
  });

  it('promotes at once when the old lease had already expired', () => {
    const d = silentAfter([]);
    const effects = d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: 2 }, 40_000);
    expect(timers(effects).get(PROMOTE_TIMER)).toBe(40_000);
  });

  it("completes the failover at the promoted host's first heartbeat with the new term", () => {
    const d = granted([10_000]);
    d.fire(PROMOTE_TIMER);
    // Still restoring: it reports as the backup of the old term.
    d.handle(heartbeatInput(BACKUP, 'backup', 1), 45_000);
    expect(d.core.state).toBe('promoting');
    expect(d.core.stats.failovers).toBe(0);
    d.handle(heartbeatInput(BACKUP, 'primary', 2), 52_000);
    expect(d.core.state).toBe('unprotected');
    expect(d.core.stats).toMatchObject({ failovers: 1, promotedAtUs: [52_000], failoverDurationsUs: [52_000 - 10_000] });
    d.handle(heartbeatInput(BACKUP, 'primary', 2), 62_000);
    expect(d.core.stats).toMatchObject({ failovers: 1, promotedAtUs: [52_000] });
  });

  it("measures the failover from the old primary's last heartbeat, not from an earlier false alarm", () => {
    const d = silentAfter([10_000]);
    d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    // A false alarm: the primary reports in again and keeps going until 100 ms.
    for (let t = 50_000; t <= 100_000; t += INTERVAL_US) d.handle(heartbeatInput(PRIMARY, 'primary', 1), t);
    expect(d.core.state).toBe('protected');
    d.fire(lateTimer(PRIMARY));
    d.fire(silentTimer(PRIMARY));
    d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: 2 });
    d.fire(PROMOTE_TIMER);
    d.handle(heartbeatInput(BACKUP, 'primary', 2), 140_000);
    expect(d.core.stats.failoverDurationsUs).toEqual([140_000 - 100_000]);
  });

  it('counts a primary heartbeat from an older term, and acts on none: once another host is primary, it is a spare', () => {
    const d = granted([10_000]);
    const effects = d.handle(heartbeatInput(PRIMARY, 'primary', 1), 41_000);
    expect(effects).toEqual([]);
    expect(d.core.stats.staleHeartbeats).toBe(1);
    expect(d.core.state).toBe('promoting');
    d.fire(PROMOTE_TIMER);
    d.handle(heartbeatInput(BACKUP, 'primary', 2), 52_000);
    // After the promotion the fenced primary is up: it takes nothing back, and serves as a spare (its agent joins
    // once deposed). The VM, unprotected, is re-protected onto it.
    const effects2 = d.handle(heartbeatInput(PRIMARY, 'primary', 1), 53_000);
    expect(leaseOps(effects2).filter((e) => e.op.type === 'cas' && e.op.record.primaryHost === PRIMARY)).toEqual([]);
    expect(d.core.stats.staleHeartbeats).toBe(2);
    expect(d.core.primaryHost).toBe(BACKUP);
    expect(d.core.state).toBe('reprotecting');
    expect(allRoleChanges(d.settleMemberships())).toMatchObject([{ host: PRIMARY, role: 'backup', peerHost: BACKUP }, { host: BACKUP, role: 'primary', peerHost: PRIMARY }]);
  });
});

describe('FailoverCore: backup silence', () => {
  it('leaves the VM unprotected and, once the lease names no backup, tells the primary it has no peer', () => {
    const d = started();
    d.fire(lateTimer(BACKUP));
    const effects = d.fire(silentTimer(BACKUP));
    expect(d.nowUs).toBe(SILENT_AFTER_US);
    expect(d.core.state).toBe('unprotected');
    // Durable first: the primary commits alone only after the store no longer names the backup.
    expect(allRoleChanges(effects)).toEqual([]);
    expect(leaseOps(effects).map((e) => e.op)).toEqual([{ type: 'cas', vmId: VM, expectedRevision: 1, record: { ...primaryRecord(0), backupHost: '' } }]);
    const told = d.grantMembership();
    expect(allRoleChanges(told)).toEqual([{ type: 'roleChange', vmId: VM, term: 1, host: PRIMARY, role: 'primary', peerHost: '', seq: 1, committedEpoch: expect.any(Number), joinSeq: 0 }]);
    expect(sentSubjects(told)).toEqual([S.control(PRIMARY)]);
  });

  it('says, once a silence and counted, that the primary is silent while no backup is complete, and promotes nothing', () => {
    const d = started();
    d.fire(silentTimer(BACKUP));
    d.grantMembership();
    expect(d.core.state).toBe('unprotected');
    const heardUs = d.nowUs;
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), heardUs);
    const first = d.fire(silentTimer(PRIMARY));
    expect(first).toContainEqual(expect.objectContaining({ kind: 'log', level: 'error', event: 'failover.primary_silent_unprotected', fields: expect.objectContaining({ primary: PRIMARY, state: 'unprotected' }) }));
    expect(leaseOps(first)).toEqual([]);
    expect(d.core.state).toBe('unprotected');
    expect(d.core.stats.primarySilencesUnprotected).toBe(1);
    // A late firing of the same silence says nothing more; a new silence, after the primary is heard, is said again.
    expect(d.handle(timer(silentTimer(PRIMARY)))).toEqual([]);
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), d.nowUs + 1_000);
    d.fire(silentTimer(PRIMARY));
    expect(d.core.stats.primarySilencesUnprotected).toBe(2);
  });

  it('asks a backup it gave up as silent to join again once it reports in, as it would a spare: silent was only slow', () => {
    const d = started();
    d.fire(silentTimer(BACKUP));
    d.grantMembership();
    // No spare reports; the old backup does, still holding its old image and calling it complete.
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 0, true), d.nowUs + 1_000);
    expect(d.core.state).toBe('reprotecting');
    expect(allRoleChanges(d.grantMembership())).toMatchObject([
      { host: BACKUP, role: 'backup', peerHost: PRIMARY },
      { host: PRIMARY, role: 'primary', peerHost: BACKUP },
    ]);
  });

  it("gives the backup up when its supervisor restarted, however fast: its guest's image started over though it reports a complete one", () => {
    const d = started();
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 40, true), 20_000);
    // Back within one interval, as a new process: an empty image (epoch 0) that calls itself complete.
    const effects = d.handle(heartbeatInput(BACKUP, 'backup', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 30_000), 30_000);
    expect(d.core.stats.supervisorRestarts).toBe(1);
    expect(effects).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.supervisor_restarted' }));
    // Given up: never promoted with that image, nor taken for a synced backup. It reports in, so it is asked to
    // join again, from a base epoch.
    expect(d.core.state).toBe('reprotecting');
    d.grantMembership();
    expect(allRoleChanges(d.grantMembership())).toMatchObject([
      { host: BACKUP, role: 'backup', peerHost: PRIMARY },
      { host: PRIMARY, role: 'primary', peerHost: BACKUP },
    ]);
  });

  it("takes over for the backup when the primary's supervisor restarted, however fast: its VM started over empty", () => {
    const d = started();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 2, true), 10_000);
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 2, true), 10_000);
    // Back before its silence was noticed (found by vopr with this service cut off): it reports as primary of term 1.
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 9), 20_000);
    expect(d.core.stats.supervisorRestarts).toBe(1);
    expect(d.core.state).not.toBe('protected');
    expect(d.pendingCas.record).toMatchObject({ primaryHost: BACKUP, term: 2 });
    // Its renewal got in first: the next heartbeat of the restarted host asks again.
    d.answer({ outcome: 'conflict', record: primaryRecord(20_000), revision: 3 });
    if (d.pending === null) d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 9), 30_000);
    expect(d.pendingCas.record).toMatchObject({ primaryHost: BACKUP, term: 2 });
  });

  it("measures such a failover from the last heartbeat of the host that ran the VM, not from its restarted supervisor's (vopr seed 61585)", () => {
    const d = started();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 2, true), 10_000);
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 2, true), 10_000);
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 9), 20_000);
    d.answer({ outcome: 'conflict', record: primaryRecord(20_000), revision: 3 });
    // The restarted host keeps beating; each heartbeat asks for the take-over again until one is made.
    for (let t = 30_000; d.pending === null && t <= 60_000; t += 10_000) d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 9), t);
    d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: 4 });
    d.fire(PROMOTE_TIMER);
    d.handle(heartbeatInput(BACKUP, 'primary', 2), 90_000);
    expect(d.core.stats).toMatchObject({ failovers: 1, failoverDurationsUs: [90_000 - 10_000] });
  });

  /** A primary that committed 40 epochs, whose backup fell silent, came back and is asked to join again: the role changes of that join. */
  const rejoining = () => {
    const d = started();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 40), 10_000);
    d.fire(silentTimer(BACKUP));
    d.grantMembership();
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 0, true), d.nowUs + 1_000);
    return { d, changes: allRoleChanges(d.grantMembership()) };
  };

  it("tells the primary of a peer change what it committed, as a promotion does: a host that came back as a backup at creation takes it for one, and refuses it (vopr seed 1830)", () => {
    expect(rejoining().changes).toMatchObject([
      { host: BACKUP, role: 'backup', peerHost: PRIMARY, committedEpoch: 0 },
      { host: PRIMARY, role: 'primary', peerHost: BACKUP, committedEpoch: 40 },
    ]);
  });

  it('takes over for no backup when the primary started over while its backup was still joining: the join then copies the VM created anew (vopr seed 1152)', () => {
    // The backup joins again, from a base epoch; until it reports that join synced, the primary's host holds the only image.
    const { d, changes } = rejoining();
    const join = changes.find((c) => c.host === BACKUP)!;
    expect(d.core.state).toBe('reprotecting');
    // The primary's host starts over empty, before the join completes: no image of the VM is left.
    const restart = d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), d.nowUs + 1_000);
    expect(restart).toContainEqual(expect.objectContaining({ kind: 'log', level: 'error', event: 'failover.restart_without_image' }));
    expect(d.core.stats.restartsWithoutImage).toBe(1);
    // The backup completes its join, with the restarted host's new VM: protected again, but no take-over for it,
    // whatever the restarted primary's heartbeats say.
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 3, true, join.seq), d.nowUs + 1_000);
    expect(d.core.state).toBe('protected');
    const later = [d.handle(heartbeatInput(PRIMARY, 'primary', 1, 3, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), d.nowUs + 1_000), d.handle(heartbeatInput(PRIMARY, 'primary', 1, 4, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), d.nowUs + 10_000)].flat();
    expect(leaseOps(later).filter((e) => e.op.type === 'cas' && e.op.record.primaryHost === BACKUP)).toEqual([]);
    expect(d.core.state).toBe('protected');
    expect(d.core.stats.failovers).toBe(0);
  });

  it('names no primary to a host that started over as a backup, whatever membership change comes: it would promote an image of another VM (vopr seed 64806)', () => {
    const { d, changes } = rejoining();
    const join = changes.find((c) => c.host === BACKUP)!;
    // The primary's host starts over as the VM's first backup (as at creation): it holds no VM to be primary of.
    d.handle(heartbeatInput(PRIMARY, 'backup', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), d.nowUs + 1_000);
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 0, true, join.seq), d.nowUs + 1_000);
    // It applies epochs of some VM meanwhile; then the joining backup is dropped, and the membership written.
    d.handle(heartbeatInput(PRIMARY, 'backup', 1, 32, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), d.nowUs + 1_000);
    d.fire(silentTimer(BACKUP));
    const dropped = d.settleMemberships();
    expect(roleChangesTo(dropped, PRIMARY)).toEqual([]);
    expect(dropped).toContainEqual(expect.objectContaining({ kind: 'log', level: 'error', event: 'failover.primary_not_running' }));
    expect(d.core.stats.primaryRoleChangesWithheld).toBe(1);
    // Nor does it join a spare to it: the join would wait for a base that never comes.
    const spareHeard = [d.handle(heartbeatInput(SPARE, 'spare', 1), d.nowUs + 1_000), d.settleMemberships()].flat();
    expect(allRoleChanges(spareHeard)).toEqual([]);
    expect(d.core.state).toBe('unprotected');
  });

  it('takes over for no one when such a primary then falls silent: its backup holds the VM created anew (vopr seed 20529)', () => {
    const { d, changes } = rejoining();
    const join = changes.find((c) => c.host === BACKUP)!;
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), d.nowUs + 1_000);
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 3, true, join.seq), d.nowUs + 1_000);
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 3, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), d.nowUs + 1_000);
    expect(d.core.state).toBe('protected');
    // Its heartbeats lost on the bus: silent, with a backup that reports a complete image of epoch 3.
    d.fire(lateTimer(PRIMARY));
    const effects = d.fire(silentTimer(PRIMARY));
    expect(leaseOps(effects).filter((e) => e.op.type === 'cas' && e.op.record.primaryHost === BACKUP)).toEqual([]);
    expect(effects).toContainEqual(expect.objectContaining({ kind: 'log', level: 'error', event: 'failover.no_image_to_promote' }));
    expect(d.core.stats.silencesWithoutImage).toBe(1);
    expect(d.core.state).not.toBe('failingOver');
    expect(d.core.stats.failovers).toBe(0);
  });

  /** `rejoining()`, with the primary's earlier process heard taking its join (its heartbeat shows the role change's seq). */
  const joinTakenByPrimary = () => {
    const { d, changes } = rejoining();
    const join = changes.find((c) => c.host === BACKUP)!;
    const primaryChange = changes.find((c) => c.host === PRIMARY)!;
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 41, true, primaryChange.seq), d.nowUs + 1_000);
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 0, false, join.seq), d.nowUs + 1_000);
    return { d, join };
  };
  const RESTARTED = FIRST_INCARNATION + 50_000;

  it("takes over for a backup whose join completed unseen before the primary started over: its reports under the join tell, once they hold what was committed (vopr seed 109309)", () => {
    const { d, join } = joinTakenByPrimary();
    // The primary's host starts over; this service has not heard the backup sync (it was cut off, or the report is late).
    const restart = d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, RESTARTED), d.nowUs + 1_000);
    expect(restart).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.primary_restarted', fields: expect.objectContaining({ backupImage: 'untold' }) }));
    expect(d.core.stats.restartsWithoutImage).toBe(0);
    expect(d.core.state).toBe('reprotecting');
    // The backup reports the join synced at the epoch the earlier process had committed: its image is the VM.
    const synced = d.handle(heartbeatInput(BACKUP, 'backup', 1, 41, true, join.seq), d.nowUs + 1_000);
    expect(synced).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.restart_left_image' }));
    expect(d.pendingCas.record).toMatchObject({ primaryHost: BACKUP, term: 2 });
    d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: 9 });
    const promoted = d.fire(PROMOTE_TIMER);
    expect(roleChangesTo(promoted, BACKUP)).toMatchObject([{ role: 'primary', term: 2, committedEpoch: 41 }]);
    expect(d.core.stats.restartsWithoutImage).toBe(0);
  });

  it("holds the backup's report under the join to what the primary's earlier process committed, not to the epochs of the VM its new process made (vopr seed 134409)", () => {
    const { d, join } = joinTakenByPrimary();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, RESTARTED), d.nowUs + 1_000);
    // The new VM runs on, far past the epoch the old one had committed.
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 111, true, NONE_TAKEN, RESTARTED), d.nowUs + 1_000);
    const synced = d.handle(heartbeatInput(BACKUP, 'backup', 1, 41, true, join.seq), d.nowUs + 1_000);
    expect(synced).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.restart_left_image' }));
    expect(d.core.stats.syncedBehindCommitted).toBe(0);
  });

  it("counts the join taken by the primary's earlier process when the last of its heartbeats to arrive was an older one, reordered on the bus", () => {
    const { d } = joinTakenByPrimary();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 40, true, NONE_TAKEN), d.nowUs + 1_000);
    const restart = d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, RESTARTED), d.nowUs + 1_000);
    expect(restart).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.primary_restarted', fields: expect.objectContaining({ backupImage: 'untold' }) }));
    expect(d.core.stats.restartsWithoutImage).toBe(0);
  });

  it("keeps the backup's image untold when the primary starts over again before the backup reports: the process that took the join decides it", () => {
    const { d, join } = joinTakenByPrimary();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, RESTARTED), d.nowUs + 1_000);
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 2, true, NONE_TAKEN, RESTARTED), d.nowUs + 1_000);
    // Its second new process: the one before it never took the join, and what it committed is its own VM's.
    const again = d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, RESTARTED + 50_000), d.nowUs + 1_000);
    expect(again).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.primary_restarted', fields: expect.objectContaining({ backupImage: 'untold' }) }));
    expect(d.core.stats.restartsWithoutImage).toBe(0);
    // Still held to the first process's commits: synced at 3 is not the VM.
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 3, true, join.seq), d.nowUs + 1_000);
    expect(d.core.stats.syncedBehindCommitted).toBe(1);
    const synced = d.handle(heartbeatInput(BACKUP, 'backup', 1, 41, true, join.seq), d.nowUs + 1_000);
    expect(synced).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.restart_left_image' }));
    expect(d.pendingCas.record).toMatchObject({ primaryHost: BACKUP, term: 2 });
  });

  it("counts no join synced below what the restarted primary's earlier process committed, and finds the VM lost when that join is given up", () => {
    const { d, join } = joinTakenByPrimary();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, RESTARTED), d.nowUs + 1_000);
    // Synced at an epoch below 41: not the image output left from, whatever the restarted host's new VM reports.
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 3, true, NONE_TAKEN, RESTARTED), d.nowUs + 1_000);
    const behind = d.handle(heartbeatInput(BACKUP, 'backup', 1, 3, true, join.seq), d.nowUs + 1_000);
    expect(behind).not.toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.reprotected' }));
    expect(d.core.stats.syncedBehindCommitted).toBe(1);
    expect(d.core.state).toBe('reprotecting');
    expect(d.pending).toBeNull();
    // The join makes no progress: it is given up, and with it the last image the VM could have had.
    const stalled: Effect[] = [];
    for (let i = 0; i < 3 && d.core.state === 'reprotecting'; i++) stalled.push(...d.fire('failover.join-stall'));
    expect(stalled).toContainEqual(expect.objectContaining({ kind: 'log', level: 'error', event: 'failover.restart_without_image', fields: expect.objectContaining({ backupDropped: true }) }));
    expect(d.core.stats.restartsWithoutImage).toBe(1);
    expect(d.core.stats.failovers).toBe(0);
  });

  it("repeats no role change to a host's new process: the join it was meant for is the earlier process's", () => {
    const { d, changes } = rejoining();
    const primaryChange = changes.find((c) => c.host === PRIMARY)!;
    // The earlier process never showed the primary's join taken; its host starts over.
    const restart = d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, RESTARTED), d.nowUs + 1_000);
    expect(roleChangesTo(restart, PRIMARY)).toEqual([]);
    // The role change may have reached the new process: the join may copy the VM it made anew. No image is left.
    expect(restart).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.primary_restarted', fields: expect.objectContaining({ backupImage: 'none' }) }));
    expect(d.core.stats.restartsWithoutImage).toBe(1);
    const later = d.handle(heartbeatInput(PRIMARY, 'primary', 1, 1, true, NONE_TAKEN, RESTARTED), d.nowUs + 10_000);
    expect(roleChangesTo(later, PRIMARY).filter((c) => c.seq === primaryChange.seq)).toEqual([]);
  });

  it('promotes no backup that holds a just-created VM\'s image after the primary committed epochs: it gives it up (the VM has no promotable image)', () => {
    const d = started();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 40), 10_000);
    // A backup that calls itself complete at epoch 0 while the primary had committed 40: not the image that output
    // left from (a restarted supervisor whose new incarnation was never heard: its guest is a backup "as at creation").
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 0, true), 15_000);
    d.fire(lateTimer(PRIMARY));
    const effects = d.fire(silentTimer(PRIMARY));
    expect(leaseOps(effects).filter((e) => e.op.type === 'cas' && e.op.record.primaryHost === BACKUP)).toEqual([]);
    expect(effects).toContainEqual(expect.objectContaining({ kind: 'log', level: 'error', event: 'failover.backup_behind' }));
    expect(d.core.stats.backupsBehind).toBe(1);
    expect(d.core.state).not.toBe('failingOver');
    expect(d.core.stats.failovers).toBe(0);
  });

  it('knows from the lease what the primary committed when it never heard the primary (a restart after its death): no epoch-0 backup is promoted (vopr seed 1512)', () => {
    const d = new FailoverDriver();
    d.start(0, { ...primaryRecord(0), committedEpoch: 40 }, 1);
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 0, true), 15_000);
    const effects = d.fire(RECOVERED);
    expect(leaseOps(effects).filter((e) => e.op.type === 'cas' && e.op.record.primaryHost === BACKUP)).toEqual([]);
    // Not promoted: its image is a just-created VM's, and it is asked to join again from a base epoch.
    expect(d.core.state).toBe('reprotecting');
  });

  it('carries the committed epoch over into the record that takes the lease', () => {
    const d = new FailoverDriver();
    d.start(0, { ...primaryRecord(0), committedEpoch: 40 }, 1);
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 39, true), 15_000);
    const effects = d.fire(RECOVERED);
    expect(leaseOps(effects).map((e) => e.op)).toMatchObject([{ type: 'cas', record: { primaryHost: BACKUP, term: 2, committedEpoch: 40 } }]);
  });

  it('promotes a backup whose report lags the primary\'s by an epoch (heartbeats are not simultaneous)', () => {
    const d = started();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 40), 10_000);
    d.handle(heartbeatInput(BACKUP, 'backup', 1, 39, true), 15_000);
    d.fire(lateTimer(PRIMARY));
    const effects = d.fire(silentTimer(PRIMARY));
    expect(leaseOps(effects).map((e) => e.op)).toMatchObject([{ type: 'cas', record: { primaryHost: BACKUP, term: 2 } }]);
    expect(d.core.stats.backupsBehind).toBe(0);
  });

  it('takes a spare that reports as a synced backup for a spare: an image of no membership of its own, which the join replaces (vopr seed 102999)', () => {
    const d = started();
    d.fire(silentTimer(BACKUP));
    d.grantMembership();
    const effects = [...d.handle(heartbeatInput(SPARE, 'backup', 1, 0, true), d.nowUs + 1_000), ...d.settleMemberships()];
    expect(allRoleChanges(effects).map((c) => `${c.host}:${c.role}:${c.peerHost}`)).toEqual([`${SPARE}:backup:${PRIMARY}`, `${PRIMARY}:primary:${SPARE}`]);
    expect(d.core.state).toBe('reprotecting');
  });

  it('with no backup left, does not fail a silent primary over', () => {
    const d = started();
    d.fire(silentTimer(BACKUP));
    const effects = d.fire(silentTimer(PRIMARY));
    expect(leaseOps(effects)).toEqual([]);
    expect(allRoleChanges(effects)).toEqual([]);
    expect(d.core.state).toBe('unprotected');
  });
});

describe('FailoverCore: the backup recorded in the lease', () => {
  /** The backup fell silent: the core wants the lease to name no backup. */
  const dropping = (): FailoverDriver => {
    const d = started();
    d.fire(silentTimer(BACKUP));
    return d;
  };

  it("writes again at once, on the answer's revision and with the primary's newer renewal, when a renewal got in first", () => {
    const d = dropping();
    const renewed = primaryRecord(25_000);
    const effects = d.answer({ outcome: 'conflict', record: renewed, revision: 4 });
    expect(allRoleChanges(effects)).toEqual([]);
    expect(leaseOps(effects).map((e) => e.op)).toEqual([{ type: 'cas', vmId: VM, expectedRevision: 4, record: { ...renewed, backupHost: '' } }]);
    expect(allRoleChanges(d.grantMembership())).toMatchObject([{ host: PRIMARY, role: 'primary', peerHost: '' }]);
  });

  it('tries again one interval later while the store is out, and tells no one before it is written', () => {
    const d = dropping();
    const effects = d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    expect(leaseOps(effects)).toEqual([]);
    expect(allRoleChanges(effects)).toEqual([]);
    const retry = d.fire('failover.membership');
    expect(d.nowUs).toBe(SILENT_AFTER_US + INTERVAL_US);
    expect(leaseOps(retry).map((e) => e.op)).toMatchObject([{ type: 'cas', expectedRevision: 1, record: { backupHost: '' } }]);
    expect(allRoleChanges(d.grantMembership())).toMatchObject([{ host: PRIMARY, peerHost: '' }]);
  });

  it('gives the change up when the lease moved to another holder meanwhile', () => {
    const d = dropping();
    const effects = d.answer({ outcome: 'conflict', record: { primaryHost: SPARE, term: 3, expiresAtMs: 90, backupHost: '' }, revision: 9 });
    expect(leaseOps(effects)).toEqual([]);
    expect(allRoleChanges(effects)).toEqual([]);
    expect(d.core.stats.membershipAbandoned).toBe(1);
  });

  it('writes the newest change only: a spare that reports in while "no backup" is being written becomes the backup', () => {
    const d = dropping();
    d.handle(heartbeatInput(SPARE, 'spare', 1), d.nowUs + 1_000);
    // The first write lands, but is no longer what is wanted: nobody is told, and the spare's membership is written next.
    const effects = d.grantMembership();
    expect(allRoleChanges(effects)).toEqual([]);
    expect(leaseOps(effects).map((e) => e.op)).toMatchObject([{ type: 'cas', expectedRevision: 2, record: { backupHost: SPARE } }]);
    expect(allRoleChanges(d.grantMembership())).toMatchObject([
      { host: SPARE, role: 'backup', peerHost: PRIMARY },
      { host: PRIMARY, role: 'primary', peerHost: SPARE },
    ]);
  });

  it('writes the promoted host into the lease with no backup', () => {
    const d = silentAfter([10_000]);
    expect(d.pendingCas.record).toMatchObject({ primaryHost: BACKUP, term: 2, backupHost: '' });
  });
});

function sentSubjects(effects: readonly Effect[]): string[] {
  return effects.flatMap((e) => (e.kind === 'send' ? [e.subject] : []));
}

describe('FailoverCore: take-over outcomes it cannot see directly', () => {
  it('treats its own record, found after an unknown outcome, as a granted lease', () => {
    const d = silentAfter([10_000]);
    const attempt = d.pendingCas.record;
    d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    expect(d.core.state).toBe('suspect');
    // The write had gone through after all: the retry conflicts with exactly that record.
    d.fire(silentTimer(PRIMARY));
    const effects = d.answer({ outcome: 'conflict', record: attempt, revision: 2 });
    expect(d.core.state).toBe('promoting');
    expect(d.core.term).toBe(2);
    expect(timers(effects).has(PROMOTE_TIMER)).toBe(true);
  });

  it('remembers its last MAX_REMEMBERED_TAKE_ATTEMPTS attempts only: a record from an older one, found after a long outage, is not taken as its own', () => {
    /** One take-over attempt more than it remembers, each answered `unavailable` but the last (outstanding). */
    const outage = () => {
      const d = silentAfter([10_000]);
      const attempts = [d.pendingCas.record];
      for (let i = 0; i < MAX_REMEMBERED_TAKE_ATTEMPTS; i++) {
        d.answer({ outcome: 'unavailable', record: null, revision: 0 });
        d.fire(silentTimer(PRIMARY));
        attempts.push(d.pendingCas.record);
      }
      expect(new Set(attempts.map((r) => r.expiresAtMs)).size).toBe(MAX_REMEMBERED_TAKE_ATTEMPTS + 1); // each attempt its own record
      return { d, attempts };
    };
    const forgotten = outage();
    forgotten.d.answer({ outcome: 'conflict', record: forgotten.attempts[0]!, revision: 9 });
    expect(forgotten.d.core.state).toBe('suspect'); // someone else's, as far as it knows: it waits that lease out
    const remembered = outage();
    remembered.d.answer({ outcome: 'conflict', record: remembered.attempts[1]!, revision: 9 });
    expect(remembered.d.core.state).toBe('promoting');
  });

  it('creates the record again when a conflict says it is gone', () => {
    const d = silentAfter([10_000]);
    d.answer({ outcome: 'conflict', record: null, revision: 0 });
    d.fire(silentTimer(PRIMARY));
    expect(d.pendingCas.expectedRevision).toBe(0);
  });
});
