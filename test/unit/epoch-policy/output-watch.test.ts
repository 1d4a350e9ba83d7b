import { describe, expect, it } from 'vitest';
import type { OutputIdle } from '../../../lib/codec/messages.js';
import { OutputWatch, TIMER_OUTPUT_IDLE } from '../../../lib/epoch-policy/index.js';
import type { Effect } from '../../../lib/runtime/types.js';

const SUBJECT = 'specula.vm1.h.host-a.output.idle';
const QUIET_US = 300;
const TERM = 2;

const watch = (maxConnections = 8) => new OutputWatch('vm1', { quietUs: QUIET_US, maxConnections, subject: SUBJECT });
const reports = (effects: Effect[]): OutputIdle[] => effects.flatMap((e) => (e.kind === 'send' && e.subject === SUBJECT && e.msg.type === 'outputIdle' ? [e.msg] : []));
const timerAt = (effects: Effect[]): number | undefined => effects.filter((e) => e.kind === 'setTimer' && e.name === TIMER_OUTPUT_IDLE).map((e) => (e as { atUs: number }).atUs).pop();

describe('OutputWatch', () => {
  it('reports a connection quiet for quietUs once, with its epoch and what is held', () => {
    const w = watch();
    const out: Effect[] = [];
    w.held(1, 5, 1_000, out);
    expect(timerAt(out)).toBe(1_000 + QUIET_US);
    const fired: Effect[] = [];
    w.onTimer(TERM, 9_000, 1_300, fired);
    expect(reports(fired)).toEqual([{ type: 'outputIdle', vmId: 'vm1', term: TERM, epoch: 5, connId: 1, heldBytes: 9_000 }]);
    expect(timerAt(fired)).toBeUndefined(); // nothing left to wait for
    const again: Effect[] = [];
    w.onTimer(TERM, 9_000, 2_000, again);
    expect(reports(again)).toEqual([]);
    expect(w.stats.idleReports).toBe(1);
  });

  it('waits on while the connection keeps sending: one timer, moved to the last output + quietUs', () => {
    const w = watch();
    const out: Effect[] = [];
    w.held(1, 5, 1_000, out);
    w.held(1, 5, 1_200, out);
    expect(out.filter((e) => e.kind === 'setTimer')).toHaveLength(1); // not one per segment
    const early: Effect[] = [];
    w.onTimer(TERM, 100, 1_300, early);
    expect(reports(early)).toEqual([]);
    expect(timerAt(early)).toBe(1_200 + QUIET_US);
    const late: Effect[] = [];
    w.onTimer(TERM, 100, 1_500, late);
    expect(reports(late).map((r) => r.epoch)).toEqual([5]);
  });

  it('reports each connection on its own, and a connection again for a later epoch', () => {
    const w = watch();
    const out: Effect[] = [];
    w.held(1, 5, 1_000, out);
    w.held(2, 5, 1_250, out);
    const first: Effect[] = [];
    w.onTimer(TERM, 0, 1_300, first);
    expect(reports(first).map((r) => r.connId)).toEqual([1]);
    const second: Effect[] = [];
    w.onTimer(TERM, 0, 1_550, second);
    expect(reports(second).map((r) => r.connId)).toEqual([2]);
    w.held(1, 6, 2_000, out);
    const third: Effect[] = [];
    w.onTimer(TERM, 0, 2_300, third);
    expect(reports(third).map((r) => [r.connId, r.epoch])).toEqual([[1, 6]]);
  });

  it('forgets connections whose held output committed, and reports nothing for them', () => {
    const w = watch();
    const out: Effect[] = [];
    w.held(1, 5, 1_000, out);
    w.held(2, 6, 1_000, out);
    w.committed(5);
    expect(w.watchedConnections).toBe(1);
    const fired: Effect[] = [];
    w.onTimer(TERM, 0, 1_300, fired);
    expect(reports(fired).map((r) => r.connId)).toEqual([2]);
  });

  it('holds back a quiet connection while committed output still waits in front of it, and looks again a quiet interval later', () => {
    const w = watch();
    const out: Effect[] = [];
    w.held(1, 5, 1_000, out);
    let backlog = true;
    const held: Effect[] = [];
    w.onTimer(TERM, 0, 1_300, held, () => backlog);
    expect(reports(held)).toEqual([]);
    expect(timerAt(held)).toBe(1_300 + QUIET_US);
    backlog = false;
    const sent: Effect[] = [];
    w.onTimer(TERM, 0, 1_600, sent, () => backlog);
    expect(reports(sent).map((r) => r.connId)).toEqual([1]);
    expect(w.stats.backloggedChecks).toBe(1);
  });

  it('watches at most maxConnections, counting the others, whose output waits for the epoch end', () => {
    const w = watch(2);
    const out: Effect[] = [];
    for (const conn of [1, 2, 3, 4]) w.held(conn, 5, 1_000, out);
    expect(w.watchedConnections).toBe(2);
    expect(w.stats.unwatchedConnections).toBe(2);
    const fired: Effect[] = [];
    w.onTimer(TERM, 0, 1_300, fired);
    expect(reports(fired).map((r) => r.connId)).toEqual([1, 2]);
  });

  it('a reset forgets everything and cancels its timer', () => {
    const w = watch();
    const out: Effect[] = [];
    w.held(1, 5, 1_000, out);
    const reset: Effect[] = [];
    w.reset(reset);
    expect(reset).toEqual([{ kind: 'cancelTimer', name: TIMER_OUTPUT_IDLE }]);
    const fired: Effect[] = [];
    w.onTimer(TERM, 0, 1_300, fired);
    expect(fired).toEqual([]);
    w.held(1, 7, 2_000, out);
    expect(timerAt(out)).toBe(2_000 + QUIET_US); // armed again from nothing
  });
});
