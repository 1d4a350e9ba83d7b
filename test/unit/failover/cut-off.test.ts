/**
 * The failover service's own connection to the bus: while it is cut off it
 * hears no heartbeat from anyone, which says nothing about the hosts. Found
 * by the soak: every restart of the nats-server made it give up backups that
 * were fine, and their re-protections piled up.
 */
import { describe, expect, it } from 'vitest';
import type { Effect, Input } from '../../../lib/runtime/types.js';
import { BACKUP, FailoverDriver, FAILOVER_OPTIONS, FIRST_INCARNATION, heartbeatInput, INTERVAL_US, lateTimer, MISS_COUNT, NONE_TAKEN, PRIMARY, silentTimer, SPARE } from './support.js';

const down: Input = { kind: 'connection', connected: false };
const up: Input = { kind: 'connection', connected: true };
const SILENT_AFTER_US = MISS_COUNT * INTERVAL_US;

/** Protected, every host heard at 1 ms. */
function protectedAt1ms(d = new FailoverDriver()): FailoverDriver {
  d.start(0);
  for (const [host, role] of [[PRIMARY, 'primary'], [BACKUP, 'backup'], [SPARE, 'spare']] as const) d.handle(heartbeatInput(host, role, 1), 1_000);
  return d;
}

describe('FailoverCore: cut off from the bus', () => {
  it('declares nobody silent while cut off, however long, and keeps the backup and the primary', () => {
    const d = protectedAt1ms();
    d.handle(down, 2_000);
    for (let i = 0; i < 20; i++) {
      d.fire(silentTimer(BACKUP));
      d.fire(silentTimer(PRIMARY));
    }
    expect(d.core.state).toBe('protected');
    expect(d.core.backupHost).toBe(BACKUP);
    expect(d.core.stats.deadlinesDeferredCutOff).toBeGreaterThanOrEqual(40);
    expect(d.pending).toBeNull(); // no take-over, no membership change asked of the lease
  });

  it('gives every host the reconnect grace once it is back, then judges silence as before', () => {
    const d = protectedAt1ms();
    d.handle(down, 2_000);
    d.fire(silentTimer(BACKUP));
    const backAtUs = d.nowUs + 50 * INTERVAL_US;
    d.handle(up, backAtUs);
    const graceUs = 2 * SILENT_AFTER_US; // the default: two miss-count periods
    expect(d.armed.get(silentTimer(BACKUP))).toBe(backAtUs + graceUs);
    expect(d.armed.get(silentTimer(PRIMARY))).toBe(backAtUs + graceUs);
    expect(d.armed.get(lateTimer(PRIMARY))).toBe(backAtUs + graceUs);
    // The primary reports again; the backup never does: it is given up after the grace, as any silent backup.
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), backAtUs + INTERVAL_US);
    d.fire(silentTimer(BACKUP));
    expect(d.core.state).not.toBe('protected');
    expect(d.core.backupHost).not.toBe(BACKUP);
  });

  it('keeps a backup that reports within the grace', () => {
    const d = protectedAt1ms(new FailoverDriver({ ...FAILOVER_OPTIONS, reconnectGraceUs: 5 * SILENT_AFTER_US }));
    d.handle(down, 2_000);
    const backAtUs = 200_000;
    d.handle(up, backAtUs);
    expect(d.armed.get(silentTimer(BACKUP))).toBe(backAtUs + 5 * SILENT_AFTER_US);
    d.handle(heartbeatInput(BACKUP, 'backup', 1), backAtUs + 4 * SILENT_AFTER_US);
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), backAtUs + 4 * SILENT_AFTER_US);
    expect(d.core.state).toBe('protected');
    expect(d.core.backupHost).toBe(BACKUP);
  });

  it('a host already silent before the cut-off stays silent: the grace is not a second life', () => {
    const d = protectedAt1ms();
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), 20_000);
    d.fire(silentTimer(SPARE)); // the spare died before the outage
    d.handle(down, 40_000);
    d.handle(up, 100_000);
    expect(d.armed.has(silentTimer(SPARE))).toBe(false); // fired before the cut-off, and not armed again
    expect(d.armed.has(silentTimer(BACKUP))).toBe(true);
  });

  /** Cut off from 2 to 200 ms; back, the primary is heard once and falls silent, the backup not at all: the first check of the silence. */
  function primarySilentAfterReconnect(): { d: FailoverDriver; waited: Effect[] } {
    const d = protectedAt1ms();
    d.handle(down, 2_000);
    d.handle(up, 200_000);
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), 200_000 + INTERVAL_US);
    return { d, waited: d.fire(silentTimer(PRIMARY)) };
  }

  it('takes over for no backup unheard since it came back: the backup may have crashed unseen (vopr seed 74233)', () => {
    // A lossy bus hides the primary; the backup has been down since the cut-off.
    const { d, waited } = primarySilentAfterReconnect();
    expect(d.pending).toBeNull(); // no lease taken for it
    expect(d.core.stats.takeOversWaitingForBackup).toBe(1);
    expect(waited).toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.take_over_waits_for_backup' }));
    expect(d.armed.get(silentTimer(PRIMARY))).toBe(d.nowUs + INTERVAL_US);
    // Still silent an interval later: it waits again, and says so only once.
    expect(d.fire(silentTimer(PRIMARY)).filter((e) => e.kind === 'log' && e.event === 'failover.take_over_waits_for_backup')).toEqual([]);
    expect(d.core.stats.takeOversWaitingForBackup).toBe(2);
    // The primary is heard first: it lives. The backup's grace then runs out, and it is given up, not promoted.
    d.handle(heartbeatInput(PRIMARY, 'primary', 1), d.nowUs + 1_000);
    d.fire(silentTimer(BACKUP));
    expect(d.core.term).toBe(1);
    expect(d.core.primaryHost).toBe(PRIMARY);
    expect(d.core.backupHost).not.toBe(BACKUP);
  });

  it('takes over once the backup is heard after it came back, an interval after the primary fell silent', () => {
    const { d } = primarySilentAfterReconnect();
    expect(d.pending).toBeNull();
    d.handle(heartbeatInput(BACKUP, 'backup', 1), d.nowUs + 1_000);
    d.fire(silentTimer(PRIMARY));
    expect(d.core.state).toBe('failingOver');
    expect(d.pendingCas.record).toMatchObject({ primaryHost: BACKUP, term: 2 });
  });

  it("keeps a backup unheard past the grace when the primary was heard started over: its image is the VM's only one, taken over for once heard (vopr seed 982)", () => {
    const d = protectedAt1ms();
    d.handle(down, 2_000);
    const backAtUs = 200_000;
    d.handle(up, backAtUs);
    // Back, the primary's host is heard from a new process (it crashed and came back as at creation); the backup's heartbeats are lost.
    d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), backAtUs + INTERVAL_US);
    const graceEndUs = d.armed.get(silentTimer(BACKUP))!;
    expect(graceEndUs).toBe(backAtUs + 2 * SILENT_AFTER_US);
    for (let t = backAtUs + 2 * INTERVAL_US; t < graceEndUs; t += INTERVAL_US) d.handle(heartbeatInput(PRIMARY, 'primary', 1, 0, true, NONE_TAKEN, FIRST_INCARNATION + 50_000), t);
    const silence = d.fire(silentTimer(BACKUP));
    expect(d.nowUs).toBe(graceEndUs);
    expect(silence).not.toContainEqual(expect.objectContaining({ kind: 'log', event: 'failover.backup_dropped' }));
    expect([d.core.backupHost, d.core.stats.restartsWithoutImage]).toEqual([BACKUP, 0]);
    // Heard at last: the take-over for it goes on.
    d.handle(heartbeatInput(BACKUP, 'backup', 1), d.nowUs + 1_000);
    d.fire(silentTimer(PRIMARY));
    expect(d.pendingCas.record).toMatchObject({ primaryHost: BACKUP, term: 2 });
  });

  it('reconnect reports without a cut-off before them change nothing', () => {
    const d = protectedAt1ms();
    const before = new Map(d.armed);
    expect(d.handle(up, 3_000)).toEqual([]);
    expect(d.armed).toEqual(before);
  });
});
