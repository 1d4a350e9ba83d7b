export { percentile, latencyMs, scenarioFields, type RunResult } from './run-result.js';
