/**
 * The take-over records the failover service remembers, to recognise its own
 * write after an unknown outcome, at their bound MAX_REMEMBERED_TAKE_ATTEMPTS:
 * past it the oldest goes, and a record from it found later is taken as
 * someone else's (the service waits that lease out: later, never unsafe).
 * (failover-core.test.ts has the same at 16, written before the constant was exported.)
 */
import { describe, expect, it } from 'vitest';
import { MAX_REMEMBERED_TAKE_ATTEMPTS } from '../../../services/failover/core.js';
import type { LeaseRecord } from '../../../lib/runtime/types.js';
import { FailoverDriver, heartbeatInput, lateTimer, primaryRecord, PRIMARY, silentTimer } from './support.js';

/** `attempts` take-over attempts after the primary fell silent, each answered `unavailable` but the last (outstanding). */
function outage(attempts: number): { d: FailoverDriver; records: LeaseRecord[] } {
  const d = new FailoverDriver();
  d.start(0, primaryRecord(0), 1);
  d.handle(heartbeatInput(PRIMARY, 'primary', 1), 10_000);
  d.fire(lateTimer(PRIMARY));
  d.fire(silentTimer(PRIMARY));
  const records = [d.pendingCas.record];
  for (let i = 1; i < attempts; i++) {
    d.answer({ outcome: 'unavailable', record: null, revision: 0 });
    d.fire(silentTimer(PRIMARY));
    records.push(d.pendingCas.record);
  }
  expect(new Set(records.map((r) => r.expiresAtMs)).size).toBe(attempts); // each attempt its own record
  return { d, records };
}

describe('FailoverCore: take-over attempts remembered', () => {
  it('forgets the oldest attempt past MAX_REMEMBERED_TAKE_ATTEMPTS: its record, found later, is not taken as its own', () => {
    const { d, records } = outage(MAX_REMEMBERED_TAKE_ATTEMPTS + 1);
    d.answer({ outcome: 'conflict', record: records[0]!, revision: 9 });
    expect(d.core.state).toBe('suspect');
    expect(d.core.stats.leaseConflicts).toBe(1);
    expect(d.core.stats.takeAttemptsForgotten).toBe(1);
  });

  it('still knows the oldest of the last MAX_REMEMBERED_TAKE_ATTEMPTS as its own', () => {
    const { d, records } = outage(MAX_REMEMBERED_TAKE_ATTEMPTS + 1);
    d.answer({ outcome: 'conflict', record: records[1]!, revision: 9 });
    expect(d.core.state).toBe('promoting');
  });

  it('forgets none at the bound itself', () => {
    const { d, records } = outage(MAX_REMEMBERED_TAKE_ATTEMPTS);
    expect(d.core.stats.takeAttemptsForgotten).toBe(0);
    d.answer({ outcome: 'conflict', record: records[0]!, revision: 9 });
    expect(d.core.state).toBe('promoting');
  });
});
