import { performance } from 'node:perf_hooks';

/** Wall time for a shell: integer microseconds, never going back. */
export interface Clock {
  nowUs(): number;
  /** A reading of this clock as Unix time, µs (a trace's timestamps). */
  toUnixUs(readingUs: number): number;
}

/**
 * A monotonic clock (performance.now) that reads 0 when created, so a core's
 * times start near 0 as they do in the simulator. Integer microseconds.
 */
export function monotonicClock(): Clock {
  const originMs = performance.now();
  return { nowUs: () => Math.floor((performance.now() - originMs) * 1000), toUnixUs: (us) => Math.round((performance.timeOrigin + originMs) * 1000) + us };
}

/**
 * Wall time in integer microseconds since the Unix epoch, for cores whose
 * times other hosts compare with their own wall clocks (lease expiries). It is
 * the wall clock at process start advanced by the monotonic clock, so it never
 * steps back when the system clock is set; within a process's lifetime it
 * stays within the drift that the lease rule's skew bound covers.
 */
export function wallClock(): Clock {
  const originMs = performance.timeOrigin;
  return { nowUs: () => Math.floor((originMs + performance.now()) * 1000), toUnixUs: (us) => us };
}
