import { subjects } from '../../lib/codec/subjects.js';
import type { RunConfig } from '../../lib/config/run-config.js';
import { tracingOptionsFromConfig } from '../../lib/tracing/options.js';
import type { ClientCoreOptions } from './core.js';

/** Delivery timeline resolution: fine enough to see a failover. */
export const TIMELINE_BIN_US = 10_000;

/** The client of a run, the same under every runtime. */
export function clientOptionsFromConfig(config: RunConfig): ClientCoreOptions {
  const s = subjects(config.vmId);
  return {
    vmId: config.vmId,
    seed: config.seed,
    tcp: config.tcp,
    workload: config.workload,
    txSubject: s.wireIn,
    rxSubject: s.wireOut,
    maxLatencySamples: config.maxLatencySamples,
    timelineBinUs: TIMELINE_BIN_US,
    timelineBins: Math.ceil((config.durationS * 1e6) / TIMELINE_BIN_US) + 1,
    tracing: tracingOptionsFromConfig(config),
  };
}
