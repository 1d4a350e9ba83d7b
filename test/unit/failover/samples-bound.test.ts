/**
 * The failover service's samples (each failover's and re-protection's
 * duration and time) go whole in every report: it keeps the first
 * MAX_FAILOVER_SAMPLES of each and counts the rest, so a VM that fails over
 * for months does not grow them. The counts (`failovers`, `reprotections`)
 * stay exact.
 */
import { describe, expect, it } from 'vitest';
import { MAX_FAILOVER_SAMPLES } from '../../../services/failover/core.js';
import { allRoleChanges, BACKUP, FailoverDriver, heartbeatInput, lateTimer, NONE_TAKEN, primaryRecord, PRIMARY, PROMOTE_TIMER, silentTimer, SPARE } from './support.js';

/** Drives one core through `cycles` failovers, each followed by a re-protection onto the host that failed before. */
function failOverRepeatedly(cycles: number): FailoverDriver {
  const d = new FailoverDriver();
  d.start(0, primaryRecord(0), 1);
  d.handle(heartbeatInput(SPARE, 'spare', 1), 1_000);
  d.handle(heartbeatInput(PRIMARY, 'primary', 1, 10, true), 2_000);
  d.handle(heartbeatInput(BACKUP, 'backup', 1, 10, true), 2_000);
  const incarnation = new Map<string, number>();
  const beat = (host: string, role: 'primary' | 'backup' | 'spare', term: number, synced: boolean, controlSeq = NONE_TAKEN) =>
    heartbeatInput(host, role, term, 100 * term, synced, controlSeq, incarnation.get(host) ?? 1);
  let [primary, backup, spare] = [PRIMARY, BACKUP, SPARE];
  for (let term = 2; term < 2 + cycles; term++) {
    const from = d.log.length;
    // The primary falls silent; the backup takes over at `term` and reports as primary.
    d.fire(lateTimer(primary));
    d.fire(silentTimer(primary));
    d.answer({ outcome: 'ok', record: d.pendingCas.record, revision: d.pendingCas.expectedRevision + 1 });
    d.fire(PROMOTE_TIMER);
    d.handle(beat(backup, 'primary', term, true), d.nowUs + 1_000);
    // The spare is asked to join, takes its join and reports a complete image.
    d.settleMemberships();
    const join = allRoleChanges(d.log.slice(from)).filter((c) => c.host === spare && c.role === 'backup').at(-1);
    if (join === undefined) throw new Error(`${spare} was not asked to join at term ${term}`);
    d.handle(beat(spare, 'backup', term, true, join.seq), d.nowUs + 1_000);
    if (d.core.state !== 'protected') throw new Error(`not protected again at term ${term}: ${d.core.state}`);
    // The failed primary comes back as a new process, a spare.
    incarnation.set(primary, (incarnation.get(primary) ?? 1) + 1);
    d.handle(beat(primary, 'spare', 1, false), d.nowUs + 1_000);
    [primary, backup, spare] = [backup, spare, primary];
  }
  return d;
}

describe('FailoverCore: samples kept', () => {
  it('keeps the first MAX_FAILOVER_SAMPLES failovers and re-protections, and counts the ones past it', () => {
    const past = 3;
    const d = failOverRepeatedly(MAX_FAILOVER_SAMPLES + past);
    const s = d.core.stats;
    expect(s.failovers).toBe(MAX_FAILOVER_SAMPLES + past);
    expect(s.reprotections).toBe(MAX_FAILOVER_SAMPLES + past);
    expect(s.promotedAtUs).toHaveLength(MAX_FAILOVER_SAMPLES);
    expect(s.failoverDurationsUs).toHaveLength(MAX_FAILOVER_SAMPLES);
    expect(s.reprotectedAtUs).toHaveLength(MAX_FAILOVER_SAMPLES);
    expect(s.reprotectDurationsUs).toHaveLength(MAX_FAILOVER_SAMPLES);
    expect(s.failoverSamplesNotKept).toBe(past);
    expect(s.reprotectSamplesNotKept).toBe(past);
    // The first ones are kept, in order: a report's first failover is still the run's first.
    expect(s.promotedAtUs).toEqual([...s.promotedAtUs].sort((a, b) => a - b));
    expect(s.promotedAtUs.at(-1)!).toBeLessThan(d.nowUs);
  });

  it('drops nothing below the bound', () => {
    const d = failOverRepeatedly(3);
    expect(d.core.stats).toMatchObject({ failovers: 3, failoverSamplesNotKept: 0, reprotectSamplesNotKept: 0 });
    expect(d.core.stats.promotedAtUs).toHaveLength(3);
    expect(d.core.stats.reprotectDurationsUs).toHaveLength(3);
  });
});
