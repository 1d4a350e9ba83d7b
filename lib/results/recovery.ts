import { US_PER_MS, US_PER_S } from '../units.js';

export interface RecoveryFigures {
  /** Goodput over the second before the crash (or as much of it as the run had). */
  readonly preBitsPerSec: number;
  /** From the crash until a 100 ms window delivers 90% of that; null when it never does, or there was nothing to recover. */
  readonly recoveryMs: number | null;
}

/** How much a 100 ms window must deliver, of the goodput before the crash, for delivery to count as recovered. */
const RECOVERED_SHARE = 0.9;

/**
 * Recovery after a crash at `crashUs`, from a client's bytes delivered per
 * bin of `binUs` (time 0 = the timeline's start). The simulator and the NATS
 * runtime both report it so.
 */
export function recoveryFigures(deliveredPerBin: readonly number[], binUs: number, crashUs: number): RecoveryFigures {
  const crashBin = Math.floor(crashUs / binUs);
  const binsPerSecond = US_PER_S / binUs;
  const bytesIn = (from: number, to: number) => deliveredPerBin.slice(Math.max(0, from), Math.max(0, to)).reduce((a, b) => a + b, 0);
  const preSeconds = Math.min(1, crashBin / binsPerSecond);
  const pre = preSeconds > 0 ? (bytesIn(crashBin - binsPerSecond, crashBin) * 8) / preSeconds : 0;
  // Nothing flowed before the crash: there is no rate to come back to.
  if (pre === 0) return { preBitsPerSec: 0, recoveryMs: null };
  const window = Math.round(binsPerSecond / 10);
  for (let bin = Math.max(0, crashBin); bin + window <= deliveredPerBin.length; bin++) {
    if (bytesIn(bin, bin + window) * 8 * (binsPerSecond / window) >= RECOVERED_SHARE * pre) return { preBitsPerSec: Math.round(pre), recoveryMs: ((bin + window) * binUs - crashUs) / US_PER_MS };
  }
  return { preBitsPerSec: Math.round(pre), recoveryMs: null };
}
