import { describe, expect, it } from 'vitest';
import { makeChunks } from '../../../lib/checkpoint/chunks.js';
import { ChunkSource, type Assignment, type CheckpointAck, type CheckpointChunk, type EpochBarrier, type EpochCommit, type ServiceStatus, type WireMessage } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import type { Effect, Input } from '../../../lib/runtime/types.js';
import { STATUS_TIMER } from '../../../lib/supervision/index.js';
import { CheckpointerCore, type CheckpointerOptions } from '../../../services/checkpointer/core.js';
import { PRIMARY_TIMERS } from '../../../services/checkpointer/primary.js';
import { AGENT_INCARNATION, activate, assignment } from '../support/supervision.js';

const VM = 'vm1';
const HOST = 'host-a';
const s = subjects(VM);
const hs = s.host(HOST);
const ASSIGN = hs.assign('checkpointer');
const EPOCH_US = 20_000;
const STATUS_US = 10_000;
const RESEND_US = 2_000;

const options: CheckpointerOptions = {
  vmId: VM,
  host: HOST,
  subjects: hs,
  ckptDataSubject: s.ckptData,
  ckptAckSubject: s.ckptAck,
  statusIntervalUs: STATUS_US,
  epochUs: EPOCH_US,
  maxInflightEpochs: 2,
  speculative: false,
  ackTimeoutUs: 10_000,
  maxLatencySamples: 10,
  resendUs: RESEND_US,
};

const message = (subject: string, msg: WireMessage): Input => ({ kind: 'message', subject, msg });
const timer = (name: string): Input => ({ kind: 'timer', name });
type Send = Extract<Effect, { kind: 'send' }>;
const sentOn = (effects: readonly Effect[], subject: string) => effects.filter((e): e is Send => e.kind === 'send' && e.subject === subject).map((e) => e.msg);
const statuses = (effects: readonly Effect[]) => sentOn(effects, hs.status) as ServiceStatus[];
const barriers = (effects: readonly Effect[]) => sentOn(effects, hs.epoch) as EpochBarrier[];
const commits = (effects: readonly Effect[]) => (sentOn(effects, hs.commit) as EpochCommit[]).map((c) => c.epoch);
const timersSet = (effects: readonly Effect[]) => new Map(effects.flatMap((e) => (e.kind === 'setTimer' ? [[e.name, e.atUs] as const] : [])));
const cancelled = (effects: readonly Effect[]) => effects.flatMap((e) => (e.kind === 'cancelTimer' ? [e.name] : []));
const assign = (a: Assignment) => message(ASSIGN, a);
/** A primary assignment from the host's agent (seq 1, first epoch 1 unless given). */
const primaryAssignment = (term: number, extra: Parameters<typeof assignment>[4] = {}) => assignment(VM, HOST, 'primary', term, extra);

const parts = (epoch: number, term: number): CheckpointChunk[] => [
  ...makeChunks({ vmId: VM, term, epoch }, ChunkSource.PAGES, { pieces: [new Uint8Array(40).fill(epoch)], rawBytes: [4096] }),
  ...makeChunks({ vmId: VM, term, epoch }, ChunkSource.STATE, { pieces: [new Uint8Array(10).fill(epoch)] }),
];
const ack = (epoch: number, term: number, host = 'host-b'): CheckpointAck => ({ type: 'checkpointAck', vmId: VM, term, epoch, ok: true, reason: '', host, needsBase: false });

/** Pauses and stages the epoch running (which transfers it); returns every effect. */
function checkpoint(c: CheckpointerCore, atUs: number): Effect[] {
  const p = c.primary!;
  const epoch = p.epoch;
  const out = c.handle(timer('ckpt.epoch'), atUs);
  for (const chunk of parts(epoch, p.term)) out.push(...c.handle(message(hs.ckptStage, chunk), atUs + 10));
  return out;
}

