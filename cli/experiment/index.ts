export { runPoints, defaultWorkerUrl, SweepPointsFailedError } from './pool.js';
export type { PointOutcome, RunPointsOptions } from './pool.js';
export { goodputSpec, latencySpec, renderSvg } from './plot.js';
