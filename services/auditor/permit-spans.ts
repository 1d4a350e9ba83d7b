import { assert } from '../../lib/assert.js';

/**
 * Disjoint spans a host keeps at most. A new one starts only where the
 * host's permits ran out before the next (a lease store that did not
 * answer for longer than a permit lasts): a few per run at most.
 */
export const MAX_PERMIT_SPANS = 16;

/**
 * Where the permits of one host under one term let its output leave, on
 * its own clock: the union of their [fromUs, untilUs), kept as disjoint
 * spans in time order. A permit exists from the send of the renewal it
 * comes from, so output in a hole between spans left under no permit,
 * whatever permit came after.
 */
export class PermitSpans {
  readonly #spans: { fromUs: number; untilUs: number }[] = [];
  /** Holes between the two oldest spans taken as covered, at MAX_PERMIT_SPANS. */
  bridged = 0;

  add(fromUs: number, untilUs: number): void {
    assert(fromUs < untilUs, () => `a permit from ${fromUs} µs until ${untilUs} µs`);
    const spans = this.#spans;
    let i = spans.findIndex((s) => s.fromUs > fromUs);
    if (i < 0) i = spans.length;
    spans.splice(i, 0, { fromUs, untilUs });
    // Permits overlap (each lasts many renewal intervals): a span that starts before the one ahead of it ends joins it.
    for (let k = 1; k < spans.length; ) {
      const prev = spans[k - 1]!;
      const cur = spans[k]!;
      if (cur.fromUs > prev.untilUs) k++;
      else {
        prev.untilUs = Math.max(prev.untilUs, cur.untilUs);
        spans.splice(k, 1);
      }
    }
    if (spans.length > MAX_PERMIT_SPANS) {
      const [first, second] = spans;
      second!.fromUs = first!.fromUs;
      spans.shift();
      this.bridged++;
    }
  }

  covers(atUs: number): boolean {
    for (const s of this.#spans) if (s.fromUs <= atUs && atUs < s.untilUs) return true;
    return false;
  }

  get spans(): readonly { readonly fromUs: number; readonly untilUs: number }[] {
    return this.#spans;
  }
}
