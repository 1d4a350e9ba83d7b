import { assert } from '../assert.js';

/**
 * Which packets are traced, decided the same way by every service without
 * telling each other: a packet is sampled when it carries a sampled byte,
 * and the sampled bytes of a connection's stream are one in every
 * `strideBytes`, at offsets ≡ phase (mod stride), the phase a hash of the VM
 * and connection. The guest's segment that carries one is the packet whose
 * path is traced: its emit, its hold, the wire segment that carries that
 * byte (whatever the acker's segmentation), its delivery.
 */
export interface Sampler {
  /** The sampled byte in [startOffset, endOffset), or null. */
  sampledIn(connId: number, startOffset: number, endOffset: number): number | null;
}

/** A stride for `rate` of full segments of `mssBytes`: each such segment carries one sampled byte at rate 1. */
export function strideBytesFor(rate: number, mssBytes: number): number {
  assert(rate > 0 && rate <= 1, () => `sample rate ${rate} outside (0, 1]`);
  return Math.max(1, Math.round(mssBytes / rate));
}

function phaseOf(vmId: string, connId: number, strideBytes: number): number {
  let h = 2166136261;
  const text = `${vmId}/${connId}`;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h % strideBytes;
}

/** Connections whose phase is remembered; beyond, the memory starts over (a phase is cheap to compute again). */
export const MAX_REMEMBERED_CONNECTIONS = 64;

/** `remembered`: connections whose phase is kept now (never more than MAX_REMEMBERED_CONNECTIONS). */
export function sampler(vmId: string, strideBytes: number): Sampler & { readonly remembered: number } {
  assert(Number.isSafeInteger(strideBytes) && strideBytes >= 1, () => `stride ${strideBytes}`);
  const phases = new Map<number, number>();
  return {
    get remembered() {
      return phases.size;
    },
    sampledIn(connId, startOffset, endOffset) {
      if (endOffset <= startOffset) return null;
      let phase = phases.get(connId);
      if (phase === undefined) {
        phase = phaseOf(vmId, connId, strideBytes);
        if (phases.size >= MAX_REMEMBERED_CONNECTIONS) phases.clear();
        phases.set(connId, phase);
      }
      const first = startOffset + ((((phase - startOffset) % strideBytes) + strideBytes) % strideBytes);
      return first < endOffset ? first : null;
    },
  };
}

/** Nothing is sampled: tracing off costs one call per segment. */
export const NO_SAMPLER: Sampler = { sampledIn: () => null };

/** Connection ids a byte key tells apart (MAX_CONNECTIONS is far below). */
const KEYED_CONNECTIONS = 256;

/**
 * One number per (connection, stream offset), for maps of sampled bytes: two
 * connections may sample the same offsets (their phases can be equal), and
 * their bytes are not the same. Exact for offsets below 2^45.
 */
export function sampledByteKey(connId: number, offset: number): number {
  assert(Number.isInteger(connId) && connId >= 0 && connId < KEYED_CONNECTIONS, () => `connection id ${connId} beyond a byte key's ${KEYED_CONNECTIONS}`);
  return offset * KEYED_CONNECTIONS + connId;
}
