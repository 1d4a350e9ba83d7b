/** Units used across specula. Virtual and wall time are integer microseconds. */
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const US_PER_MS = 1000;
export const US_PER_S = 1_000_000;
export const BITS_PER_BYTE = 8;

export const msToUs = (ms: number): number => Math.round(ms * US_PER_MS);
export const usToMs = (us: number): number => us / US_PER_MS;
export const sToUs = (s: number): number => Math.round(s * US_PER_S);
