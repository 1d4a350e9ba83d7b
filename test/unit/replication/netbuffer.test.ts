import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_CONNECTIONS, TcpFlag, type Assignment, type Segment, type ServiceStatus } from '../../../lib/codec/messages.js';
import { sampler } from '../../../lib/tracing/sampling.js';
import { subjects } from '../../../lib/codec/subjects.js';
import type { Effect, Input } from '../../../lib/runtime/types.js';
import { STATUS_TIMER } from '../../../lib/supervision/index.js';
import { TIMER_OUTPUT_IDLE } from '../../../lib/epoch-policy/index.js';
import { TCP_IP_HEADER_BYTES } from '../../../lib/tcp/header.js';
import { NetbufferCore, type NetbufferOptions } from '../../../services/netbuffer/core.js';
import { activate, AGENT_INCARNATION, assignment, permit } from '../support/supervision.js';
import { message, segment, segmentsOn, sentOn, timer, timersSet, VM } from './support.js';

const HOST = 'host-a';
const TERM = 2;
const STATUS_INTERVAL_US = 50_000;
const v = subjects(VM);
const s = v.host(HOST);
const ASSIGN = s.assign('netbuffer');

const options = (overrides: Partial<NetbufferOptions> = {}): NetbufferOptions => ({ vmId: VM, host: HOST, subjects: s, outSubject: v.wireOut, heldBytesMax: 1 << 20, holdData: true, statusIntervalUs: STATUS_INTERVAL_US, ...overrides });

/** A netbuffer as its host agent leaves it on a primary: started, assigned the primary role of TERM, with a permit that outlasts the test. */
function netbuffer(overrides: Partial<NetbufferOptions> = {}): NetbufferCore {
  const nb = new NetbufferCore(options(overrides));
  activate(nb, assignment(VM, HOST, 'primary', TERM), { assign: ASSIGN, permit: s.permit });
  return nb;
}

/** A started netbuffer assigned the primary role of TERM, without any permit yet. */
function withoutPermit(overrides: Partial<NetbufferOptions> = {}): NetbufferCore {
  const nb = new NetbufferCore(options(overrides));
  activate(nb, assignment(VM, HOST, 'primary', TERM), { assign: ASSIGN });
  return nb;
}

/** A data segment of `len` bytes; `seq` doubles as its identity in these tests. */
const data = (epoch: number, seq: number, len = 100): Segment => segment({ term: TERM, epoch, seq, flags: TcpFlag.ACK, payload: new Uint8Array(len).fill(seq & 0xff) });
const pureAck = (epoch: number, seq: number): Segment => segment({ term: TERM, epoch, seq, flags: TcpFlag.ACK });
const commit = (epoch: number, term = TERM) => message(s.commit, { type: 'epochCommit', vmId: VM, term, epoch });
const tx = (seg: Segment) => message(s.tx, seg);
const grant = (untilUs: number, term = TERM) => message(s.permit, permit(VM, HOST, term, untilUs));
const assign = (a: Assignment) => message(ASSIGN, a);
const out = (nb: NetbufferCore, input: Input, nowUs = 0) => segmentsOn(nb.handle(input, nowUs), v.wireOut);
const wireBytes = (seg: Segment) => seg.payload.length + TCP_IP_HEADER_BYTES;
const statuses = (effects: Effect[]) => sentOn(effects, s.status) as ServiceStatus[];

