import type { SpanName, TraceKey } from './model.js';

/**
 * Trace and span ids from the protocol's identity: W3C sizes (16 and 8
 * bytes, lowercase hex, never all zero), the same in every process. A
 * 64-bit FNV-1a over the key's text, twice with different bases for the
 * trace id: ids only have to be unique among a deployment's traces, not
 * secret.
 */
const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK_64 = (1n << 64n) - 1n;

function fnv1a64(text: string, basis = FNV_OFFSET): bigint {
  let h = basis;
  for (let i = 0; i < text.length; i++) {
    h ^= BigInt(text.charCodeAt(i));
    h = (h * FNV_PRIME) & MASK_64;
  }
  return h === 0n ? 1n : h;
}

const hex64 = (n: bigint) => n.toString(16).padStart(16, '0');

export function traceKeyText(key: TraceKey): string {
  return key.kind === 'segment' ? `segment/${key.vmId}/${key.connId}/${key.offset}` : `epoch/${key.vmId}/${key.epoch}`;
}

/** 32 hex digits. */
export function traceIdOf(key: TraceKey): string {
  const text = traceKeyText(key);
  return hex64(fnv1a64(text)) + hex64(fnv1a64(text, FNV_OFFSET ^ 0x9e3779b97f4a7c15n));
}

/** 16 hex digits; `instance` tells apart spans of one name in a trace. */
export function spanIdOf(key: TraceKey, name: SpanName, instance = 0): string {
  return hex64(fnv1a64(`${traceKeyText(key)}#${name}#${instance}`));
}
