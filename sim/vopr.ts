import { InvariantError, InvariantViolationError } from '../lib/errors.js';
import type { ClockSkew } from '../lib/config/failover-config.js';
import { GSO_MAX_BYTES, runConfigSchema, type Mode, type RunConfig, type RunConfigInput } from '../lib/config/run-config.js';
import type { EpochPolicyKind } from '../lib/epoch-policy/index.js';
import { topologyOf } from '../lib/topology/index.js';
import { Rng } from '../lib/rng.js';
import { msToUs, US_PER_MS } from '../lib/units.js';
import { TIMELINE_BIN_US } from '../services/client/options-from-config.js';
import { planFaults, type Fault } from './faults.js';
import type { WorkloadKind } from '../services/guest/workload/workload.js';
import type { PlantedBug } from '../lib/planted-bugs.js';
import type { AuditedInvariant } from '../services/auditor/violations.js';
import { failoverStatsOf, promotionsOf } from './run.js';
import { buildWorld, runWorld, type WorldHooks } from './world.js';

/**
 * Faults happen in [FAULTS_FROM_MS, SAFETY_END_MS) (a lease-store outage
 * from the VM's creation on aside); then none, until END_MS.
 * The last second must deliver something: long enough for a tail loss that
 * only a retransmission timeout recovers (an RTO of a few hundred ms when
 * output waits an epoch for its commit) plus the commit of the retransmission.
 */
const FAULTS_FROM_MS = 300;
const SAFETY_END_MS = 1500;
const END_MS = 5000;
/** Liveness: delivery must have resumed within this long after the faults stopped (TCP may be in a backed-off RTO: 1 s, then 2 s). */
const LIVENESS_BOUND_MS = 2500;

/** What a failing seed broke: an audited safety invariant, the client's stream, liveness, or an assertion inside a service. */
export type Invariant = AuditedInvariant | 'exactly-once' | 'liveness' | 'assertion';

export interface VoprScenario {
  readonly seed: number;
  readonly config: RunConfig;
  readonly faults: readonly Fault[];
}

export interface VoprOutcome {
  readonly seed: number;
  readonly ok: boolean;
  readonly invariant: Invariant | null;
  /** The auditor's rule, for a safety violation. */
  readonly rule: string | null;
  readonly atMs: number | null;
  readonly message: string | null;
  readonly mode: Mode;
  readonly workload: WorkloadKind;
  readonly epochPolicy: EpochPolicyKind;
  readonly faults: readonly Fault[];
  readonly failovers: number;
  /** Spares that joined as backups. */
  readonly reprotections: number;
  /** A double failure left no live host with the VM (liveness is not owed then; safety still is). */
  readonly vmLost: boolean;
  readonly bytesDelivered: number;
  /** FNV-1a over every published message's time, subject and type: equal digests, equal runs. */
  readonly traceDigest: string;
}

/** Which epoch policy a seed runs: its own draw (half adaptive), or one for every seed. */
export const VOPR_EPOCH_POLICIES = ['drawn', 'fixed', 'adaptive'] as const;
export type VoprEpochPolicy = (typeof VOPR_EPOCH_POLICIES)[number];

