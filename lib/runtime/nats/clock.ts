import { performance } from 'node:perf_hooks';

/** Wall time for a shell: integer microseconds, never going back. */
export interface Clock {
  nowUs(): number;
}

/**
 * A monotonic clock (performance.now) that reads 0 when created, so a core's
 * times start near 0 as they do in the simulator. Integer microseconds.
 */
export function monotonicClock(): Clock {
  const originMs = performance.now();
  return { nowUs: () => Math.floor((performance.now() - originMs) * 1000) };
}
