export { CheckpointerCore, type CheckpointerOptions } from './core.js';
export { PrimaryCheckpointer, type PrimaryOptions, type PrimaryStats } from './primary.js';
export { epochMachine, type EpochEvent, type EpochContext, type EpochState } from './epoch.machine.js';
export { StagedCheckpoint } from './staging.js';
export { checkpointerOptionsFromConfig } from './options-from-config.js';