describe('NetbufferCore', () => {
  it('subscribes to its assignments and permits while idle, and adds the guest segments and the commits as primary', () => {
    const nb = new NetbufferCore(options());
    expect(nb.subscriptions).toEqual([ASSIGN, s.permit]);
    activate(nb, assignment(VM, HOST, 'primary', TERM), { assign: ASSIGN, permit: s.permit });
    expect(nb.subscriptions).toEqual([ASSIGN, s.permit, s.tx, s.commit]);
    nb.handle(assign(assignment(VM, HOST, 'spare', TERM, { seq: 2 })), 0);
    expect(nb.subscriptions).toEqual([ASSIGN, s.permit]);
  });

  it('releases epoch N only after COMMIT(N)', () => {
    const nb = netbuffer();
    const segs = [data(1, 10), data(1, 20), pureAck(1, 30)];
    for (const seg of segs) expect(out(nb, tx(seg))).toEqual([]);
    expect(out(nb, timer(STATUS_TIMER))).toEqual([]); // its report lets nothing out
    expect(out(nb, commit(1))).toEqual(segs);
    expect(nb.stats.segmentsReleased).toBe(3);
    expect(nb.stats.lastCommittedEpoch).toBe(1);
  });

  it("drops and counts another VM's messages on its subjects: another VM's commit releases nothing", () => {
    const nb = netbuffer();
    const segs = [data(1, 10), data(1, 20)];
    for (const seg of segs) out(nb, tx(seg));
    out(nb, tx({ ...data(1, 30), vmId: 'another-vm' }));
    expect(out(nb, message(s.commit, { type: 'epochCommit', vmId: 'another-vm', term: TERM, epoch: 1 }))).toEqual([]);
    expect(nb.stats.otherVmMessages).toBe(2);
    expect(out(nb, commit(1))).toEqual(segs);
  });

  it('releases every epoch up to N on COMMIT(N), oldest epoch first, and keeps later epochs', () => {
    const nb = netbuffer();
    const e1 = [data(1, 1), data(1, 2)];
    const e2 = [data(2, 3)];
    const e3 = [data(3, 4), data(3, 5)];
    for (const seg of [...e1, ...e2, ...e3]) nb.handle(tx(seg), 0);
    expect(out(nb, commit(2))).toEqual([...e1, ...e2]);
    expect(nb.stats.heldBytes).toBe(e3.reduce((n, x) => n + wireBytes(x), 0));
    expect(out(nb, commit(3))).toEqual(e3);
    expect(nb.stats.heldBytes).toBe(0);
  });

  it('releases an epoch in the order its segments arrived, not in sequence order', () => {
    const nb = netbuffer();
    const segs = [data(1, 300), data(1, 100), pureAck(1, 200)];
    for (const seg of segs) nb.handle(tx(seg), 0);
    expect(out(nb, commit(1)).map((x) => x.seq)).toEqual([300, 100, 200]);
  });

  it('releases nothing on a duplicate or an older commit', () => {
    const nb = netbuffer();
    nb.handle(tx(data(1, 1)), 0);
    nb.handle(tx(data(2, 2)), 0);
    expect(out(nb, commit(1))).toHaveLength(1);
    expect(out(nb, commit(1))).toEqual([]);
    expect(out(nb, commit(0))).toEqual([]);
    expect(nb.stats.lastCommittedEpoch).toBe(1);
    expect(out(nb, commit(2)).map((x) => x.seq)).toEqual([2]);
    expect(out(nb, commit(2))).toEqual([]);
    expect(nb.stats.segmentsReleased).toBe(2);
  });

  it('releases a segment of an already committed epoch at once', () => {
    const nb = netbuffer();
    nb.handle(tx(data(3, 1)), 0);
    out(nb, commit(3));
    const late = data(2, 2);
    expect(out(nb, tx(late))).toEqual([late]);
    const sameEpoch = data(3, 3);
    expect(out(nb, tx(sameEpoch))).toEqual([sameEpoch]);
    expect(nb.stats.heldBytes).toBe(0);
    expect(nb.stats.segmentsReleased).toBe(3);
  });

  it('holds a late segment of an older uncommitted epoch with its epoch, ahead of later epochs', () => {
    const nb = netbuffer();
    nb.handle(tx(data(1, 1)), 0);
    nb.handle(tx(data(3, 3)), 0);
    nb.handle(tx(data(1, 11)), 0); // epoch 1 queue exists
    nb.handle(tx(data(2, 2)), 0); // epoch 2 queue is inserted between 1 and 3
    expect(out(nb, commit(1)).map((x) => x.seq)).toEqual([1, 11]);
    expect(out(nb, commit(3)).map((x) => x.seq)).toEqual([2, 3]);
  });

  it('holds an exact copy of a held segment once (the bus repeated it) and counts it', () => {
    const nb = netbuffer();
    nb.handle(tx(data(1, 1)), 0);
    nb.handle(tx(data(1, 1)), 0);
    expect(nb.stats.duplicatesDropped).toBe(1);
    expect(nb.stats.heldBytes).toBe(wireBytes(data(1, 1)));
    expect(out(nb, commit(1)).map((x) => x.seq)).toEqual([1]);
  });

  it('refuses a segment beyond heldBytesMax, counts it, and never drops what it holds', () => {
    const one = wireBytes(data(1, 0));
    const nb = netbuffer({ heldBytesMax: 3 * one });
    const held = [data(1, 1), data(1, 2), data(2, 3)];
    for (const seg of held) nb.handle(tx(seg), 0);
    expect(nb.stats.heldBytes).toBe(3 * one); // exactly at the bound is allowed
    expect(out(nb, tx(data(2, 4)))).toEqual([]);
    expect(out(nb, tx(pureAck(2, 5)))).toEqual([]); // a header alone does not fit either
    expect(nb.stats.segmentsRefused).toBe(2);
    expect(nb.stats.heldBytes).toBe(3 * one);
    expect(nb.stats.heldBytesMax).toBe(3 * one);
    expect(out(nb, commit(2))).toEqual(held);
    expect(nb.stats.heldBytes).toBe(0);
    // Room again: the retransmission is held.
    nb.handle(tx(data(3, 4)), 0);
    expect(nb.stats.heldBytes).toBe(one);
    expect(nb.stats.segmentsRefused).toBe(2);
  });

  it('with holdData false ignores data segments (the acker owns them) and holds pure ACK, SYN and FIN segments', () => {
    const nb = netbuffer({ holdData: false });
    const control = [segment({ term: TERM, epoch: 1, seq: 1, flags: TcpFlag.SYN | TcpFlag.ACK, wscale: 7 }), pureAck(1, 2), segment({ term: TERM, epoch: 1, seq: 3, flags: TcpFlag.FIN | TcpFlag.ACK })];
    nb.handle(tx(control[0]!), 0);
    expect(out(nb, tx(data(1, 10)))).toEqual([]);
    nb.handle(tx(control[1]!), 0);
    nb.handle(tx(control[2]!), 0);
    expect(nb.stats.heldBytes).toBe(3 * TCP_IP_HEADER_BYTES);
    expect(out(nb, commit(1))).toEqual(control);
    // Not even a data segment of a committed epoch goes out through the netbuffer.
    expect(out(nb, tx(data(1, 20)))).toEqual([]);
    expect(nb.stats).toMatchObject({ heldBytes: 0, segmentsReleased: 3, segmentsRefused: 0, dataSegmentsIgnored: 2 });
  });

  it('drops and counts a segment of a connection no guest has, tracing or not (the tracer keys bytes by connection and would throw)', () => {
    for (const tracing of [undefined, { sampler: sampler(VM, 1), epochs: false }]) {
      const nb = netbuffer(tracing === undefined ? {} : { tracing });
      for (const connId of [0, MAX_CONNECTIONS + 1, 256]) expect(out(nb, tx({ ...data(1, 10), connId }))).toEqual([]);
      expect(nb.stats.unknownConnections).toBe(3);
      expect(nb.stats.heldBytes).toBe(0);
      nb.handle(tx(data(1, 10)), 0);
      expect(nb.stats.heldBytes).toBeGreaterThan(0);
    }
  });

  it('ignores timers and messages it does not handle', () => {
    const nb = netbuffer();
    expect(nb.handle({ kind: 'timer', name: 'x' }, 0)).toEqual([]);
    expect(nb.handle(message(s.epoch, { type: 'epochBarrier', vmId: VM, term: TERM, epoch: 1, base: false, stagedSources: 0, joinSeq: 0, local: false }), 0)).toEqual([]);
  });

  it('drops and counts segments and commits of another term: a deposed primary, or its successor', () => {
    const nb = netbuffer();
    nb.handle(tx(data(1, 1)), 0);
    expect(out(nb, tx(segment({ ...data(1, 2), term: TERM - 1 })))).toEqual([]);
    expect(out(nb, commit(1, TERM + 1))).toEqual([]);
    expect(nb.stats.staleTermDrops).toBe(2);
    expect(nb.stats.lastCommittedEpoch).toBe(0);
    expect(out(nb, commit(1)).map((x) => x.seq)).toEqual([1]);
  });

  describe('supervision', () => {
    it('is idle until its primary assignment: guest segments and commits before it are ignored', () => {
      const nb = new NetbufferCore(options());
      nb.handle({ kind: 'start' }, 0);
      nb.handle(grant(Number.MAX_SAFE_INTEGER), 0);
      expect(nb.role).toBe('spare');
      expect(out(nb, tx(data(1, 1)))).toEqual([]);
      expect(out(nb, commit(1))).toEqual([]);
      expect(nb.stats).toMatchObject({ heldBytes: 0, lastCommittedEpoch: 0, staleTermDrops: 0, segmentsReleased: 0 });
      nb.handle(assign(assignment(VM, HOST, 'primary', TERM)), 0);
      expect(nb.role).toBe('primary');
      expect(nb.term).toBe(TERM);
      // The segment seen while idle was never held: the commit of its epoch releases nothing.
      expect(out(nb, commit(1))).toEqual([]);
      const seg = data(2, 2);
      nb.handle(tx(seg), 0);
      expect(out(nb, commit(2))).toEqual([seg]);
    });

    it('starts the epoch stream at the firstEpoch of its primary assignment: epochs before it count as committed', () => {
      const nb = new NetbufferCore(options());
      activate(nb, assignment(VM, HOST, 'primary', TERM, { firstEpoch: 5 }), { assign: ASSIGN, permit: s.permit });
      expect(nb.stats.lastCommittedEpoch).toBe(4);
      const before = data(4, 1);
      expect(out(nb, tx(before))).toEqual([before]);
      const first = data(5, 2);
      expect(out(nb, tx(first))).toEqual([]);
      expect(out(nb, commit(4))).toEqual([]);
      expect(out(nb, commit(5))).toEqual([first]);
    });

    it('forgets what it held when a new term is assigned: that epoch stream is gone', () => {
      const nb = netbuffer();
      nb.handle(tx(data(1, 1)), 0);
      nb.handle(tx(data(2, 2)), 0);
      nb.handle(assign(assignment(VM, HOST, 'primary', TERM + 1, { seq: 2, firstEpoch: 1 })), 0);
      nb.handle(grant(Number.MAX_SAFE_INTEGER, TERM + 1), 0);
      expect(nb.stats.heldBytes).toBe(0);
      expect(out(nb, commit(2, TERM + 1))).toEqual([]);
    });

    it('keeps what it held when its primary assignment of the same term is renewed (a new backup joins)', () => {
      const nb = netbuffer();
      const seg = data(1, 1);
      nb.handle(tx(seg), 0);
      nb.handle(assign(assignment(VM, HOST, 'primary', TERM, { seq: 2, peerHost: 'host-c', firstEpoch: 9 })), 0);
      expect(nb.stats.lastCommittedEpoch).toBe(0);
      expect(out(nb, commit(1))).toEqual([seg]);
    });

    it('reports its status at start and again every statusIntervalUs', () => {
      const nb = new NetbufferCore(options());
      const started = nb.handle({ kind: 'start' }, 1_000);
      expect(statuses(started)).toEqual([
        { type: 'serviceStatus', vmId: VM, term: 0, host: HOST, service: 'netbuffer', incarnation: 1_001, assignmentSeq: 0, agentIncarnation: 0, role: 'spare', epoch: 0, synced: false, ready: false, txEndSeqs: [], chunksStaged: 0, reportSeq: 1, followedAgentIncarnation: 0 },
      ]);
      expect(timersSet(started)).toEqual(new Map([[STATUS_TIMER, 1_000 + STATUS_INTERVAL_US]]));
      nb.handle(assign(assignment(VM, HOST, 'primary', TERM)), 2_000);
      const periodic = nb.handle(timer(STATUS_TIMER), 1_000 + STATUS_INTERVAL_US);
      expect(statuses(periodic)).toMatchObject([{ service: 'netbuffer', incarnation: 1_001, assignmentSeq: 1, agentIncarnation: AGENT_INCARNATION, role: 'primary', term: TERM }]);
      expect(timersSet(periodic)).toEqual(new Map([[STATUS_TIMER, 1_000 + 2 * STATUS_INTERVAL_US]]));
    });

    it('answers each assignment it takes, and a repeated one, with its status', () => {
      const nb = new NetbufferCore(options());
      nb.handle({ kind: 'start' }, 0);
      const a = assignment(VM, HOST, 'primary', TERM, { seq: 3 });
      expect(statuses(nb.handle(assign(a), 10))).toMatchObject([{ role: 'primary', term: TERM, assignmentSeq: 3 }]);
      expect(statuses(nb.handle(assign(a), 20))).toMatchObject([{ role: 'primary', term: TERM, assignmentSeq: 3 }]);
      expect(nb.staleAssignments).toBe(0);
    });

    it('ignores and counts a stale assignment (older seq, or an older agent incarnation)', () => {
      const nb = netbuffer();
      nb.handle(assign(assignment(VM, HOST, 'primary', TERM, { seq: 5 })), 0);
      const seg = data(1, 1);
      nb.handle(tx(seg), 0);
      expect(nb.handle(assign(assignment(VM, HOST, 'spare', TERM, { seq: 4 })), 0)).toEqual([]);
      expect(nb.handle(assign(assignment(VM, HOST, 'spare', TERM, { seq: 9, incarnation: AGENT_INCARNATION - 1 })), 0)).toEqual([]);
      expect(nb.staleAssignments).toBe(2);
      expect(nb.role).toBe('primary');
      expect(nb.subscriptions).toEqual([ASSIGN, s.permit, s.tx, s.commit]);
      expect(out(nb, commit(1))).toEqual([seg]);
    });

    it('takes an assignment of a newer agent incarnation even with a lower seq (a restarted agent)', () => {
      const nb = netbuffer();
      nb.handle(assign(assignment(VM, HOST, 'primary', TERM, { seq: 5 })), 0);
      nb.handle(assign(assignment(VM, HOST, 'spare', TERM, { seq: 1, incarnation: AGENT_INCARNATION + 1 })), 0);
      expect(nb.role).toBe('spare');
      expect(nb.staleAssignments).toBe(0);
    });
  });

  describe('release permit', () => {
    it('releases nothing without a permit, and a committed epoch once a permit arrives', () => {
      const nb = withoutPermit();
      const segs = [data(1, 1), data(1, 2)];
      for (const seg of segs) nb.handle(tx(seg), 0);
      expect(out(nb, commit(1), 10)).toEqual([]);
      expect(nb.stats.releasesWithoutPermit).toBe(1);
      expect(out(nb, grant(1_000), 20)).toEqual(segs);
      expect(nb.stats.heldBytes).toBe(0);
    });

    it("releases nothing under a permit granted to another host (its deadline is another host's clock), counted", () => {
      const nb = withoutPermit();
      nb.handle(tx(data(1, 1)), 0);
      expect(out(nb, message(s.permit, permit(VM, 'host-z', TERM, 1_000)), 5)).toEqual([]);
      expect(out(nb, commit(1), 10)).toEqual([]);
      expect(nb.permitsIgnored).toEqual({ stale: 0, foreign: 1 });
      expect(out(nb, grant(1_000), 20)).toHaveLength(1);
    });

    it('releases a committed epoch only while the permit lasts', () => {
      const nb = withoutPermit();
      nb.handle(grant(1_000), 0);
      const e1 = data(1, 1);
      const e2 = data(2, 2);
      nb.handle(tx(e1), 100);
      nb.handle(tx(e2), 200);
      expect(out(nb, commit(1), 999)).toEqual([e1]);
      expect(out(nb, commit(2), 1_000)).toEqual([]);
      expect(nb.stats.releasesWithoutPermit).toBe(1);
      expect(nb.stats.heldBytes).toBe(wireBytes(e2));
    });

    it("stops at the permit's deadline on its own clock, with no further message", () => {
      const nb = withoutPermit();
      nb.handle(grant(1_000), 0);
      nb.handle(tx(data(1, 1)), 0);
      expect(out(nb, commit(1), 500)).toHaveLength(1);
      // Segments of the committed epoch: let out at once just before the deadline, held from it on.
      const before = data(1, 2);
      expect(out(nb, tx(before), 999)).toEqual([before]);
      expect(out(nb, tx(data(1, 3)), 1_000)).toEqual([]);
      expect(out(nb, tx(data(1, 4)), 5_000)).toEqual([]);
      expect(nb.stats.heldBytes).toBe(2 * wireBytes(data(1, 3)));
      expect(nb.stats.segmentsReleased).toBe(2);
    });

    it('holds what commits after the deadline and releases it, in epoch then arrival order, when a new permit arrives', () => {
      const nb = withoutPermit();
      nb.handle(grant(1_000), 0);
      const e2 = [data(2, 20), data(2, 21)];
      const e3 = [data(3, 30)];
      const e4 = data(4, 40);
      for (const seg of [...e2, ...e3, e4]) nb.handle(tx(seg), 100);
      expect(out(nb, commit(1), 500)).toEqual([]); // nothing of epoch 1 held
      expect(out(nb, commit(3), 2_000)).toEqual([]);
      expect(nb.stats.releasesWithoutPermit).toBe(1);
      // A late segment of committed epoch 1 after the deadline waits too, ahead of the later epochs.
      const late = data(1, 10);
      expect(out(nb, tx(late), 2_100)).toEqual([]);
      expect(out(nb, grant(5_000), 2_200)).toEqual([late, ...e2, ...e3]);
      // The uncommitted epoch stays held until its commit.
      expect(nb.stats.heldBytes).toBe(wireBytes(e4));
      expect(out(nb, commit(4), 2_300)).toEqual([e4]);
    });

    it('is not extended by a delayed permit with an earlier deadline', () => {
      const nb = withoutPermit();
      nb.handle(grant(1_000), 0);
      nb.handle(grant(2_000), 10);
      nb.handle(grant(1_500), 20); // delayed on the bus: an older renewal
      nb.handle(tx(data(1, 1)), 100);
      expect(out(nb, commit(1), 1_999)).toHaveLength(1); // not cut short by the older renewal either
      nb.handle(tx(data(2, 2)), 2_000);
      expect(out(nb, commit(2), 2_000)).toEqual([]);
      // Copies of older renewals, late on the bus while output waits: their deadlines are past.
      expect(out(nb, grant(1_800), 2_050)).toEqual([]);
      expect(out(nb, grant(1_000), 2_100)).toEqual([]);
      expect(nb.stats.heldBytes).toBe(wireBytes(data(2, 2)));
    });

    it('ignores a delayed permit of an older term: it neither extends nor cuts short the deadline', () => {
      const nb = withoutPermit();
      nb.handle(grant(1_000), 0);
      const e1 = data(1, 1);
      nb.handle(tx(e1), 100);
      nb.handle(grant(Number.MAX_SAFE_INTEGER, TERM - 1), 200);
      expect(out(nb, commit(1), 300)).toEqual([e1]);
      nb.handle(tx(data(2, 2)), 400);
      expect(out(nb, grant(Number.MAX_SAFE_INTEGER, TERM - 1), 1_500)).toEqual([]);
      expect(out(nb, commit(2), 1_600)).toEqual([]);
      expect(nb.stats.releasesWithoutPermit).toBe(1);
    });

    it('lets nothing out under a permit of another term', () => {
      for (const term of [TERM - 1, TERM + 1]) {
        const nb = withoutPermit();
        nb.handle(grant(Number.MAX_SAFE_INTEGER, term), 0);
        nb.handle(tx(data(1, 1)), 10);
        expect(out(nb, commit(1), 20)).toEqual([]);
        expect(out(nb, tx(data(1, 2)), 30)).toEqual([]);
        expect(nb.stats.segmentsReleased).toBe(0);
        expect(nb.stats.releasesWithoutPermit).toBe(1);
      }
    });

    it('with the planted ignore-permit-expiry bug releases after the deadline (the auditor must catch it)', () => {
      const nb = withoutPermit({ plantedIgnorePermitExpiry: true });
      nb.handle(grant(1_000), 0);
      const seg = data(1, 1);
      nb.handle(tx(seg), 100);
      expect(out(nb, commit(1), 5_000)).toEqual([seg]);
      expect(nb.stats.releasesWithoutPermit).toBe(0);
    });
  });

  describe('property', () => {
    type Op = { kind: 'seg'; sender: number; bump: number; len: number; control: boolean } | { kind: 'commit'; back: number; ahead: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 4, arbitrary: fc.record({ kind: fc.constant('seg' as const), sender: fc.integer({ min: 0, max: 2 }), bump: fc.integer({ min: 0, max: 2 }), len: fc.integer({ min: 1, max: 400 }), control: fc.boolean() }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('commit' as const), back: fc.integer({ min: 0, max: 3 }), ahead: fc.integer({ min: 0, max: 2 }) }) },
    );

    it('releases exactly the held segments of committed epochs, in epoch then arrival order, each once; held bytes return to 0', () => {
      fc.assert(
        fc.property(fc.array(op, { maxLength: 120 }), fc.integer({ min: 1, max: 8 }), fc.boolean(), (ops, boundSegments, holdData) => {
          const max = boundSegments * (TCP_IP_HEADER_BYTES + 200);
          const nb = netbuffer({ heldBytesMax: max, holdData });
          const senderEpoch = [1, 1, 1];
          let seq = 0;
          let committed = 0;
          let heldBytes = 0;
          let refused = 0;
          /** The model: accepted, not yet released segments. */
          let model: Segment[] = [];
          const released = new Set<number>();
          const accepted = new Set<number>();
          const check = (got: Segment[], expected: Segment[]) => {
            expect(got.map((x) => x.seq)).toEqual(expected.map((x) => x.seq));
            for (const x of got) {
              expect(released.has(x.seq)).toBe(false);
              released.add(x.seq);
            }
          };
          for (const o of ops) {
            if (o.kind === 'seg') {
              senderEpoch[o.sender]! += o.bump;
              const seg = o.control ? pureAck(senderEpoch[o.sender]!, seq++) : data(senderEpoch[o.sender]!, seq++, o.len);
              const got = out(nb, tx(seg));
              if (!holdData && seg.payload.length > 0) {
                expect(got).toEqual([]);
              } else if (seg.epoch <= committed) {
                accepted.add(seg.seq);
                check(got, [seg]);
              } else if (heldBytes + wireBytes(seg) > max) {
                refused++;
                expect(got).toEqual([]);
              } else {
                accepted.add(seg.seq);
                heldBytes += wireBytes(seg);
                model.push(seg);
                expect(got).toEqual([]);
              }
            } else {
              const epoch = Math.max(0, committed - o.back + o.ahead);
              const got = out(nb, commit(epoch));
              if (epoch <= committed) {
                expect(got).toEqual([]);
              } else {
                committed = epoch;
                const due = model.filter((x) => x.epoch <= epoch);
                // Stable sort: by epoch, then arrival.
                due.sort((a, b) => a.epoch - b.epoch);
                check(got, due);
                model = model.filter((x) => x.epoch > epoch);
                heldBytes -= due.reduce((n, x) => n + wireBytes(x), 0);
              }
            }
            expect(nb.stats.heldBytes).toBe(heldBytes);
            expect(nb.stats.heldBytes).toBeLessThanOrEqual(max);
            expect(nb.stats.segmentsRefused).toBe(refused);
            expect(nb.stats.lastCommittedEpoch).toBe(committed);
          }
          const last = Math.max(...senderEpoch);
          if (last > committed) check(out(nb, commit(last)), [...model].sort((a, b) => a.epoch - b.epoch));
          expect(nb.stats.heldBytes).toBe(0);
          expect([...released].sort((a, b) => a - b)).toEqual([...accepted].sort((a, b) => a - b));
          expect(nb.stats.segmentsReleased).toBe(released.size);
        }),
        { numRuns: 300 },
      );
    });
  });
});

