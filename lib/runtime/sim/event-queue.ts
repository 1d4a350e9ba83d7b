/**
 * Binary min-heap of events ordered by (atUs, insertion order), so events at
 * the same instant run in the order they were scheduled: a stable tie-break
 * is what makes a seed replay bit-for-bit.
 */
export interface QueuedEvent {
  atUs: number;
  order: number;
}

export class EventQueue<E extends QueuedEvent> {
  #heap: E[] = [];
  #nextOrder = 0;

  get size(): number {
    return this.#heap.length;
  }

  push(event: E): void {
    event.order = this.#nextOrder++;
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

  peek(): E | undefined {
    return this.#heap[0];
  }

  pop(): E | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    const n = heap.length;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && before(heap[r]!, heap[l]!) ? r : l;
      if (!before(heap[c]!, last)) break;
      heap[i] = heap[c]!;
      i = c;
    }
    heap[i] = last;
    return top;
  }
}

function before(a: QueuedEvent, b: QueuedEvent): boolean {
  return a.atUs < b.atUs || (a.atUs === b.atUs && a.order < b.order);
}
