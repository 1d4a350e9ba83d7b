export { expandSweep, collectRows, describePoint, experimentReport, WORKLOADS } from './sweep.js';
export type { SweepSpec, PointKey, SweepPoint, ExperimentRow, ExperimentReport, PortableResult, WorkloadKind } from './sweep.js';
