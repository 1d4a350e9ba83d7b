export { CheckpointerPrimaryCore, type PrimaryOptions, type PrimaryStats } from './primary.js';
export { CheckpointerBackupCore, type BackupOptions, type BackupStats, type BackupDigest } from './backup.js';
export { epochMachine, type EpochEvent, type EpochContext, type EpochState } from './epoch.machine.js';
export { StagedCheckpoint } from './staging.js';
