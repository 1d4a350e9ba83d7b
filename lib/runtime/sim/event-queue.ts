/**
 * Binary min-heap of events ordered by (atUs, insertion order), so events at
 * the same instant run in the order they were scheduled: a stable tie-break
 * is what makes a seed replay bit-for-bit.
 *
 * Events can also be pushed into a lane: a FIFO whose events come in time
 * order (a link's deliveries). Only a lane's head sits in the heap, so the
 * heap holds a few entries instead of every packet in flight (hundreds at
 * 1 Gbit/s), and the pop order is exactly that of one heap: each lane is
 * sorted by (atUs, order) and its head is its least event.
 */
export interface QueuedEvent {
  atUs: number;
  order: number;
  /** Set by the queue: the lane the event came from, if any. */
  lane?: EventLane<QueuedEvent> | null;
}

/** Popped events a lane keeps before it drops them (each drop moves the rest, so not at every pop). */
const LANE_COMPACT_MIN = 1024;

/** A FIFO of events in non-decreasing time; its head is in the heap, the rest wait here. */
export class EventLane<E extends QueuedEvent> {
  readonly items: E[] = [];
  head = 0;
  /** Time of the last event pushed (the lane's tail), or -Infinity when empty. */
  tailUs = -Infinity;
}

export class EventQueue<E extends QueuedEvent> {
  #heap: E[] = [];
  #nextOrder = 0;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  push(event: E): void {
    event.order = this.#nextOrder++;
    event.lane = null;
    this.#size++;
    this.#insert(event);
  }

  /**
   * Pushes `event` behind the lane's tail. An event earlier than the tail
   * (a lane's times went back) goes into the heap on its own, which orders it
   * just as well: lanes are a speed-up, never a change of order.
   */
  pushToLane(lane: EventLane<E>, event: E): void {
    if (event.atUs < lane.tailUs) {
      this.push(event);
      return;
    }
    event.order = this.#nextOrder++;
    event.lane = lane as EventLane<QueuedEvent>;
    this.#size++;
    lane.tailUs = event.atUs;
    lane.items.push(event);
    // A lane that ran dry was reset when its last event was popped: a lone event is its head.
    if (lane.items.length - lane.head === 1) this.#insert(event);
  }

  peek(): E | undefined {
    return this.#heap[0];
  }

  pop(): E | undefined {
    const heap = this.#heap;
    const top = heap[0];
    if (top === undefined) return undefined;
    this.#size--;
    const lane = top.lane as EventLane<E> | null | undefined;
    if (lane) {
      lane.head++;
      // A lane that never runs dry would keep every event it ever had: drop the popped half now and then.
      if (lane.head >= LANE_COMPACT_MIN && 2 * lane.head >= lane.items.length) {
        lane.items.splice(0, lane.head);
        lane.head = 0;
      }
      if (lane.head < lane.items.length) {
        // The lane's next event takes the head's place: one sift instead of a pop and a push.
        this.#siftDown(lane.items[lane.head]!);
        return top;
      }
      lane.items.length = 0;
      lane.head = 0;
      lane.tailUs = -Infinity;
    }
    const last = heap.pop()!;
    if (heap.length > 0) this.#siftDown(last);
    return top;
  }

  #insert(event: E): void {
    const heap = this.#heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent]!;
      if (!before(event, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = event;
  }

  /** Puts `event` at the root and moves it down to its place. */
  #siftDown(event: E): void {
    const heap = this.#heap;
    const n = heap.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(heap[r]!, heap[l]!) ? r : l;
      if (!before(heap[c]!, event)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = event;
  }
}

function before(a: QueuedEvent, b: QueuedEvent): boolean {
  return a.atUs < b.atUs || (a.atUs === b.atUs && a.order < b.order);
}
