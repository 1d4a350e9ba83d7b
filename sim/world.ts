import type { Segment } from '../lib/codec/messages.js';
import { subjects } from '../lib/codec/subjects.js';
import { isReplicated, isSpeculative, type RunConfig } from '../lib/config/run-config.js';
import { Rng } from '../lib/rng.js';
import { SimRuntime, type SimRuntimeOptions } from '../lib/runtime/sim/index.js';
import { BITS_PER_BYTE, msToUs, sToUs, US_PER_MS } from '../lib/units.js';
import { AckerCore } from '../services/acker/core.js';
import { CheckpointerBackupCore } from '../services/checkpointer/backup.js';
import { CheckpointerPrimaryCore } from '../services/checkpointer/primary.js';
import { ClientCore } from '../services/client/core.js';
import { GuestCore } from '../services/guest/core.js';
import { guestOptionsFromConfig } from '../services/guest/options-from-config.js';
import { NetbufferCore } from '../services/netbuffer/core.js';
import { LinkDirection, linkDirectionFor } from '../lib/link/index.js';
import { CheckedHop, OutputCommitOracle } from './oracle.js';

/** The replication components of a replicated run. */
export interface Replication {
  readonly netbuffer: NetbufferCore;
  readonly acker: AckerCore;
  readonly primary: CheckpointerPrimaryCore;
  readonly backup: CheckpointerBackupCore;
  readonly replicationDown: LinkDirection;
  readonly replicationUp: LinkDirection;
  readonly oracle: OutputCommitOracle;
}

/** A built simulation: the runtime and handles to every component. */
export interface World {
  readonly runtime: SimRuntime;
  readonly guest: GuestCore;
  readonly client: ClientCore;
  readonly linkDown: LinkDirection;
  readonly linkUp: LinkDirection;
  readonly replication: Replication | null;
  readonly config: RunConfig;
}

export interface WorldHooks {
  readonly tamper?: SimRuntimeOptions['tamper'];
  readonly onLog?: SimRuntimeOptions['onLog'];
  /** Keep image digests on both hosts (checkpoint exactness tests). */
  readonly recordDigests?: boolean;
}

/** Replication link queue: checkpoints are never dropped on it, only delayed. */
const REPLICATION_QUEUE_BYTES = 1 << 30;
/** Acknowledgement timeout of a checkpoint transfer, beyond any transfer time of the run. */
const CHECKPOINT_ACK_TIMEOUT_US = 2_000_000;

/** Builds the world of one run: guest and client on either side of a link, and the replication services between. */
export function buildWorld(config: RunConfig, hooks: WorldHooks = {}): World {
  const rng = new Rng(config.seed);
  const s = subjects(config.vmId);
  let oracle: OutputCommitOracle | null = null;
  const runtime = new SimRuntime({
    wireCheck: config.wireCheck,
    busDelayUs: config.busDelayUs,
    ...(hooks.tamper ? { tamper: hooks.tamper } : {}),
    ...(hooks.onLog ? { onLog: hooks.onLog } : {}),
    onPublish: (subject, msg) => {
      if (oracle !== null && subject === s.tx && msg.type === 'segment') oracle.observeGuest(msg);
    },
  });
  const linkDown = linkDirectionFor(config.link, config.seed, 'down');
  const linkUp = linkDirectionFor(config.link, config.seed, 'up');
  runtime.addHop(s.wireIn, linkUp);
  const guest = new GuestCore(guestOptionsFromConfig(config, s, rng, hooks.recordDigests ?? false));
  const client = new ClientCore({ vmId: config.vmId, seed: config.seed, tcp: config.tcp, workload: config.workload, txSubject: s.wireIn, rxSubject: s.wireOut, maxLatencySamples: config.maxLatencySamples });
  let replication: Replication | null = null;
  if (isReplicated(config.mode)) {
    replication = buildReplication(config, runtime, rng, hooks.recordDigests ?? false);
    oracle = replication.oracle;
    const checked = replication.oracle;
    runtime.addHop(s.wireOut, new CheckedHop(linkDown, (msg, nowUs) => checked.check(msg as Segment, nowUs)));
  } else {
    runtime.addHop(s.wireOut, linkDown);
  }
  runtime.addActor(guest);
  runtime.addActor(client);
  return { runtime, guest, client, linkDown, linkUp, replication, config };
}

function buildReplication(config: RunConfig, runtime: SimRuntime, rng: Rng, recordDigests: boolean): Replication {
  const s = subjects(config.vmId);
  const speculative = isSpeculative(config.mode);
  const replicationLink = (name: string) =>
    new LinkDirection(
      { rateBitsPerSec: config.replicationLink.bandwidthBitsPerSec, delayUs: msToUs(config.replicationLink.rttMs / 2), queueBytes: REPLICATION_QUEUE_BYTES, lossRate: 0, jitterUs: 0 },
      rng.fork(name),
    );
  const replicationDown = replicationLink('replication.down');
  const replicationUp = replicationLink('replication.up');
  runtime.addHop(s.ckptData, replicationDown);
  runtime.addHop(s.ckptAck, replicationUp);
  const netbuffer = new NetbufferCore({ vmId: config.vmId, txSubject: s.tx, commitSubject: s.commit, outSubject: s.wireOut, heldBytesMax: config.buffers.heldBytesMax, holdData: !speculative });
  const acker = new AckerCore({ vmId: config.vmId, mode: speculative ? 'spec' : 'remus', subjects: s, tcp: config.tcp, specBufferBytes: config.buffers.specBufferBytes, chunkBytes: config.checkpoint.chunkBytes, recordDigests });
  const primary = new CheckpointerPrimaryCore({
    vmId: config.vmId,
    subjects: s,
    epochUs: msToUs(config.epochMs),
    pauseFixedUs: config.checkpoint.pauseFixedUs,
    copyBytesPerSec: config.checkpoint.copyBytesPerSec,
    maxInflightEpochs: config.checkpoint.maxInflightEpochs,
    speculative,
    ackTimeoutUs: CHECKPOINT_ACK_TIMEOUT_US,
    maxLatencySamples: config.maxLatencySamples,
  });
  const backup = new CheckpointerBackupCore({ vmId: config.vmId, subjects: s, memoryBytes: config.guest.memoryBytes, specBufferBytes: config.buffers.specBufferBytes, maxPendingEpochs: config.checkpoint.maxInflightEpochs + 1, recordDigests });
  for (const core of [netbuffer, acker, primary, backup]) runtime.addActor(core);
  const oracle = new OutputCommitOracle(() => backup.stats.appliedEpoch);
  return { netbuffer, acker, primary, backup, replicationDown, replicationUp, oracle };
}

/** Runs the world to the end of its duration (or until a bulk transfer completes). */
export function runWorld(world: World, onProgress?: (simUs: number) => void): void {
  const endUs = sToUs(world.config.durationS);
  const sliceUs = 100 * US_PER_MS;
  const done = () => world.client.stats.peerClosedAtUs !== null;
  for (let t = sliceUs; ; t += sliceUs) {
    world.runtime.runUntil(Math.min(t, endUs), done);
    onProgress?.(world.runtime.nowUs);
    if (done() || t >= endUs) break;
  }
}

/** Delivered goodput over the run (or until the transfer completed). */
export function goodputBitsPerSec(world: World): number {
  const c = world.client.stats;
  const endUs = c.peerClosedAtUs ?? sToUs(world.config.durationS);
  return endUs > 0 ? (c.bytesDelivered * BITS_PER_BYTE * 1e6) / endUs : 0;
}
