import type { RunConfig } from '../lib/config/run-config.js';
import type { RunResult } from '../lib/results/run-result.js';

export interface NatsRunOptions {
  readonly natsUrl: string;
}

/** Runs the guest and client cores as two processes over NATS. */
export async function runOnNats(_config: RunConfig, _options: NatsRunOptions): Promise<RunResult> {
  throw new Error('not yet available');
}