describe('CheckpointerCore', () => {
  it('is idle until assigned: it listens for its assignments only and nothing else moves it', () => {
    const c = new CheckpointerCore(options);
    expect(c.name).toBe(`checkpointer.${HOST}`);
    c.handle({ kind: 'start' }, 0);
    expect(c.subscriptions).toEqual([ASSIGN]);
    expect(c.role).toBe('spare');
    expect(c.primary).toBeNull();
    expect(c.stats).toBeNull();
    // What would drive a primary does nothing here.
    expect(c.handle(timer('ckpt.epoch'), EPOCH_US)).toEqual([]);
    expect(c.handle(message(hs.ckptStage, parts(1, 1)[0]!), EPOCH_US)).toEqual([]);
    expect(c.handle(message(s.ckptAck, ack(1, 1)), EPOCH_US)).toEqual([]);
    expect(c.primary).toBeNull();
  });

  it('reports to its host agent at start and every status interval, naming its incarnation and the assignment it runs under', () => {
    const c = new CheckpointerCore(options);
    const started = c.handle({ kind: 'start' }, 500);
    const first: ServiceStatus = { type: 'serviceStatus', vmId: VM, term: 0, host: HOST, service: 'checkpointer', incarnation: 501, assignmentSeq: 0, agentIncarnation: 0, role: 'spare', epoch: 0, synced: false, ready: false, txEndSeqs: [], chunksStaged: 0, reportSeq: 1, followedAgentIncarnation: 0 };
    expect(statuses(started)).toEqual([first]);
    expect(timersSet(started)).toEqual(new Map([[STATUS_TIMER, 500 + STATUS_US]]));
    const tick = c.handle(timer(STATUS_TIMER), 500 + STATUS_US);
    // Each report numbered after the last: a copy delayed on the bus is told from a newer one.
    expect(statuses(tick)).toEqual([{ ...first, reportSeq: 2 }]);
    expect(timersSet(tick)).toEqual(new Map([[STATUS_TIMER, 500 + 2 * STATUS_US]]));
    // After an assignment, the reports carry it.
    const assigned = c.handle(assign(primaryAssignment(2, { seq: 4, firstEpoch: 6 })), 600);
    expect(statuses(assigned)).toEqual([{ ...first, term: 2, assignmentSeq: 4, agentIncarnation: AGENT_INCARNATION, role: 'primary', epoch: 5, reportSeq: 3 }]);
    expect(statuses(c.handle(timer(STATUS_TIMER), 500 + 2 * STATUS_US))).toMatchObject([{ role: 'primary', term: 2, assignmentSeq: 4, epoch: 5 }]);
    // A repeat of the same assignment is answered with a report and nothing else.
    expect(c.handle(assign(primaryAssignment(2, { seq: 4, firstEpoch: 6 })), 700)).toEqual([{ kind: 'send', subject: hs.status, msg: { ...first, term: 2, assignmentSeq: 4, agentIncarnation: AGENT_INCARNATION, role: 'primary', epoch: 5, reportSeq: 5 } }]);
  });

  it("never commits on another VM's acknowledgement (same term, same backup host, same epoch): it is dropped and counted", () => {
    const c = new CheckpointerCore(options);
    activate(c, primaryAssignment(1, { peerHost: 'host-b' }), { assign: ASSIGN }, 0);
    checkpoint(c, EPOCH_US);
    const misrouted = c.handle(message(s.ckptAck, { ...ack(1, 1), vmId: 'vm2' }), EPOCH_US + 2_000);
    expect(commits(misrouted)).toEqual([]);
    expect(c.otherVmMessages).toBe(1);
    expect(commits(c.handle(message(s.ckptAck, ack(1, 1)), EPOCH_US + 3_000))).toEqual([1]);
  });

  it('drops and counts a message of a type its subjects never carry (the codec decodes each subject as its own type: a bug)', () => {
    const c = new CheckpointerCore(options);
    activate(c, primaryAssignment(1, { peerHost: 'host-b' }), { assign: ASSIGN }, 0);
    const stray = { type: 'handoverRequest' as const, vmId: 'vm1', term: 1, host: 'host-a' };
    expect(c.handle(message(s.ckptAck, stray), 1_000)).toEqual([]);
    expect(c.unexpectedMessages).toBe(1);
  });

  it('reports every commit as it happens, with the last committed epoch', () => {
    const c = new CheckpointerCore(options);
    activate(c, primaryAssignment(1, { peerHost: 'host-b' }), { assign: ASSIGN }, 0);
    const transfer = checkpoint(c, EPOCH_US);
    expect(commits(transfer)).toEqual([]);
    expect(statuses(transfer)).toEqual([]); // nothing committed yet: nothing new to report
    const committed = c.handle(message(s.ckptAck, ack(1, 1)), EPOCH_US + 2_000);
    expect(commits(committed)).toEqual([1]);
    expect(statuses(committed)).toMatchObject([{ role: 'primary', term: 1, epoch: 1 }]);
    // Unprotected, an epoch commits at its copy: that report comes with it.
    c.handle(assign(primaryAssignment(1, { peerHost: '', seq: 2 })), EPOCH_US + 3_000);
    const local = checkpoint(c, 2 * EPOCH_US);
    expect(commits(local)).toEqual([2]);
    expect(statuses(local)).toMatchObject([{ epoch: 2 }]);
    expect(statuses(c.handle(timer(STATUS_TIMER), 3 * EPOCH_US))).toMatchObject([{ epoch: 2 }]);
  });

  it('on a primary assignment, listens for staged parts and acknowledgements and arms the epoch timer for the assignment’s first epoch under its term', () => {
    const c = new CheckpointerCore(options);
    c.handle({ kind: 'start' }, 0);
    const effects = c.handle(assign(primaryAssignment(3, { peerHost: 'host-b', firstEpoch: 8 })), 1_000);
    expect(timersSet(effects).get('ckpt.epoch')).toBe(1_000 + EPOCH_US);
    expect(c.subscriptions).toEqual([ASSIGN, hs.ckptStage, s.ckptAck]);
    expect(c.role).toBe('primary');
    expect(c.primary).toMatchObject({ term: 3, epoch: 8, peerHost: 'host-b', unprotected: false });
    expect(c.stats!.lastCommittedEpoch).toBe(7);
    expect(barriers(c.handle(timer('ckpt.epoch'), 1_000 + EPOCH_US))).toEqual([{ type: 'epochBarrier', vmId: VM, term: 3, epoch: 8, base: false, stagedSources: 0, joinSeq: 0, local: false }]);
    // Its chunks go to the assignment's peer, its acknowledgements commit.
    const transfer = parts(8, 3).flatMap((chunk) => c.handle(message(hs.ckptStage, chunk), 1_000 + EPOCH_US + 10));
    expect(sentOn(transfer, s.ckptData('host-b')).at(-1)).toMatchObject({ source: ChunkSource.MANIFEST, epoch: 8, term: 3 });
    expect(commits(c.handle(message(s.ckptAck, ack(8, 3)), 1_000 + EPOCH_US + 2_000))).toEqual([8]);
  });

  it('ignores an assignment older than the one it took (a delayed copy), counting it and sending nothing', () => {
    const c = new CheckpointerCore(options);
    activate(c, primaryAssignment(1, { peerHost: 'host-b', seq: 5 }), { assign: ASSIGN }, 0);
    const primary = c.primary;
    expect(c.handle(assign(assignment(VM, HOST, 'spare', 1, { seq: 4 })), 100)).toEqual([]);
    expect(c.handle(assign(primaryAssignment(1, { peerHost: '', seq: 3 })), 200)).toEqual([]);
    // An assignment of an earlier agent incarnation is older whatever its seq.
    expect(c.handle(assign(assignment(VM, HOST, 'stopped', 1, { seq: 99, incarnation: AGENT_INCARNATION - 1 })), 300)).toEqual([]);
    expect(c.staleAssignments).toBe(3);
    expect(c.role).toBe('primary');
    expect(c.primary).toBe(primary);
    expect(c.primary!.peerHost).toBe('host-b');
    expect(c.subscriptions).toEqual([ASSIGN, hs.ckptStage, s.ckptAck]);
  });

  it('takes a newer primary assignment under the same term as a change of backup, keeping its primary side and its epochs', () => {
    const c = new CheckpointerCore(options);
    activate(c, primaryAssignment(1, { peerHost: 'host-b', seq: 1 }), { assign: ASSIGN }, 0);
    const primary = c.primary;
    checkpoint(c, EPOCH_US);
    const changed = c.handle(assign(primaryAssignment(1, { peerHost: 'host-c', seq: 2 })), EPOCH_US + 2_000);
    // host-b never acknowledged epoch 1: it commits locally; the epoch timer runs on.
    expect(commits(changed)).toEqual([1]);
    expect(timersSet(changed).has('ckpt.epoch')).toBe(false);
    expect(cancelled(changed)).not.toContain('ckpt.epoch');
    expect(c.primary).toBe(primary);
    expect(c.history).toHaveLength(1);
    expect(c.primary).toMatchObject({ peerHost: 'host-c', epoch: 2 });
    const next = checkpoint(c, 2 * EPOCH_US);
    expect(barriers(next)[0]).toMatchObject({ epoch: 2, base: true });
    expect(sentOn(next, s.ckptData('host-c')).length).toBeGreaterThan(0);
    expect(sentOn(next, s.ckptData('host-b'))).toEqual([]);
  });

  it('ends its primary side at an assignment from another agent than the one that started it (that agent restarted alone): no epoch in flight commits without the backup', () => {
    const c = new CheckpointerCore(options);
    activate(c, primaryAssignment(1, { peerHost: 'host-b', seq: 1 }), { assign: ASSIGN }, 0);
    checkpoint(c, EPOCH_US); // epoch 1 in flight, unacknowledged
    const restated = c.handle(assign(primaryAssignment(1, { peerHost: 'host-b', seq: 1, incarnation: AGENT_INCARNATION + 1_000 })), EPOCH_US + 2_000);
    // Taken as a change of backup, epoch 1 would commit locally and release its output.
    expect(commits(restated)).toEqual([]);
    expect(c.role).toBe('spare');
    expect(c.primary).toBeNull();
    expect(c.agentsReplaced).toBe(1);
    // The new agent's assignment names a term this process ran: not taken, no new side.
    expect(c.staleTermAssignments).toBe(1);
    expect(cancelled(restated)).toEqual(expect.arrayContaining([...PRIMARY_TIMERS]));
    expect(timersSet(restated).has('ckpt.epoch')).toBe(false);
    expect(statuses(restated)).toMatchObject([{ role: 'spare' }]);
    // The acknowledgement that comes late commits nothing either.
    expect(commits(c.handle(message(s.ckptAck, ack(1, 1)), EPOCH_US + 3_000))).toEqual([]);
    // Promoted again under a later term (by the agent it has now), it runs a new primary side.
    c.handle(assign(primaryAssignment(4, { peerHost: 'host-c', seq: 2, incarnation: AGENT_INCARNATION + 1_000, firstEpoch: 40 })), EPOCH_US + 4_000);
    expect(c.role).toBe('primary');
    expect(c.primary).toMatchObject({ term: 4, epoch: 40, peerHost: 'host-c' });
  });

  it('takes a primary assignment of a new term as a new primary side, starting over from its first epoch', () => {
    const c = new CheckpointerCore(options);
    activate(c, primaryAssignment(1, { peerHost: 'host-b', seq: 1 }), { assign: ASSIGN }, 0);
    const first = c.primary;
    const effects = c.handle(assign(primaryAssignment(2, { peerHost: 'host-c', seq: 2, firstEpoch: 4 })), 5_000);
    expect(c.primary).not.toBe(first);
    // The ended term stays as its numbers; the live one as it is.
    expect(c.history).toHaveLength(2);
    expect(c.history[0]).toEqual({ stats: first!.stats });
    expect(c.history[1]).toBe(c.primary);
    expect(c.primary).toMatchObject({ term: 2, epoch: 4, peerHost: 'host-c' });
    expect(cancelled(effects)).toEqual(expect.arrayContaining([...PRIMARY_TIMERS]));
    expect(timersSet(effects).get('ckpt.epoch')).toBe(5_000 + EPOCH_US);
  });

  it('with a primary assignment that names a joining peer, starts unprotected and sends a base barrier first', () => {
    const c = new CheckpointerCore(options);
    activate(c, primaryAssignment(2, { peerHost: 'host-c', joining: true, firstEpoch: 3, seq: 7, joinSeq: 5 }), { assign: ASSIGN }, 0);
    expect(c.primary).toMatchObject({ unprotected: true, peerHost: 'host-c' });
    const effects = checkpoint(c, EPOCH_US);
    expect(barriers(effects)[0]).toEqual({ type: 'epochBarrier', vmId: VM, term: 2, epoch: 3, base: true, stagedSources: 0, joinSeq: 5, local: false });
    expect(sentOn(effects, s.ckptData('host-c')).at(-1)).toMatchObject({ source: ChunkSource.MANIFEST, base: true, epoch: 3 });
    expect(commits(effects)).toEqual([]);
    expect(c.primary!.unprotected).toBe(false);
    expect(c.stats!.backupsJoined).toBe(1);
  });

  for (const role of ['spare', 'backup', 'stopped'] as const) {
    it(`on a ${role} assignment, cancels every timer of its primary side and listens for assignments only`, () => {
      const c = new CheckpointerCore(options);
      activate(c, primaryAssignment(1, { peerHost: 'host-b', seq: 1 }), { assign: ASSIGN }, 0);
      checkpoint(c, EPOCH_US);
      const effects = c.handle(assign(assignment(VM, HOST, role, 1, { seq: 2, peerHost: role === 'backup' ? 'host-c' : '' })), EPOCH_US + 2_000);
      expect(new Set(cancelled(effects))).toEqual(new Set(PRIMARY_TIMERS));
      expect(commits(effects)).toEqual([]);
      expect(statuses(effects)).toMatchObject([{ role, assignmentSeq: 2 }]);
      expect(c.subscriptions).toEqual([ASSIGN]);
      expect(c.role).toBe(role);
      expect(c.primary).toBeNull();
      // A timer already on its way, or a late acknowledgement, finds nothing to drive.
      expect(c.handle(timer('ckpt.epoch'), 2 * EPOCH_US)).toEqual([]);
      expect(c.handle(message(s.ckptAck, ack(1, 1)), 2 * EPOCH_US)).toEqual([]);
    });
  }

  it('once stopped, takes no further role from the same agent', () => {
    const c = new CheckpointerCore(options);
    activate(c, assignment(VM, HOST, 'stopped', 1), { assign: ASSIGN }, 0);
    const effects = c.handle(assign(primaryAssignment(1, { seq: 2, peerHost: 'host-b' })), 100);
    expect(c.role).toBe('stopped');
    expect(c.primary).toBeNull();
    expect(c.subscriptions).toEqual([ASSIGN]);
    expect(timersSet(effects).has('ckpt.epoch')).toBe(false);
    expect(statuses(effects)).toMatchObject([{ role: 'stopped' }]);
  });
});
