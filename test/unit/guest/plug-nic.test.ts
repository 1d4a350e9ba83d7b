/**
 * PlugNic: the guest's NIC in front of a plug that pushes back. It sends
 * while the output of uncommitted epochs leaves room under the limit, holds
 * the rest in order until a commit frees room, sends it in the epoch then
 * running (it reaches the plug after that epoch's marker), and drops only
 * beyond its own queue.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Segment } from '../../../lib/codec/messages.js';
import { plugBytesOf } from '../../../lib/tcp/header.js';
import { PlugNic } from '../../../services/guest/plug-nic.js';
import { segment } from '../support/segments.js';

/** A segment of `epoch` taking `bytes` in the plug (its payload plus 52 B of headers). */
const seg = (epoch: number, bytes: number, seq = 0): Segment => segment({ epoch, seq, payload: new Uint8Array(bytes - 52) });

function nic(limitBytes: number, maxQueued = 100) {
  const n = new PlugNic(limitBytes, maxQueued);
  const sent: Segment[] = [];
  return { n, sent, send: (s: Segment) => sent.push(s) };
}

describe('PlugNic', () => {
  it('sends while the plug has room, holds the rest in order, and a commit lets out what fits, in the epoch then running', () => {
    const { n, sent, send } = nic(3_000);
    for (let i = 0; i < 5; i++) n.transmit(seg(1, 1_000, i), send);
    expect(sent.map((s) => s.seq)).toEqual([0, 1, 2]);
    expect(n).toMatchObject({ heldBytes: 3_000, queuedSegments: 2 });
    n.committed(1, 3, send);
    // Epoch 1's room is free; the two that waited reach the plug during epoch 3, and are held until it commits.
    expect(sent.map((s) => [s.seq, s.epoch])).toEqual([[0, 1], [1, 1], [2, 1], [3, 3], [4, 3]]);
    expect(n).toMatchObject({ heldBytes: 2_000, queuedSegments: 0 });
    expect(n.stats).toEqual({ segmentsQueued: 2, queueDrops: 0, maxQueuedSegments: 2, staleCommits: 0 });
    // The checkpointer repeats its commits: a repeat is a counted no-op.
    n.committed(1, 3, send);
    expect(sent).toHaveLength(5);
    expect(n.stats.staleCommits).toBe(1);
  });

  it('keeps order: a segment that would fit still waits behind one that does not', () => {
    const { n, sent, send } = nic(3_000);
    n.transmit(seg(1, 2_500, 0), send);
    n.transmit(seg(1, 1_000, 1), send); // does not fit: waits
    n.transmit(seg(1, 100, 2), send); // would fit, but goes after 1
    expect(sent.map((s) => s.seq)).toEqual([0]);
    n.committed(1, 2, send);
    expect(sent.map((s) => s.seq)).toEqual([0, 1, 2]);
  });

  it('frees only the committed epochs’ room, and a repeated commit changes nothing', () => {
    const { n, sent, send } = nic(3_000);
    n.transmit(seg(1, 1_000, 0), send);
    n.transmit(seg(2, 2_000, 1), send);
    n.transmit(seg(3, 1_500, 2), send); // waits: 3,000 held
    n.committed(1, 3, send); // 1,000 freed: 1,500 still does not fit in 1,000
    expect(sent.map((s) => s.seq)).toEqual([0, 1]);
    n.committed(2, 3, send);
    expect(sent.map((s) => s.seq)).toEqual([0, 1, 2]);
    expect(n.heldBytes).toBe(1_500);
    n.committed(2, 3, send);
    expect(n.heldBytes).toBe(1_500);
  });

  it('an empty plug takes a segment larger than its limit, so that it cannot wait for ever', () => {
    const { n, sent, send } = nic(1_000);
    n.transmit(seg(1, 1_500), send);
    expect(sent).toHaveLength(1);
  });

  it('drops beyond its own queue, counted, and sends nothing of it later', () => {
    const { n, sent, send } = nic(1_000, 2);
    for (let i = 0; i < 5; i++) n.transmit(seg(1, 1_000, i), send);
    expect(n.stats).toMatchObject({ segmentsQueued: 2, queueDrops: 2, maxQueuedSegments: 2 });
    n.committed(1, 2, send);
    n.committed(2, 3, send);
    expect(sent.map((s) => s.seq)).toEqual([0, 1, 2]);
  });

  it('never lets the uncommitted output in the plug pass its limit, and sends every segment it does not drop exactly once and in order', () => {
    type Op = { kind: 'send'; bytes: number } | { kind: 'commit' } | { kind: 'epoch' };
    const op: fc.Arbitrary<Op> = fc.oneof(
      { weight: 6, arbitrary: fc.record({ kind: fc.constant('send' as const), bytes: fc.integer({ min: 52, max: 1_500 }) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('commit' as const) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('epoch' as const) }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 1_500, max: 10_000 }), (ops, limit) => {
        const { n, sent, send } = nic(limit, 20);
        let epoch = 1;
        let committed = 0;
        let seq = 0;
        const plugged = () => sent.filter((s) => s.epoch > committed).reduce((a, s) => a + plugBytesOf(s), 0);
        for (const o of ops) {
          if (o.kind === 'send') n.transmit(seg(epoch, o.bytes, seq++), send);
          else if (o.kind === 'commit') {
            committed = Math.max(committed, epoch - 1);
            n.committed(committed, epoch, send);
          } else epoch++;
          const inPlug = plugged();
          expect(inPlug).toBe(n.heldBytes);
          // Over the limit only by a lone segment an empty plug took.
          if (inPlug > limit) expect(sent.filter((s) => s.epoch > committed)).toHaveLength(1);
          // No segment carries an epoch later than the one running.
          expect(sent.every((s) => s.epoch <= epoch)).toBe(true);
        }
        const seqs = sent.map((s) => s.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect(new Set(seqs).size).toBe(seqs.length);
        expect(seqs.length + n.queuedSegments + n.stats.queueDrops).toBe(seq);
      }),
      { numRuns: 300 },
    );
  });
});
