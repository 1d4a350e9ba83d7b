import { describe, expect, it } from 'vitest';
import type { Effect } from '../../../lib/runtime/types.js';
import { allRoleChanges, BACKUP, FAILOVER_OPTIONS, FailoverDriver, heartbeatInput, INTERVAL_US, primaryRecord, PRIMARY, SPARE, silentTimer } from './support.js';

const STALL_US = 200_000;
const JOIN_STALL_TIMER = 'failover.join-stall';
/** The seq of the spare's join (the first role change sent): its heartbeats show it taken. */
const JOIN_SEQ = 1;

type Log = Extract<Effect, { kind: 'log' }>;
const logsOf = (effects: readonly Effect[], event: string): Log[] => effects.filter((e): e is Log => e.kind === 'log' && e.event === event);
const stallLogs = (effects: readonly Effect[]): Log[] => logsOf(effects, 'failover.join_stalled');

/** The backup is lost and the spare, the only other host, is told to join: re-protecting from `d.nowUs`. */
function joining(): FailoverDriver {
  const d = new FailoverDriver({ ...FAILOVER_OPTIONS, joinStallUs: STALL_US });
  d.start(0, primaryRecord(0), 1);
  d.handle(heartbeatInput(SPARE, 'spare', 1), 1_000);
  d.handle(heartbeatInput(PRIMARY, 'primary', 1), 2_000);
  d.fire(silentTimer(BACKUP));
  d.settleMemberships();
  expect(d.core.state).toBe('reprotecting');
  expect(d.armed.get(JOIN_STALL_TIMER)).toBe(d.nowUs + STALL_US);
  return d;
}

