import { assert } from '../assert.js';

/** Transmissions remembered for sampling: far more segments than a window holds; beyond it the oldest go (fewer samples, never a wrong one). */
export const RTT_SAMPLER_MAX_REMEMBERED = 65_536;

/**
 * RTT samples from an ACK of data sent once, for a sender whose segments
 * carry no timestamps of its own (the acker's wire side): the time since the
 * newest segment the ACK covers left, as Linux takes the congestion
 * controller's sample (`ca_rtt` from the last acknowledged skb). Every ACK of
 * new data yields one, as HyStart needs. Karn's rule: a retransmission
 * forgets every earlier transmission, so no sample spans a resend.
 */
export class RttSampler {
  readonly #endSeqs: number[] = [];
  readonly #sentAtUs: number[] = [];
  #head = 0;

  /** Data [seq, seq + len) left at `nowUs`. */
  sent(seq: number, len: number, retransmit: boolean, nowUs: number): void {
    if (retransmit) {
      this.clear();
      return;
    }
    const n = this.#endSeqs.length;
    assert(n === this.#head || this.#endSeqs[n - 1]! <= seq + len, () => `transmissions out of order: ${seq + len} after ${this.#endSeqs[n - 1]}`);
    this.#endSeqs.push(seq + len);
    this.#sentAtUs.push(nowUs);
    if (n - this.#head >= RTT_SAMPLER_MAX_REMEMBERED) this.#head++;
    this.#compact();
  }

  /** An ACK of everything below `ack` arrived at `nowUs`: its sample, or null when it covers no segment sent once. */
  acked(ack: number, nowUs: number): number | null {
    let sample: number | null = null;
    while (this.#head < this.#endSeqs.length && this.#endSeqs[this.#head]! <= ack) {
      sample = nowUs - this.#sentAtUs[this.#head]!;
      this.#head++;
    }
    this.#compact();
    return sample;
  }

  /** Transmissions remembered now. */
  get remembered(): number {
    return this.#endSeqs.length - this.#head;
  }

  clear(): void {
    this.#endSeqs.length = 0;
    this.#sentAtUs.length = 0;
    this.#head = 0;
  }

  #compact(): void {
    if (this.#head > 4096 && this.#head * 2 > this.#endSeqs.length) {
      this.#endSeqs.splice(0, this.#head);
      this.#sentAtUs.splice(0, this.#head);
      this.#head = 0;
    }
  }
}
