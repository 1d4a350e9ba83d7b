export { EPOCH_POLICIES, epochPolicySchema, type EpochPolicyConfig, type EpochPolicyKind, type EpochPolicyOptions, type OutputWatchOptions } from './options.js';
export { OutputWatch, TIMER_OUTPUT_IDLE, type OutputWatchStats } from './output-watch.js';
export { averagePauseUs, averageTransferPerEpochUs, earlyEpochEndUs, interactiveEpochCapUs, PAUSE_AVERAGE_WEIGHT, type EpochCosts, type RunningEpoch } from './rule.js';
