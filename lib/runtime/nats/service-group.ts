import { ConfigError } from '../../errors.js';
import { tracingWanted } from './otel-env.js';
import { runServiceProcess, type FinalLine, type ServiceDefinition, type ServiceProcessOptions } from './service-process.js';

/**
 * Runs several services in one OS process, each exactly as it runs alone:
 * its own shells, its own two connections, its own ready, report and final
 * lines. They still talk to each other only over NATS; what they share is
 * the event loop, so a hop between them waits for one process instead of
 * two. One that fails (or a signal) stops them all.
 *
 * One service per process keeps probes and traces: a health port is one
 * per process, and the OpenTelemetry SDK registers one tracer provider per
 * process, which would name every span after the first service.
 */
export async function runServiceGroup(defs: readonly ServiceDefinition[], options: ServiceProcessOptions): Promise<FinalLine[]> {
  if (defs.length === 0) throw new ConfigError('no service to run');
  if (defs.length === 1) return [await runServiceProcess(defs[0]!, options)];
  const names = defs.map((d) => d.name);
  const repeated = names.find((n, i) => names.indexOf(n) !== i);
  if (repeated !== undefined) throw new ConfigError(`${repeated} is named twice: a process runs each service once`);
  if (names.includes('client')) throw new ConfigError('the client runs alone: it is the remote peer, not a service of a host');
  if (options.healthPort !== undefined) throw new ConfigError(`--health-port serves one service per process; ${names.join(', ')} in one process have none (run them one per process for probes)`);
  if (tracingWanted(process.env, options.trace?.enabled ?? false)) throw new ConfigError(`tracing (--trace, OTEL_EXPORTER_OTLP_ENDPOINT) names a process's spans after one service; run ${names.join(', ')} one per process to trace them`);
  const stopAll = new AbortController();
  const onOuterAbort = () => stopAll.abort();
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (options.signal?.aborted) stopAll.abort();
  try {
    const outcomes = await Promise.allSettled(
      defs.map((def) =>
        runServiceProcess(def, { ...options, signal: stopAll.signal, processServices: names }).catch((err: unknown) => {
          // One service down takes its process's others with it, as a crash would.
          stopAll.abort();
          throw err;
        }),
      ),
    );
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return outcomes.map((o) => (o as PromiseFulfilledResult<FinalLine>).value);
  } finally {
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
}