describe('FailoverCore: a join that makes no progress is started again', () => {
  it('gives up a join never taken after joinStallUs and has the spare join again, from a new role change', () => {
    const d = joining();
    const startedUs = d.nowUs;
    // The spare keeps beating, but as a spare that took nothing: its join was lost on the way, and so were the repeats.
    d.handle(heartbeatInput(SPARE, 'spare', 1), startedUs + STALL_US / 2);
    const effects = [...d.fire(JOIN_STALL_TIMER), ...d.settleMemberships()];
    expect(d.core.stats.joinsStalled).toBe(1);
    expect(stallLogs(effects)).toMatchObject([{ level: 'warn', fields: { backup: SPARE, primary: PRIMARY, joinTaken: false, appliedSinceJoin: -1, stalledForUs: STALL_US } }]);
    // The only spare joins again under a newer role change, and the primary is told to replicate to it from a new base.
    expect(d.core.state).toBe('reprotecting');
    expect(d.core.backupHost).toBe(SPARE);
    const joins = allRoleChanges(effects).filter((c) => c.host === SPARE && c.role === 'backup');
    expect(joins).toHaveLength(1);
    expect(joins[0]!.seq).toBeGreaterThan(JOIN_SEQ);
    expect(allRoleChanges(effects).filter((c) => c.host === PRIMARY).at(-1)).toMatchObject({ role: 'primary', peerHost: SPARE });
    expect(d.core.stats.reprotections).toBe(2);
    expect(d.armed.get(JOIN_STALL_TIMER)).toBe(d.nowUs + STALL_US);
  });

  it('lets a join run past joinStallUs while its backup applies epochs: each one pushes the bound back', () => {
    const d = joining();
    const startedUs = d.nowUs;
    const beats = [1, 2, 3, 4, 5].flatMap((i) => d.handle(heartbeatInput(SPARE, 'backup', 1, i, false, JOIN_SEQ), startedUs + (i * STALL_US) / 2));
    expect(logsOf(beats, 'failover.join_taken')).toMatchObject([{ level: 'info', fields: { backup: SPARE, afterUs: STALL_US / 2 } }]);
    // The timer set at the join fires: progress since moved the bound, and it is set again for the last one.
    const effects = d.fire(JOIN_STALL_TIMER);
    expect(stallLogs(effects)).toEqual([]);
    expect(d.core.stats.joinsStalled).toBe(0);
    expect(d.armed.get(JOIN_STALL_TIMER)).toBe(startedUs + (5 * STALL_US) / 2 + STALL_US);
    const synced = d.handle(heartbeatInput(SPARE, 'backup', 1, 6, true, JOIN_SEQ), d.nowUs + INTERVAL_US);
    expect(d.core.state).toBe('protected');
    // Its longest wait for progress: half a bound, between any two of its beats (the synced one came an interval after the last).
    expect(logsOf(synced, 'failover.reprotected')).toMatchObject([{ fields: { primary: PRIMARY, backup: SPARE, durationUs: d.nowUs - startedUs, quietMaxUs: STALL_US / 2 } }]);
    expect(d.armed.has(JOIN_STALL_TIMER), 'the bound ends with the re-protection').toBe(false);
  });

  it('counts the bound from the last epoch applied: a backup stuck at one epoch is given up joinStallUs after it', () => {
    const d = joining();
    const startedUs = d.nowUs;
    d.handle(heartbeatInput(SPARE, 'backup', 1, 7, false, JOIN_SEQ), startedUs + 50_000);
    // Beats that repeat epoch 7 are no progress.
    d.handle(heartbeatInput(SPARE, 'backup', 1, 7, false, JOIN_SEQ), startedUs + 150_000);
    d.fire(JOIN_STALL_TIMER);
    expect(d.core.stats.joinsStalled).toBe(0);
    d.handle(heartbeatInput(SPARE, 'backup', 1, 7, false, JOIN_SEQ), startedUs + 240_000);
    const effects = d.fire(JOIN_STALL_TIMER);
    expect(d.nowUs).toBe(startedUs + 50_000 + STALL_US);
    expect(d.core.stats.joinsStalled).toBe(1);
    expect(stallLogs(effects)).toMatchObject([{ fields: { joinTaken: true, backupEpoch: 7, appliedSinceJoin: 7, stalledForUs: STALL_US } }]);
  });

  it('lets a base epoch run past joinStallUs while its chunks arrive: each rise of the chunks staged pushes the bound back', () => {
    const d = joining();
    const startedUs = d.nowUs;
    // A backup at epoch 0 (its base not applied yet) whose guest has chunks of it coming in; it counted 90 before this join.
    for (let i = 1; i <= 5; i++) d.handle(heartbeatInput(SPARE, 'backup', 1, 0, false, JOIN_SEQ, undefined, 90 + 10 * i), startedUs + (i * STALL_US) / 2);
    d.fire(JOIN_STALL_TIMER);
    expect(d.core.stats.joinsStalled).toBe(0);
    expect(d.core.stats.joinQuietMaxUs, 'the longest wait for progress: each beat came half a bound after the last').toBe(STALL_US / 2);
    expect(d.armed.get(JOIN_STALL_TIMER)).toBe(startedUs + (5 * STALL_US) / 2 + STALL_US);
    // Then the chunks stop, with the base still not applied: the bound runs from the last rise.
    d.handle(heartbeatInput(SPARE, 'backup', 1, 0, false, JOIN_SEQ, undefined, 140), d.nowUs + INTERVAL_US);
    const effects = d.fire(JOIN_STALL_TIMER);
    expect(d.nowUs).toBe(startedUs + (5 * STALL_US) / 2 + STALL_US);
    expect(d.core.stats.joinsStalled).toBe(1);
    expect(stallLogs(effects)).toMatchObject([{ fields: { joinTaken: true, backupEpoch: 0, backupChunksStaged: 140, appliedSinceJoin: 0 } }]);
  });

  it('does not count chunks staged before the join was taken as progress', () => {
    const d = joining();
    const startedUs = d.nowUs;
    // The spare's guest staged chunks as a backup of an older membership, and they still rise in its reports.
    for (let i = 1; i <= 3; i++) d.handle(heartbeatInput(SPARE, 'backup', 1, 0, false, JOIN_SEQ - 1, undefined, 100 * i), startedUs + i * 50_000);
    d.fire(JOIN_STALL_TIMER);
    expect(d.core.stats.joinsStalled).toBe(1);
  });

  it('does not count a heartbeat from before the join was taken as progress', () => {
    const d = joining();
    const startedUs = d.nowUs;
    // A complete image of an older membership, reported with every epoch rising: not this join's progress.
    for (let i = 1; i <= 3; i++) d.handle(heartbeatInput(SPARE, 'backup', 1, 40 + i, true, JOIN_SEQ - 1), startedUs + i * 50_000);
    d.fire(JOIN_STALL_TIMER);
    expect(d.core.stats.joinsStalled).toBe(1);
  });

  it('defers a bound that fires over an interval late (this service did not run): the heartbeats of that time may be waiting', () => {
    const d = joining();
    const dueUs = d.armed.get(JOIN_STALL_TIMER)!;
    d.handle({ kind: 'timer', name: JOIN_STALL_TIMER }, dueUs + 5 * INTERVAL_US);
    expect(d.core.stats.joinsStalled).toBe(0);
    expect(d.core.stats.lateDeadlinesDeferred).toBe(1);
    // The backup's queued heartbeat shows the join taken: progress, so the next look finds none stalled.
    d.handle(heartbeatInput(SPARE, 'backup', 1, 1, false, JOIN_SEQ), d.nowUs + 1);
    d.fire(JOIN_STALL_TIMER);
    expect(d.core.stats.joinsStalled).toBe(0);
    expect(d.armed.get(JOIN_STALL_TIMER)).toBe(dueUs + 5 * INTERVAL_US + 1 + STALL_US);
  });

  it('runs the bound again from a reconnect: what it could not see while cut off is no stall', () => {
    const d = joining();
    const startedUs = d.nowUs;
    d.handle({ kind: 'connection', connected: false }, startedUs + 10_000);
    d.fire(JOIN_STALL_TIMER);
    expect(d.core.stats.joinsStalled).toBe(0);
    expect(d.core.stats.deadlinesDeferredCutOff).toBeGreaterThan(0);
    const backUs = startedUs + STALL_US + 3 * INTERVAL_US;
    d.handle({ kind: 'connection', connected: true }, backUs);
    d.fire(JOIN_STALL_TIMER);
    expect(d.core.stats.joinsStalled).toBe(0);
    d.fire(JOIN_STALL_TIMER);
    expect(d.nowUs).toBe(backUs + STALL_US);
    expect(d.core.stats.joinsStalled).toBe(1);
  });
});
