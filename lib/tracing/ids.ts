import type { SpanName, SpanRef, TraceKey } from './model.js';

/**
 * Trace and span ids from the protocol's identity: W3C sizes (16 and 8
 * bytes, lowercase hex, never all zero), the same in every process. Each 32
 * bits is a 32-bit FNV-1a of the key's text with its own offset basis: ids
 * only have to be unique among a deployment's traces, not secret, and a
 * span is hashed on the hot path of a traced run.
 */
const FNV_PRIME_32 = 16777619;
/** FNV-1a's offset basis, then others from the golden-ratio sequence: independent halves. */
const BASES = [0x811c9dc5, 0x9e3779b9, 0x3c6ef372, 0xdaa66d2b];

function fnv1a32(text: string, basis: number): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), FNV_PRIME_32) >>> 0;
  return h;
}

const hex32 = (n: number) => n.toString(16).padStart(8, '0');

function hexId(text: string, words: number): string {
  let id = '';
  for (let i = 0; i < words; i++) id += hex32(fnv1a32(text, BASES[i]!));
  // All zero is not a valid W3C id.
  return /^0+$/.test(id) ? `${id.slice(0, -1)}1` : id;
}

export function traceKeyText(key: TraceKey): string {
  return key.kind === 'segment' ? `segment/${key.vmId}/${key.connId}/${key.offset}` : `epoch/${key.vmId}/${key.epoch}`;
}

/** 32 hex digits. */
export function traceIdOf(key: TraceKey): string {
  return hexId(traceKeyText(key), 4);
}

/**
 * A replay is the byte's release in its term: a term's holder sends a byte
 * first either from what its guest gave it (`wire.release`) or from a
 * checkpoint (`replay`), never both, and the client names the release of
 * the term whose segment brought the byte without knowing which it was.
 */
const SLOT: Partial<Record<SpanName, SpanName>> = { replay: 'wire.release' };

/** 16 hex digits, from the trace and the occurrence of the step. */
export function spanIdOf(key: TraceKey, ref: SpanRef): string {
  const site = ref.site === undefined ? '' : `@${ref.site}`;
  return hexId(`${traceKeyText(key)}#${SLOT[ref.name] ?? ref.name}#${ref.instance ?? 0}#${ref.term}${site}`, 2);
}
