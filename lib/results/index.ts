export { percentile, latencyMs, scenarioFields, type RunResult } from './run-result.js';
export { addTo, bucketOf, histogramOf, histogramPercentile, mergeHistograms, HISTOGRAM_RESOLUTION, type Histogram } from './histogram.js';
export { recoveryFigures, type RecoveryFigures } from './recovery.js';
