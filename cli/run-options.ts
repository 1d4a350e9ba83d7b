import { InvalidArgumentError, Option, type Command } from 'commander';
import { GSO_MAX_BYTES, MTU_BYTES, type Mode, type RunConfigInput } from '../lib/config/run-config.js';
import type { Workload, WorkloadKind } from '../services/guest/workload/workload.js';

/** Parses a finite number or fails with the flag's name. */
export const num = (value: string): number => {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`'${value}' is not a number`);
  return n;
};

/** Parses a whole number from 0 (a sequence number, an epoch) or fails with the flag's name. */
export const wholeNum = (value: string): number => {
  const n = num(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`'${value}' is not a whole number from 0`);
  return n;
};

/** Config paths as the flags that set them, so errors name what the user typed. */
export const FLAG_FOR_PATH: Record<string, string> = {
  mode: '--mode',
  epochMs: '--epoch-ms',
  vmId: '--vm',
  seed: '--seed',
  durationS: '--duration-s',
  'link.bandwidthBitsPerSec': '--bandwidth-mbps',
  'link.rttMs': '--rtt-ms',
  'link.lossRate': '--loss',
  'link.jitterMs': '--jitter-ms',
  'link.queueBytes': '--queue-packets',
  'link.localBackpressure': '--no-local-backpressure',
  'tcp.mssBytes': '--mss',
  'tcp.sndBufBytes': '--snd-buf-bytes',
  'tcp.sndBufAutotune': '--snd-buf-growth',
  'tcp.rcvBufBytes': '--rcv-buf-bytes',
  'tcp.initialWindowSegments': '--initial-window',
  'tcp.congestionControl': '--cc',
  'tcp.sack': '--no-sack',
  'buffers.specBufferBytes': '--spec-buffer-bytes',
  'guest.tsoBytes': '--tso-bytes',
  'buffers.specWindow': '--spec-window',
  'buffers.heldBytesMax': '--plug-limit-bytes',
  'buffers.plugRelease': '--plug-release',
  'buffers.plugFull': '--plug-full',
  'epochPolicy.kind': '--epoch-policy',
  'epochPolicy.minEpochMs': '--min-epoch-ms',
  'epochPolicy.quietUs': '--quiet-us',
  'epochPolicy.interactiveMs': '--interactive-ms',
  'workload.totalBytes': '--bulk-bytes',
  'workload.requestBytes': '--request-bytes',
  'workload.responseBytes': '--response-bytes',
  'workload.thinkTimeUs': '--think-time-ms',
  'workload.thinkTimeDistribution': '--think-time-dist',
  'faults.crashPrimaryAtMs': '--crash-primary-at-ms',
  busJitterUs: '--bus-jitter-us',
  'tracing.segmentSampleRate': '--trace-sample',
};

/** The flags shared by `run` and `experiment` that describe one scenario. */
export function addScenarioOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--workload <kind>', 'bulk transfer, request/response, or both at once on two connections').choices(['bulk', 'rr', 'mixed']).default('bulk'))
    .option('--bandwidth-mbps <n>', 'link rate, each direction', num, 1000)
    .option('--loss <p>', 'random packet loss probability, each direction', num, 0)
    .option('--jitter-ms <n>', 'extra one-way delay, uniform in [0, n); never reorders', num, 0)
    .option('--queue-packets <n>', 'drop-tail queue per direction, in 1500-byte packets', num, 1000)
    .option('--duration-s <n>', 'simulated seconds to run', num, 10)
    .option('--bulk-bytes <n>', 'bulk, mixed: send this many bytes then close (0 = until the run ends)', num, 0)
    .option('--request-bytes <n>', 'rr, mixed: request size', num, 64)
    .option('--response-bytes <n>', 'rr, mixed: response size', num, 16_384)
    .option('--think-time-ms <n>', 'rr, mixed: client pause between requests (the mean, if exponential)', num, 0)
    .addOption(new Option('--think-time-dist <d>', 'rr, mixed: each pause is the think time, or drawn from an exponential distribution of that mean (requests at random, as users send them)').choices(['constant', 'exponential']).default('exponential'))
    .addOption(new Option('--cc <algorithm>', 'congestion control of both ends').choices(['newreno', 'cubic']).default('cubic'))
    .option('--mss <bytes>', 'maximum segment size', num, 1448)
    .option('--snd-buf-bytes <n>', 'socket send buffer (Linux tcp_wmem max)', num, 4 * 1024 * 1024)
    .addOption(new Option('--snd-buf-growth <how>', "the send buffer is all of --snd-buf-bytes from the start (fixed, as with SO_SNDBUF) or grows with the congestion window up to it (window: Linux's autotuning, tcp_sndbuf_expand)").choices(['fixed', 'window']).default('window'))
    .option('--rcv-buf-bytes <n>', 'socket receive buffer (Linux tcp_rmem max)', num, 6 * 1024 * 1024)
    .option('--initial-window <segments>', 'initial congestion window', num, 10)
    .option('--no-window-scaling', 'disable RFC 7323 window scaling (64 KiB window at most)')
    .option('--no-delayed-ack', 'acknowledge every segment at once')
    .option('--no-sack', 'no selective acknowledgements (NewReno loss recovery)')
    .option('--no-local-backpressure', "native: the guest's own queue drops what does not fit, as a router's would (default: it pushes back into TCP, as Linux's qdisc and TCP small queues do)")
    .option('--spec-buffer-bytes <n>', "the acker's speculative buffer", num, 16 * 1024 * 1024)
    .option('--tso-bytes <n>', "speculative modes: the largest segment the guest hands its virtual NIC (TSO/GSO; the acker sends MSS-sized ones on the wire); below two MSS: one MSS per segment", num, GSO_MAX_BYTES)
    .option('--plug-limit-bytes <n>', "remus: the netbuffer's plug limit, checked as a segment is held (sch_plug's; Linux: txqueuelen full-size packets)", num, 1000 * MTU_BYTES)
    .addOption(new Option('--plug-release <how>', "remus: a committed epoch leaves the plug at line rate (the plug is the NIC's queue) or as one burst into the device's drop-tail queue (a plug on an IFB device, as Remus on Xen)").choices(['paced', 'burst']).default('paced'))
    .addOption(new Option('--plug-full <what>', "remus: a segment that does not fit the plug is dropped (Linux's sch_plug) or held in the guest's NIC until a commit frees room (backpressure)").choices(['drop', 'backpressure']).default('drop'))
    .addOption(new Option('--spec-window <design>', "speculative ACKs advertise the free buffer (ours) or the client's window (the paper's; docs/racc.md)").choices(['buffer', 'client']).default('buffer'))
    .addOption(new Option('--epoch-policy <policy>', 'fixed: every epoch lasts --epoch-ms; adaptive: at most --epoch-ms, shorter when held output waits on a quiet connection and while the guest answers requests (docs/adaptive-epochs.md)').choices(['fixed', 'adaptive']).default('fixed'))
    .option('--min-epoch-ms <n>', 'adaptive: the shortest epoch', num, 2)
    .option('--quiet-us <n>', 'adaptive: a connection with held output and nothing new for this long is quiet', num, 300)
    .option('--interactive-ms <n>', 'adaptive: for this long after output went quiet, epochs end before their transfer would hold a response longer than a pause (0: never)', num, 100)
    .option('--wire-check', 'encode and decode every bus message through protobuf', false)
    .option('--bus-jitter-us <n>', "sim: each message between services (the client's link aside) is delayed by a further [0, n] µs, in order per subject: a busy bus and scheduler (docs/nats.md)", num, 0)
    .option('--vm <id>', 'protected VM id (a subject token)', 'vm1');
}

