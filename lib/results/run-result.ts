import type { Mode, RunConfig } from '../config/run-config.js';
import type { WorkloadKind } from '../../services/guest/workload/workload.js';

/** One run's outcome; the CLI prints it as JSON or as a table row. */
export interface RunResult {
  mode: Mode;
  workload: WorkloadKind;
  runtime: 'sim' | 'nats';
  /** Checkpoint epoch; null when nothing is replicated. */
  epochMs: number | null;
  rttMs: number;
  bandwidthBitsPerSec: number;
  lossRate: number;
  durationS: number;
  seed: number;
  congestionControl: string;
  goodputBitsPerSec: number;
  /** Goodput of the bulk connection alone (a mixed workload's bulk flow); null when the workload has none. */
  bulkGoodputBitsPerSec: number | null;
  bytesDelivered: number;
  streamVerified: boolean;
  retransmits: number;
  fastRetransmits: number;
  timeouts: number;
  /** Tail loss probes the stream's senders sent (RFC 8985 §7; Linux TCPLossProbes). */
  lossProbes: number;
  /**
   * The mean window, in segments, at which HyStart ended slow start on the
   * senders that carry the stream (the guest's; in speculative modes also
   * the acker's toward the client); null when it never did. Over NATS the
   * bus's jitter ends it early (docs/nats.md).
   */
  slowStartExitSegments: number | null;
  linkQueueDrops: number;
  linkRandomLosses: number;
  /** Segments the netbuffer's plug dropped at its limit when they came to be held (buffers.heldBytesMax). */
  plugDrops: number;
  requestsCompleted: number;
  latencyMsP50: number | null;
  latencyMsP99: number | null;
  /** Checkpoints committed on the backup. */
  checkpoints: number;
  checkpointBytesTotal: number;
  commitLatencyMsP50: number | null;
  commitLatencyMsP99: number | null;
  /** Most output bytes the netbuffer held at once. */
  heldBytesMax: number;
  /** Most bytes in the speculative buffer at once. */
  specBufferBytesMax: number;
  /** Time the guest spent paused for stop-and-copy. */
  pauseMsTotal: number;
  /** Epochs the adaptive policy ended before epochMs (0 under the fixed policy). */
  earlyEpochEnds: number;
  /** Epochs the adaptive policy kept short while the guest answered requests (docs/adaptive-epochs.md, the transfer). */
  interactiveEpochs: number;
  /** Promotions of a backup during the run. */
  failovers: number;
  /** From the crash (or, without a scheduled crash, the old primary's last heartbeat) to the promoted primary's first heartbeat. */
  failoverMs: number | null;
  /** Goodput over the second before the crash. */
  preFailureGoodputBitsPerSec: number | null;
  /** From the crash until a 100 ms window again delivers ≥ 90% of the pre-failure goodput. */
  recoveryMs: number | null;
  /** Spares that joined as the new backup (re-protection). */
  reprotections: number;
  /** From the first join until the new backup held a complete image (the VM protected again). */
  reprotectMs: number | null;
  simEvents: number;
  wallMs: number;
  /** NATS runs: bytes all services published on the bus per byte the client received. */
  busBytesPerGoodputByte?: number;
  /**
   * NATS runs: the same, by the service that published (every host's
   * together): where the bus's bytes go. The checkpoint's data cross it
   * twice, from the guest and the acker to the checkpointer and from it to
   * the backup (docs/nats.md).
   */
  busBytesPerGoodputByteByService?: Record<string, number>;
  /**
   * NATS runs: the bus's delay of a hop between processes (the messages the
   * host services stamp: commits, checkpoint acknowledgements, the wire
   * toward the client), median and 90th percentile, ms; null: none seen.
   * `--bus-jitter-us` about p90 / 0.9 gives the simulator the same hops.
   */
  busHopMsP50?: number | null;
  busHopMsP90?: number | null;
  /**
   * NATS runs: how late the emulated links (client link, replication link)
   * handed messages on after the arrival time the link gave them, median and
   * 99th percentile, ms: what the bus (a message that arrives past its time)
   * and the receiving process's event loop add to the emulated delay; null:
   * no link delivered anything.
   */
  linkLateMsP50?: number | null;
  linkLateMsP99?: number | null;
  /** NATS runs: what the auditor, subscribed to the VM's bus, found against output commit and one primary. */
  auditViolations?: number;
  /** NATS runs: times the auditor's connection came back (it then missed what was published meanwhile, and judged less for a while: docs/auditor.md). */
  auditGaps?: number;
  /** NATS runs: release permits the auditor never received, told by the numbers of those it did (docs/auditor.md). */
  auditPermitsMissed?: number;
  /**
   * NATS runs: CPU time (user + system) of each service's processes (or each group's: "guest+checkpointer+netbuffer+acker") during
   * the run, s, from their reports (each end within one report interval).
   * Processes serve every VM of a run, so the figures are the whole run's.
   * The broker's and the runner's (auditor, collector) are not in them.
   */
  cpuSecondsByService?: Record<string, number>;
  /** NATS runs: a host's services one per process ('service') or its data path in one ('host'); cpuSecondsByService names a process by its services, joined by '+'. */
  layout?: 'service' | 'host';
  /**
   * NATS runs: what protecting the output cost the machine: the CPU time of
   * the hosts' services and the failover service (the client's excluded) per
   * MB the clients of the run received, ms. In native mode, the guest's own.
   */
  cpuMsPerGoodputMB?: number | null;
  /**
   * `specula run`'s JSON: the whole configuration the run had (over NATS, each
   * VM's, with the NATS timing), so that a saved result says every option it
   * depends on and can be run again (`--config`, `--config-json`). Not in tables.
   */
  config?: RunConfig;
}

/** The mean window (segments, one decimal) at which slow start ended, from the senders' summed counters; null: it never did. */
export function slowStartExitSegments(exits: number, cwndBytesTotal: number, mssBytes: number): number | null {
  return exits === 0 ? null : Math.round((10 * cwndBytesTotal) / exits / mssBytes) / 10;
}

/** The fields that describe the scenario rather than its outcome. */
export function scenarioFields(config: RunConfig, runtime: RunResult['runtime']): Pick<RunResult, 'mode' | 'workload' | 'runtime' | 'epochMs' | 'rttMs' | 'bandwidthBitsPerSec' | 'lossRate' | 'durationS' | 'seed' | 'congestionControl'> {
  return {
    mode: config.mode,
    workload: config.workload.kind,
    runtime,
    epochMs: config.mode === 'native' ? null : config.epochMs,
    rttMs: config.link.rttMs,
    bandwidthBitsPerSec: config.link.bandwidthBitsPerSec,
    lossRate: config.link.lossRate,
    durationS: config.durationS,
    seed: config.seed,
    congestionControl: config.tcp.congestionControl,
  };
}

/** Request latency percentile in ms from µs samples; null for no samples. */
export function latencyMs(samplesUs: readonly number[], p: number): number | null {
  const v = percentile(samplesUs, p);
  return v === null ? null : v / 1000;
}

/** Nearest-rank percentile; null for no samples. */
export function percentile(samples: readonly number[], p: number): number | null {
  if (samples.length === 0) return null;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}
