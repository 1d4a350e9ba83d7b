export { Auditor, type AuditorStats, type Observation } from './auditor.js';
export { ByteEpochs } from './byte-epochs.js';
export { VmLossClassifier } from './vm-loss.js';
export { AUDITED_INVARIANTS, type AuditedInvariant, type Violation, type ViolationRule } from './violations.js';