describe('NetbufferCore, adaptive epochs', () => {
  const QUIET_US = 300;
  const watched = () => netbuffer({ outputWatch: { quietUs: QUIET_US, maxConnections: 16, subject: s.outputIdle } });

  it('reports held output quiet for quietUs to the checkpointer, with what it holds; a commit ends the watch', () => {
    const nb = watched();
    expect(timersSet(nb.handle(tx(data(4, 10)), 1_000)).get(TIMER_OUTPUT_IDLE)).toBe(1_000 + QUIET_US);
    nb.handle(tx(data(4, 110)), 1_100);
    expect(sentOn(nb.handle(timer(TIMER_OUTPUT_IDLE), 1_300), s.outputIdle)).toEqual([]); // still sending at 1,100
    const reports = sentOn(nb.handle(timer(TIMER_OUTPUT_IDLE), 1_400), s.outputIdle);
    expect(reports).toEqual([{ type: 'outputIdle', vmId: VM, term: TERM, epoch: 4, connId: 1, heldBytes: 2 * wireBytes(data(4, 10)) }]);
    nb.handle(commit(4), 1_500);
    nb.handle(tx(data(5, 210)), 1_600);
    nb.handle(commit(5), 1_700);
    expect(sentOn(nb.handle(timer(TIMER_OUTPUT_IDLE), 1_900), s.outputIdle)).toEqual([]); // committed before it went quiet
    expect(nb.outputWatchStats).toEqual({ idleReports: 1, unwatchedConnections: 0, backloggedChecks: 0 });
  });

  it('reports nothing for output it releases at once, nor without the option', () => {
    const nb = watched();
    nb.handle(commit(4), 0);
    expect(timersSet(nb.handle(tx(data(4, 10)), 1_000)).has(TIMER_OUTPUT_IDLE)).toBe(false);
    const fixed = netbuffer();
    expect(timersSet(fixed.handle(tx(data(1, 10)), 1_000)).has(TIMER_OUTPUT_IDLE)).toBe(false);
    expect(fixed.outputWatchStats).toBeNull();
  });
});
