export { expandSweep, collectRows, describePoint, experimentReport, WORKLOADS, DEFAULT_WORKLOADS } from './sweep.js';
export type { Variant, SweepSpec, PointKey, SweepPoint, ExperimentRow, ExperimentReport, PortableResult, WorkloadKind } from './sweep.js';