/** The scenario a seed stands for: a small replicated world and a fault plan. */
export function voprScenario(seed: number, epochPolicy: VoprEpochPolicy = 'drawn'): VoprScenario {
  const rng = new Rng(seed, 'vopr');
  const pick = <T>(items: readonly T[]): T => items[rng.int(items.length)]!;
  const mode = pick(['remus', 'spec', 'spec-racc'] as const);
  const drawn = pick([{ kind: 'bulk', totalBytes: 0 }, { kind: 'rr', requestBytes: 64 + rng.int(2000), responseBytes: 1000 + rng.int(40_000) }] as const);
  // A third of the seeds run both flows at once, two connections; from a stream of its own, so the other draws stay.
  const both = rng.fork('mixed').chance(1 / 3) ? { kind: 'mixed', totalBytes: 0, requestBytes: drawn.kind === 'rr' ? drawn.requestBytes : 64, responseBytes: drawn.kind === 'rr' ? drawn.responseBytes : 16_384 } : drawn;
  // Requests back to back, or at random intervals (exponential think times); from a stream of its own.
  const thinkRng = rng.fork('think');
  const workload = both.kind === 'bulk' ? both : { ...both, thinkTimeUs: [0, 0, 1_000, 5_000][thinkRng.int(4)]! };
  const config = runConfigSchema.parse({
    mode,
    seed,
    durationS: END_MS / 1000,
    epochMs: pick([5, 10, 20, 40]),
    workload,
    link: { bandwidthBitsPerSec: pick([20e6, 50e6, 100e6, 200e6]), rttMs: pick([1, 2, 5, 20]), lossRate: pick([0, 0, 0.001, 0.005]) },
    // The speculative guest with TSO segments or one MSS each; from a stream of its own.
    guest: { memoryBytes: 4 * 1024 * 1024, appDirtyPagesPerSec: 500, tsoBytes: rng.fork('tso').chance(0.5) ? GSO_MAX_BYTES : 0 },
    tcp: { sndBufBytes: 512 * 1024, rcvBufBytes: 1024 * 1024 },
    // Both speculative designs; from a stream of its own, so the other draws of a seed stay what they were.
    // The plug's variants (remus: a small plug that fills, drops or pushes back, releases paced or in a burst), from streams of their own.
    buffers: {
      specBufferBytes: 2 * 1024 * 1024,
      heldBytesMax: rng.fork('plug-limit').chance(0.5) ? 256 * 1024 : 4 * 1024 * 1024,
      plugFull: rng.fork('plug-full').chance(0.5) ? 'backpressure' : 'drop',
      plugRelease: rng.fork('plug-release').chance(0.5) ? 'burst' : 'paced',
      specWindow: rng.fork('spec-window').chance(0.5) ? 'client' : 'buffer',
    },
    checkpoint: { chunkBytes: 64 * 1024 },
    epochPolicy: drawEpochPolicy(rng.fork('epoch-policy'), epochPolicy),
    // Half the seeds on a busy bus: every hop between services late by up to the draw, in order; from a stream of its own.
    busJitterUs: drawBusJitterUs(rng.fork('bus-jitter')),
    // A join given up after 100 or 400 ms without progress (started again: the faults stall many), or never within the run; from a stream of its own.
    failover: { joinStallMs: [100, 400, 10_000][rng.fork('join-stall').int(3)]! },
    // One seed in ten puts every bus message through the protobuf codec, as NATS does: a value the encoder refuses (a
    // sequence number between bytes, an unsafe count) fails the seed, where the simulator alone carries it on.
    wireCheck: rng.fork('wire-check').chance(0.1),
  });
  const clocks = skewedClocks(rng.fork('clocks'), [...topologyOf(config).hosts, 'failover', 'client'], config.failover.clockSkewMs, END_MS);
  return { seed, config: { ...config, faults: { ...config.faults, clocks } }, faults: planFaults(rng.fork('faults'), FAULTS_FROM_MS, SAFETY_END_MS) };
}

/** No jitter, or up to a fraction of the shortest timeouts (2 ms bus repeats, 10 ms heartbeats) to several times them. */
function drawBusJitterUs(rng: Rng): number {
  return rng.chance(0.5) ? 0 : [100, 500, 2_000, 5_000][rng.int(4)]!;
}

/** From a stream of its own, so a seed's other draws are the same under every policy. */
function drawEpochPolicy(rng: Rng, policy: VoprEpochPolicy): RunConfigInput['epochPolicy'] {
  const adaptive = policy === 'adaptive' || (policy === 'drawn' && rng.chance(0.5));
  if (!adaptive) return { kind: 'fixed' };
  const pick = <T>(items: readonly T[]): T => items[rng.int(items.length)]!;
  return { kind: 'adaptive', minEpochMs: pick([1, 2, 4]), quietUs: pick([100, 300, 1000]), interactiveMs: pick([0, 25, 100, 400]) };
}

/**
 * Clocks that stay within the skew bound the design relies on for the whole
 * run: offsets in [0, bound/2] and drifts small enough to add at most
 * bound/4 each over `runMs`, so any two clocks differ by at most the bound.
 * Half the machines run off true time.
 */
export function skewedClocks(rng: Rng, nodes: readonly string[], boundMs: number, runMs: number): ClockSkew[] {
  const boundUs = msToUs(boundMs);
  const maxDriftPpm = (boundUs / 4 / msToUs(runMs)) * 1e6;
  const clocks: ClockSkew[] = [];
  for (const node of nodes) {
    if (!rng.chance(0.5)) continue;
    clocks.push({ node, offsetUs: Math.floor(rng.next() * (boundUs / 2)), driftPpm: Math.round((rng.next() * 2 - 1) * maxDriftPpm * 100) / 100 });
  }
  return clocks;
}

