import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventLane, EventQueue, type QueuedEvent } from '../../../lib/runtime/sim/event-queue.js';

interface Ev extends QueuedEvent {
  readonly id: number;
}

const ev = (id: number, atUs: number): Ev => ({ id, atUs, order: 0, lane: null });

function drain(queue: EventQueue<Ev>): Ev[] {
  const out: Ev[] = [];
  for (let e = queue.pop(); e !== undefined; e = queue.pop()) out.push(e);
  return out;
}

/** The reference: a stable sort by time keeps insertion order among equal times. */
const reference = (times: readonly number[]): number[] =>
  times
    .map((atUs, id) => ({ id, atUs }))
    .sort((a, b) => a.atUs - b.atUs)
    .map((e) => e.id);

describe('EventQueue', () => {
  it('pops events in the order of a stable sort by time, for any pushes', () => {
    // A narrow range of times forces many ties.
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 300 }), (times) => {
        const queue = new EventQueue<Ev>();
        times.forEach((t, id) => queue.push(ev(id, t)));
        expect(drain(queue).map((e) => e.id)).toEqual(reference(times));
      }),
    );
  });

  it('keeps (time, insertion order) when pops are interleaved with pushes', () => {
    // Ops: a number pushes an event at that time; null pops. The reference is
    // a list kept sorted by (time, id), ids being insertion order.
    fc.assert(
      fc.property(fc.array(fc.option(fc.integer({ min: 0, max: 10 }), { nil: null }), { maxLength: 300 }), (ops) => {
        const queue = new EventQueue<Ev>();
        const model: Ev[] = [];
        let nextId = 0;
        for (const op of ops) {
          if (op === null) {
            const expected = model.shift();
            expect(queue.pop()?.id).toBe(expected?.id);
          } else {
            const e = ev(nextId++, op);
            queue.push(e);
            let i = model.length;
            while (i > 0 && model[i - 1]!.atUs > e.atUs) i--;
            model.splice(i, 0, { ...e });
          }
          expect(queue.size).toBe(model.length);
          expect(queue.peek()?.id).toBe(model[0]?.id);
        }
      }),
    );
  });

  it('runs events scheduled for the same instant in the order they were pushed', () => {
    const queue = new EventQueue<Ev>();
    for (let id = 0; id < 50; id++) queue.push(ev(id, 1000));
    expect(drain(queue).map((e) => e.id)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('orders a later-pushed event with an equal time after an earlier one even after other pops', () => {
    const queue = new EventQueue<Ev>();
    queue.push(ev(0, 5));
    queue.push(ev(1, 1));
    expect(queue.pop()?.id).toBe(1);
    queue.push(ev(2, 5));
    queue.push(ev(3, 5));
    expect(drain(queue).map((e) => e.id)).toEqual([0, 2, 3]);
  });

  it('returns undefined from pop and peek when empty', () => {
    const queue = new EventQueue<Ev>();
    expect(queue.pop()).toBeUndefined();
    expect(queue.peek()).toBeUndefined();
    expect(queue.size).toBe(0);
  });

  it('pops lane and heap events interleaved in exactly the order of one heap, whatever the lanes are given', () => {
    // Ops: [time, lane] pushes (lane -1: the heap; a lane's times mostly rise,
    // but may go back); null pops. The reference is one plain heap fed the same events.
    const op = fc.option(fc.tuple(fc.integer({ min: 0, max: 12 }), fc.integer({ min: -1, max: 2 })), { nil: null });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const queue = new EventQueue<Ev>();
        const plain = new EventQueue<Ev>();
        const lanes = [new EventLane<Ev>(), new EventLane<Ev>(), new EventLane<Ev>()];
        const clock = [0, 0, 0];
        let nextId = 0;
        for (const o of ops) {
          if (o === null) {
            expect(queue.pop()?.id).toBe(plain.pop()?.id);
          } else {
            const [dt, lane] = o;
            // Lane times rise by dt, except a dt of 12 steps back 5 (a lane that went back).
            const atUs = lane < 0 ? dt : (clock[lane] = Math.max(0, clock[lane]! + (dt === 12 ? -5 : dt)));
            const id = nextId++;
            if (lane < 0) queue.push(ev(id, atUs));
            else queue.pushToLane(lanes[lane]!, ev(id, atUs));
            plain.push(ev(id, atUs));
          }
          expect(queue.size).toBe(plain.size);
          expect(queue.peek()?.id).toBe(plain.peek()?.id);
        }
        expect(drain(queue).map((e) => e.id)).toEqual(drain(plain).map((e) => e.id));
      }),
    );
  });

  it('keeps a lane in the heap by its head only', () => {
    const queue = new EventQueue<Ev>();
    const lane = new EventLane<Ev>();
    for (let id = 0; id < 100; id++) queue.pushToLane(lane, ev(id, 10 * id));
    expect(queue.size).toBe(100);
    expect(lane.items.length - lane.head).toBe(100);
    expect(drain(queue).map((e) => e.id)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(lane.items.length).toBe(0);
  });

  it('keeps the order across a lane that never runs dry long enough to be compacted', () => {
    // Two lanes fed faster than they drain, past the compaction threshold, against one plain heap.
    const queue = new EventQueue<Ev>();
    const plain = new EventQueue<Ev>();
    const lanes = [new EventLane<Ev>(), new EventLane<Ev>()];
    let id = 0;
    for (let step = 0; step < 5000; step++) {
      for (const [i, lane] of lanes.entries()) {
        const e = ev(id++, step * 2 + i);
        queue.pushToLane(lane, e);
        plain.push(ev(e.id, e.atUs));
      }
      if (step % 3 !== 0) {
        expect(queue.pop()?.id).toBe(plain.pop()?.id);
        expect(queue.pop()?.id).toBe(plain.pop()?.id);
      }
    }
    expect(lanes.every((l) => l.head < 2048)).toBe(true); // compacted, not kept whole
    expect(drain(queue).map((e) => e.id)).toEqual(drain(plain).map((e) => e.id));
  });
});
