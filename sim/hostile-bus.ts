import type { WireMessage } from '../lib/codec/messages.js';
import { assert } from '../lib/assert.js';
import type { Rng } from '../lib/rng.js';

/** What a hostile publisher did. */
export interface HostileBusStats {
  forged: number;
}

/** Numbers a forged field takes: off by one either way, zero, far ahead, and the largest a uint32 holds. */
const NUMBER_FORGERIES = [(v: number) => Math.max(0, v - 1), (v: number) => v + 1, () => 0, (v: number) => v + 1_000_000, () => 0xffff_ffff] as const;

/**
 * A publisher with the credentials of the services it impersonates: with
 * probability `share` (a number, or one per message) a message in flight is replaced by a forgery of it, one
 * field changed (a stale or future term or epoch, a number far out of range,
 * a corrupted or truncated payload or hash, another host or VM, a flag
 * flipped). The original is lost, which the protocol recovers from; what a
 * core must survive is the forgery. Draws come from its own seeded stream.
 */
export class HostileBus {
  readonly stats: HostileBusStats = { forged: 0 };

  constructor(
    readonly rng: Rng,
    readonly hosts: readonly string[],
    /** Share of the messages forged, the same for all or one per message (0: never forged). */
    readonly share: number | ((subject: string, msg: WireMessage) => number),
  ) {}

  tamper(subject: string, msg: WireMessage): WireMessage {
    const share = typeof this.share === 'number' ? this.share : this.share(subject, msg);
    assert(share >= 0 && share <= 1, () => `forged share ${share} for ${msg.type}`);
    if (share === 0 || !this.rng.chance(share)) return msg;
    const fields = Object.keys(msg).filter((k) => k !== 'type');
    if (fields.length === 0) return msg;
    const field = fields[this.rng.int(fields.length)]!;
    const value = (msg as unknown as Record<string, unknown>)[field];
    this.stats.forged++;
    return { ...msg, [field]: this.#forge(value) } as WireMessage;
  }

  #forge(value: unknown): unknown {
    if (typeof value === 'number') return NUMBER_FORGERIES[this.rng.int(NUMBER_FORGERIES.length)]!(value);
    if (typeof value === 'boolean') return !value;
    if (typeof value === 'string') return this.rng.chance(0.5) ? this.hosts[this.rng.int(this.hosts.length)]! : 'forged';
    if (value instanceof Uint8Array) {
      if (value.length === 0 || this.rng.chance(0.3)) return value.subarray(0, value.length >> 1);
      const copy = value.slice();
      const at = this.rng.int(copy.length);
      copy[at] = copy[at]! ^ 0xff;
      return copy;
    }
    return value;
  }
}