/**
 * Runs one seed: faults on during the safety phase, off during the liveness
 * phase. Safety is checked on every packet (output commit, one primary) and
 * every delivered byte (exactly-once); liveness at the end (delivery resumed,
 * a crashed primary replaced, the VM protected again if two hosts are up).
 */
export function runVoprSeed(seed: number, plantedBug?: PlantedBug, onPublish?: WorldHooks['onPublish'], epochPolicy: VoprEpochPolicy = 'drawn'): VoprOutcome {
  const { config, faults } = voprScenario(seed, epochPolicy);
  let digest = 0x811c9dc5;
  const mix = (text: string) => {
    for (let i = 0; i < text.length; i++) digest = Math.imul(digest ^ text.charCodeAt(i), 0x01000193);
  };
  const world = buildWorld(config, {
    ...(plantedBug ? { plantedBug } : {}),
    onPublish: (subject, msg, nowUs, from) => {
      mix(`${nowUs}${subject}${msg.type}`);
      onPublish?.(subject, msg, nowUs, from);
    },
  });
  let failure: { invariant: Invariant; rule: string | null; message: string } | null = null;
  try {
    runWorld(world, undefined, faults);
  } catch (err) {
    if (err instanceof InvariantViolationError) failure = { invariant: err.violation.invariant as AuditedInvariant, rule: err.violation.rule, message: err.message };
    else if (err instanceof InvariantError) failure = { invariant: 'assertion', rule: null, message: err.message };
    else throw err;
  }
  const c = world.client.stats;
  if (failure === null && !c.streamVerified) failure = { invariant: 'exactly-once', rule: null, message: `the client's stream differs from the generator at byte ${c.firstMismatchOffset}` };
  const vmLost = world.replication?.vmLoss.lost ?? false;
  if (failure === null && !vmLost) {
    const fromBin = Math.floor(msToUs(SAFETY_END_MS + LIVENESS_BOUND_MS) / TIMELINE_BIN_US);
    const lateBytes = c.deliveredPerBin.slice(fromBin).reduce((a, b) => a + b, 0);
    const crashedPrimary = faults.some((f) => (f.kind === 'crash' && f.role === 'primary') || f.kind === 'crash-primary-service');
    // Promotions that happened (a restarted failover service may not have seen the one it finished counted).
    const failovers = promotionsOf(world);
    if (lateBytes === 0) failure = { invariant: 'liveness', rule: null, message: `nothing delivered in the last ${END_MS - SAFETY_END_MS - LIVENESS_BOUND_MS} ms, ${LIVENESS_BOUND_MS} ms after the faults stopped` };
    else if (crashedPrimary && failovers === 0) failure = { invariant: 'liveness', rule: null, message: 'the primary crashed and no backup was promoted' };
    else {
      // Two hosts up, and the faults long over: one of them is the primary and the other holds its image. A re-protection
      // that never completes (a join lost, refused or stuck) fails here; delivery alone does not show it.
      const up = [...world.hosts.values()].filter((h) => h.up && h.services.agent.state !== 'halted');
      const state = world.replication?.failover?.state ?? 'down';
      if (up.length >= 2 && state !== 'protected') failure = { invariant: 'liveness', rule: null, message: `not protected at the end (${state}) with ${up.length} hosts up: ${up.map((h) => `${h.name} ${h.services.agent.state}`).join(', ')}` };
    }
  }
  return {
    seed,
    ok: failure === null,
    invariant: failure?.invariant ?? null,
    rule: failure?.rule ?? null,
    atMs: failure === null ? null : world.runtime.nowUs / US_PER_MS,
    message: failure?.message ?? null,
    mode: config.mode,
    workload: config.workload.kind,
    epochPolicy: config.epochPolicy.kind,
    faults,
    failovers: failoverStatsOf(world)?.failovers ?? 0,
    reprotections: failoverStatsOf(world)?.reprotections ?? 0,
    vmLost,
    bytesDelivered: c.bytesDelivered,
    traceDigest: (digest >>> 0).toString(16).padStart(8, '0'),
  };
}
