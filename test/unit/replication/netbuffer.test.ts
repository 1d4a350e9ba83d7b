import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TcpFlag, type Segment } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { START } from '../../../lib/runtime/types.js';
import { TCP_IP_HEADER_BYTES } from '../../../lib/tcp/header.js';
import { NetbufferCore, type NetbufferOptions } from '../../../services/netbuffer/core.js';
import { message, segment, segmentsOn, VM } from './support.js';

const s = subjects(VM);

function netbuffer(overrides: Partial<NetbufferOptions> = {}): NetbufferCore {
  return new NetbufferCore({ vmId: VM, txSubject: s.tx, commitSubject: s.commit, outSubject: s.wireOut, heldBytesMax: 1 << 20, holdData: true, ...overrides });
}

/** A data segment of `len` bytes; `seq` doubles as its identity in these tests. */
const data = (epoch: number, seq: number, len = 100): Segment => segment({ epoch, seq, flags: TcpFlag.ACK, payload: new Uint8Array(len).fill(seq & 0xff) });
const pureAck = (epoch: number, seq: number): Segment => segment({ epoch, seq, flags: TcpFlag.ACK });
const commit = (epoch: number) => message(s.commit, { type: 'epochCommit', vmId: VM, term: 0, epoch });
const tx = (seg: Segment) => message(s.tx, seg);
const out = (nb: NetbufferCore, input: ReturnType<typeof message>) => segmentsOn(nb.handle(input, 0), s.wireOut);
const wireBytes = (seg: Segment) => seg.payload.length + TCP_IP_HEADER_BYTES;

describe('NetbufferCore', () => {
  it('subscribes to the guest segments and the commits', () => {
    expect(netbuffer().subscriptions).toEqual([s.tx, s.commit]);
  });

  it('releases epoch N only after COMMIT(N)', () => {
    const nb = netbuffer();
    const segs = [data(1, 10), data(1, 20), pureAck(1, 30)];
    for (const seg of segs) expect(out(nb, tx(seg))).toEqual([]);
    expect(nb.handle(START, 0)).toEqual([]);
    expect(out(nb, commit(1))).toEqual(segs);
    expect(nb.stats.segmentsReleased).toBe(3);
    expect(nb.stats.lastCommittedEpoch).toBe(1);
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
    const control = [segment({ epoch: 1, seq: 1, flags: TcpFlag.SYN | TcpFlag.ACK, wscale: 7 }), pureAck(1, 2), segment({ epoch: 1, seq: 3, flags: TcpFlag.FIN | TcpFlag.ACK })];
    nb.handle(tx(control[0]!), 0);
    expect(out(nb, tx(data(1, 10)))).toEqual([]);
    nb.handle(tx(control[1]!), 0);
    nb.handle(tx(control[2]!), 0);
    expect(nb.stats.heldBytes).toBe(3 * TCP_IP_HEADER_BYTES);
    expect(out(nb, commit(1))).toEqual(control);
    // Not even a data segment of a committed epoch goes out through the netbuffer.
    expect(out(nb, tx(data(1, 20)))).toEqual([]);
    expect(nb.stats).toMatchObject({ heldBytes: 0, segmentsReleased: 3, segmentsRefused: 0 });
  });

  it('ignores timers and messages it does not handle', () => {
    const nb = netbuffer();
    expect(nb.handle({ kind: 'timer', name: 'x' }, 0)).toEqual([]);
    expect(nb.handle(message(s.epoch, { type: 'epochBarrier', vmId: VM, term: 0, epoch: 1, resume: false, base: false }), 0)).toEqual([]);
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
