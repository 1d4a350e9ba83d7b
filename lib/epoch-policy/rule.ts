import { assert } from '../assert.js';

export interface RunningEpoch {
  /** When the epoch started running (the guest resumed), µs. */
  readonly startUs: number;
  /** When it ends if nothing moves it (start + epochMs, or an earlier end already chosen), µs. */
  readonly endUs: number;
}

export interface EpochCosts {
  readonly minEpochUs: number;
  /** What one more pause costs the guest: the recent pauses' average, barrier to staged, µs. */
  readonly pauseUs: number;
}

/**
 * Held output went quiet at `nowUs`: when should the running epoch end?
 * As soon as the minimum epoch allows, if that brings the output's release
 * forward by more than the extra pause costs the guest; otherwise null (keep
 * the end it has). A pure function, so the simulator and NATS run it alike.
 */
export function earlyEpochEndUs(epoch: RunningEpoch, costs: EpochCosts, nowUs: number): number | null {
  assert(epoch.endUs >= epoch.startUs, () => `an epoch that ends (${epoch.endUs}) before it starts (${epoch.startUs})`);
  assertCosts(costs);
  const endUs = Math.max(nowUs, epoch.startUs + costs.minEpochUs);
  return epoch.endUs - endUs > costs.pauseUs ? endUs : null;
}

/** Weight of the newest pause in the running average of pause costs. */
export const PAUSE_AVERAGE_WEIGHT = 0.25;

/** The running average of pause costs after one more pause of `pauseUs`. */
export function averagePauseUs(averageUs: number | null, pauseUs: number): number {
  assert(pauseUs >= 0, () => `a pause of ${pauseUs} µs`);
  return runningAverage(averageUs, pauseUs);
}

/** The first sample, then a weight of the way to each next one: the policy's measured costs follow the recent epochs. */
function runningAverage(average: number | null, sample: number): number {
  return average === null ? sample : average + PAUSE_AVERAGE_WEIGHT * (sample - average);
}

function assertCosts(costs: EpochCosts): void {
  assert(costs.minEpochUs > 0 && costs.pauseUs >= 0, () => `epoch costs out of range: ${JSON.stringify(costs)}`);
}

/**
 * The longest epoch while the guest answers requests (output went quiet
 * lately): output produced at µs `e` of an epoch waits for the transfer of
 * everything the epoch dirtied up to its end, about `transferPerEpochUs` × e.
 * Past the length where that wait outgrows one pause, a pause is the cheaper
 * price, so the epoch ends there; never before the minimum epoch.
 * `transferPerEpochUs`: µs of transfer per µs of epoch, measured.
 */
export function interactiveEpochCapUs(costs: EpochCosts, transferPerEpochUs: number): number {
  assertCosts(costs);
  assert(transferPerEpochUs >= 0 && Number.isFinite(transferPerEpochUs), () => `a transfer of ${transferPerEpochUs} µs per µs of epoch`);
  if (transferPerEpochUs === 0) return Number.POSITIVE_INFINITY;
  return Math.max(costs.minEpochUs, Math.ceil(costs.pauseUs / transferPerEpochUs));
}

/** The running average of transfer per µs of epoch after one more epoch that ran `ranUs` and took `transferUs` to commit. */
export function averageTransferPerEpochUs(average: number | null, transferUs: number, ranUs: number): number {
  assert(transferUs >= 0 && ranUs > 0, () => `a transfer of ${transferUs} µs for an epoch of ${ranUs} µs`);
  return runningAverage(average, transferUs / ranUs);
}