export interface ScenarioFlags {
  workload: WorkloadKind;
  bandwidthMbps: number;
  loss: number;
  jitterMs: number;
  queuePackets: number;
  durationS: number;
  bulkBytes: number;
  requestBytes: number;
  responseBytes: number;
  thinkTimeMs: number;
  thinkTimeDist: 'constant' | 'exponential';
  cc: 'newreno' | 'cubic';
  mss: number;
  sndBufBytes: number;
  sndBufGrowth: 'fixed' | 'window';
  rcvBufBytes: number;
  initialWindow: number;
  windowScaling: boolean;
  delayedAck: boolean;
  sack: boolean;
  localBackpressure: boolean;
  specBufferBytes: number;
  tsoBytes: number;
  specWindow: 'buffer' | 'client';
  plugLimitBytes: number;
  plugRelease: 'paced' | 'burst';
  plugFull: 'drop' | 'backpressure';
  epochPolicy: 'fixed' | 'adaptive';
  minEpochMs: number;
  quietUs: number;
  interactiveMs: number;
  wireCheck: boolean;
  busJitterUs: number;
  vm: string;
}

/** Flags → the config schema's input; validation happens in one place, the schema. */
export interface ScenarioPoint {
  mode: Mode;
  epochMs: number;
  rttMs: number;
  seed: number;
}

export function scenarioConfig(f: ScenarioFlags, point: ScenarioPoint): RunConfigInput {
  return {
    mode: point.mode,
    epochMs: point.epochMs,
    vmId: f.vm,
    seed: point.seed,
    durationS: f.durationS,
    wireCheck: f.wireCheck,
    busJitterUs: f.busJitterUs,
    link: {
      bandwidthBitsPerSec: f.bandwidthMbps * 1e6,
      rttMs: point.rttMs,
      lossRate: f.loss,
      jitterMs: f.jitterMs,
      // Whole packets: a fraction is refused (NaN fails the schema), not rounded into a bound the user did not ask for.
      queueBytes: Number.isInteger(f.queuePackets) ? f.queuePackets * MTU_BYTES : Number.NaN,
      localBackpressure: f.localBackpressure,
    },
    tcp: {
      mssBytes: f.mss,
      sndBufBytes: f.sndBufBytes,
      sndBufAutotune: f.sndBufGrowth === 'window',
      rcvBufBytes: f.rcvBufBytes,
      initialWindowSegments: f.initialWindow,
      congestionControl: f.cc,
      windowScaling: f.windowScaling,
      delayedAck: f.delayedAck,
      sack: f.sack,
    },
    guest: { tsoBytes: f.tsoBytes },
    buffers: { specBufferBytes: f.specBufferBytes, specWindow: f.specWindow, heldBytesMax: f.plugLimitBytes, plugRelease: f.plugRelease, plugFull: f.plugFull },
    epochPolicy: { kind: f.epochPolicy, minEpochMs: f.minEpochMs, quietUs: f.quietUs, interactiveMs: f.interactiveMs },
    workload: workloadOf(f),
  };
}

function workloadOf(f: ScenarioFlags): Workload {
  const rr = { requestBytes: f.requestBytes, responseBytes: f.responseBytes, thinkTimeUs: Math.round(f.thinkTimeMs * 1000), thinkTimeDistribution: f.thinkTimeDist };
  switch (f.workload) {
    case 'bulk':
      return { kind: 'bulk', totalBytes: f.bulkBytes };
    case 'rr':
      return { kind: 'rr', ...rr };
    case 'mixed':
      return { kind: 'mixed', totalBytes: f.bulkBytes, ...rr };
  }
}
