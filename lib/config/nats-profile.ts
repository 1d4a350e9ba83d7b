import { parseConfig } from './parse.js';
import { runConfigSchema, type RunConfig } from './run-config.js';

/**
 * Timing for services as processes over NATS on one machine. The defaults
 * of the run configuration are the simulator's (a 10 µs bus, no garbage
 * collector, no scheduler): 10 ms heartbeats and a 30 ms lease would turn
 * every GC pause and every busy moment of a loaded machine into a false
 * failover: on 2 cores, a fleet of 17 processes stalls one for 150-550 ms at
 * times. A host is silent after 8 × 50 ms, which costs no failover time (the
 * successor waits out the 500 ms lease anyway); a service reports every
 * 50 ms that it lives and is dead after 100 reports missed, 5 s (every
 * 250 ms saves an idle VM 240 of its ~660 messages a second, 9% of a core,
 * but a process that a burst of slow inputs keeps busy has fewer chances to
 * be heard: the soak lost a promoted guest to its agent so, docs/nats.md):
 * one checkpoint capture of 4 MiB is
 * ~50 ms of CPU, and up to 1.8 s of wall time when 16 processes share 2 cores
 * during a re-protection (the shell's `slowInputs`), and a process that dies
 * outright costs its host no more than 5 s. A permit lasts
 * 440 ms from each renewal sent every 50 ms; bus repeats and slack cover a bus whose hops take
 * a few hundred µs and sometimes tens of ms (a pause barrier is repeated only
 * after a whole interval without progress: a lost message on loopback NATS
 * is rare, a slow process is not). A host or service not heard from since
 * start is taken for dead only after 20 s: processes (containers, pods) start
 * at their own pace, and 16 of them starting at once on 2 cores take several
 * seconds; dropping a backup that is still starting costs a re-protection.
 * Under the adaptive epoch policy a connection is quiet after 2 ms without
 * output: the guest's segments reach the netbuffer and the acker over hops
 * of a few hundred µs that now and then take milliseconds, and a gap the bus
 * made would end an epoch early for nothing (docs/adaptive-epochs.md).
 */
export const NATS_TIMING = {
  failover: { heartbeatIntervalMs: 50, missCount: 8, statusIntervalMs: 50, serviceMissCount: 100, serviceStartupMs: 20_000, leaseDurationMs: 500, leaseSafetyMs: 50, clockSkewMs: 10 },
  bus: { resendMs: 50, ackSlackMs: 50, handoverRetryMs: 20, handoverRetryMaxMs: 4_000 },
  epochPolicy: { quietUs: 2_000 },
} as const;

/** Timing the user set explicitly (a flag, not a default): it stands over NATS_TIMING. */
export interface ExplicitTiming {
  readonly failover?: Partial<RunConfig['failover']>;
  readonly bus?: Partial<RunConfig['bus']>;
  readonly epochPolicy?: Partial<RunConfig['epochPolicy']>;
}

/** `config` with NATS_TIMING for its failover, bus and quiet timing, except what `explicit` sets (the rest as given). */
export function withNatsTiming(config: RunConfig, explicit: ExplicitTiming = {}): RunConfig {
  return parseConfig(runConfigSchema, {
    ...config,
    failover: { ...config.failover, ...NATS_TIMING.failover, ...explicit.failover },
    bus: { ...config.bus, ...NATS_TIMING.bus, ...explicit.bus },
    epochPolicy: { ...config.epochPolicy, ...NATS_TIMING.epochPolicy, ...explicit.epochPolicy },
  });
}
