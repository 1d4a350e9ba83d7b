export { expandSweep, collectRows, describePoint, experimentReport, WORKLOADS } from './sweep.js';
export type { SweepSpec, PointKey, SweepPoint, ExperimentRow, ExperimentReport, PortableResult, WorkloadKind } from './sweep.js';
export { runPoints, defaultWorkerUrl, SweepPointsFailedError } from './pool.js';
export type { PointOutcome, RunPointsOptions } from './pool.js';
export { goodputSpec, latencySpec, renderSvg } from './plot.js';
