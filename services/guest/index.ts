export { GuestCore, type GuestCoreOptions, type GuestSupervision, type GuestRoleStats } from './core.js';
export { GuestVm, type GuestVmOptions, type GuestStats } from './vm.js';
export { StandbyImage, type StandbyOptions, type BackupStats, type BackupDigest } from './standby.js';
export { guestOptionsFromConfig } from './options-from-config.js';
export * from './workload/workload.js';
export { ByteGenerator, StreamVerifier } from './workload/byte-generator.js';
