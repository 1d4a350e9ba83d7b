import { performance } from 'node:perf_hooks';

/** Wall time for a shell: integer microseconds, never going back. */
export interface Clock {
  nowUs(): number;
  /** A reading of this clock as Unix time, µs (a trace's timestamps). */
  toUnixUs(readingUs: number): number;
}

/** How long the calibration samples both clocks at least: over a millisecond, so that Date.now() ticks within it. */
export const CALIBRATION_SPAN_MS = 3;
/** A tick of Date.now() seen between two samples this close together fixes the offset to within this much. */
export const CLEAN_TICK_MS = 0.05;
/** Bound on the calibration's samples, whatever the clocks read (a clock that stands still, a machine that never lets it run). */
export const MAX_CALIBRATION_SAMPLES = 200_000;

/**
 * Unix time minus the monotonic clock, ms: what a monotonic reading is added
 * to for a wall-clock one. `performance.timeOrigin` is no good for it: it
 * pairs a wall and a monotonic reading taken at process start, and a process
 * descheduled between the two starts with its wall clock off by as long (22 ms
 * in one process of 30 started together on two busy cores). Services of one
 * host then disagree on the time, and a permit's deadline or a lease's
 * expiry is read wrong by that much.
 *
 * Each sample reads the wall clock first, then the monotonic one, so both its
 * millisecond truncation and a preemption between the reads make it too low,
 * never too high. The sample just after Date.now() ticks is the offset to
 * within the time since the sample before last: sampling goes on for the
 * span, and until one tick was seen between two samples close together.
 */
export function calibrateWallOffsetMs(readWallMs: () => number = Date.now, readMonotonicMs: () => number = () => performance.now()): number {
  let best = Number.NEGATIVE_INFINITY;
  let firstMs = Number.NaN;
  let lastWallMs = Number.NaN;
  let lastMonotonicMs = Number.NaN;
  let monotonicBeforeLastWallMs = Number.NaN;
  let cleanTickSeen = false;
  for (let i = 0; i < MAX_CALIBRATION_SAMPLES; i++) {
    const wallMs = readWallMs();
    const monotonicMs = readMonotonicMs();
    best = Math.max(best, wallMs - monotonicMs);
    if (i === 0) firstMs = monotonicMs;
    // The tick came after the last sample's wall read, itself after the monotonic read of the sample before.
    else if (wallMs !== lastWallMs && monotonicMs - monotonicBeforeLastWallMs <= CLEAN_TICK_MS) cleanTickSeen = true;
    monotonicBeforeLastWallMs = lastMonotonicMs;
    lastWallMs = wallMs;
    lastMonotonicMs = monotonicMs;
    if (cleanTickSeen && monotonicMs - firstMs >= CALIBRATION_SPAN_MS) break;
  }
  return best;
}

/** Calibrated once per process, when a wall clock is first asked for. */
let wallOffsetMs: number | undefined;
function processWallOffsetMs(): number {
  wallOffsetMs ??= calibrateWallOffsetMs();
  return wallOffsetMs;
}

/**
 * A monotonic clock (performance.now) that reads 0 when created, so a core's
 * times start near 0 as they do in the simulator. Integer microseconds.
 */
export function monotonicClock(): Clock {
  const originMs = performance.now();
  const unixOriginUs = Math.round((processWallOffsetMs() + originMs) * 1000);
  return { nowUs: () => Math.floor((performance.now() - originMs) * 1000), toUnixUs: (us) => unixOriginUs + us };
}

/**
 * Wall time in integer microseconds since the Unix epoch, for cores whose
 * times other hosts compare with their own wall clocks (lease expiries). It is
 * the wall clock, as calibrated at the first call in this process, advanced
 * by the monotonic clock, so it never steps back when the system clock is
 * set; within a process's lifetime it stays within the drift that the lease
 * rule's skew bound covers.
 */
export function wallClock(): Clock {
  const originMs = processWallOffsetMs();
  return { nowUs: () => Math.floor((originMs + performance.now()) * 1000), toUnixUs: (us) => us };
}
