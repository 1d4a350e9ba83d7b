import type { RunConfig } from '../config/run-config.js';
import { NO_SAMPLER, sampler, strideBytesFor, type Sampler } from './sampling.js';

/** Share of the guest's output segments traced when a process traces and no rate is given. */
export const DEFAULT_TRACE_SAMPLE_RATE = 0.01;

/** What a core traces: the packets its sampler picks, and epochs or not. */
export interface TracingOptions {
  readonly sampler: Sampler;
  readonly epochs: boolean;
}

export const TRACING_OFF: TracingOptions = { sampler: NO_SAMPLER, epochs: false };

/** The same for every service of a VM: each decides alone which packets are traced, and all decide alike. */
export function tracingOptionsFromConfig(config: RunConfig): TracingOptions {
  const rate = config.tracing.segmentSampleRate;
  return { sampler: rate > 0 ? sampler(config.vmId, strideBytesFor(rate, config.tcp.mssBytes)) : NO_SAMPLER, epochs: config.tracing.epochs };
}
