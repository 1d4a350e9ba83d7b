import type { RunConfig } from '../config/run-config.js';
import { topologyOf } from '../topology/index.js';
import type { OutputWatchOptions } from './options.js';

/** The netbuffer's and the acker's `outputWatch` option on `host`: present under the adaptive policy only. */
export function outputWatchOption(config: RunConfig, host: string): { readonly outputWatch?: OutputWatchOptions } {
  const p = config.epochPolicy;
  if (p.kind !== 'adaptive') return {};
  return { outputWatch: { quietUs: p.quietUs, maxConnections: p.maxConnections, subject: topologyOf(config).subjects.host(host).outputIdle } };
}
