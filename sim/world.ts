import type { HostRole, RoleChange, Segment, WireMessage } from '../lib/codec/messages.js';
import { subjects } from '../lib/codec/subjects.js';
import { isReplicated, isSpeculative, type RunConfig } from '../lib/config/run-config.js';
import type { Core } from '../lib/runtime/types.js';
import { assert } from '../lib/assert.js';
import { Rng } from '../lib/rng.js';
import { SimRuntime, type SimRuntimeOptions } from '../lib/runtime/sim/index.js';
import { BITS_PER_BYTE, msToUs, sToUs, US_PER_MS, US_PER_S } from '../lib/units.js';
import { CheckpointerBackupCore } from '../services/checkpointer/backup.js';
import { ClientCore } from '../services/client/core.js';
import { clientOptionsFromConfig } from '../services/client/options-from-config.js';
import { GuestCore } from '../services/guest/core.js';
import { guestOptionsFromConfig } from '../services/guest/options-from-config.js';
import { FailoverCore } from '../services/failover/core.js';
import { LinkDirection, linkDirectionFor } from '../lib/link/index.js';
import { HostAgentCore } from './host-agent.js';
import { MemoryLeaseStore } from './lease-store.js';
import { faultSteps, type Fault, type FaultStep } from './faults.js';
import { BusFaultInjector } from './bus-faults.js';
import { CheckedHop, OutputCommitOracle } from './oracle.js';
import type { PlantedBug } from './planted-bugs.js';
import { primaryServices, type PrimaryServices } from './primary-services.js';

/** The hosts of a replicated run: the primary, its backup and a spare. */
export const HOSTS = { primary: 'host-a', backup: 'host-b', spare: 'host-c' } as const;

/** The replication side of a replicated run; the primary-side services change when a backup is promoted. */
export interface Replication extends PrimaryServices {
  /** Null once the backup host has been promoted (or has crashed), until a spare joins as the new backup. */
  backup: CheckpointerBackupCore | null;
  /**
   * The newest epoch a backup acknowledged (applied, in order) while it was the primary's peer, under the
   * primary's term: committed, even if that backup is gone or dropped since. Read off the acknowledgements as
   * they are sent, not from the primary's own bookkeeping, so a primary that commits early is caught.
   */
  peerAckedEpoch: number;
  readonly replicationDown: LinkDirection;
  readonly replicationUp: LinkDirection;
  readonly oracle: OutputCommitOracle;
  /** The failover service running now (a restarted one after a `restart-failover` fault; null while it is down). */
  failover: FailoverCore;
  /** False while the failover service is down. */
  failoverUp: boolean;
  readonly leaseStore: MemoryLeaseStore;
  /** Host name → the host's supervisor and the services it runs. */
  readonly hosts: Map<string, { agent: HostAgentCore; services: Core[]; role: HostRole; term: number }>;
  /** Every instance that ran, for totals across a failover. */
  readonly history: { guests: GuestCore[]; services: PrimaryServices[] };
  /** The host serving as primary. */
  primaryHost: string;
  /** Hosts cut off from the failover service and the lease store (fault injection). */
  readonly isolated: Set<string>;
  /** The host each isolation window cut off (windows may overlap). */
  readonly isolatedBy: Map<Fault, string>;
  /** Hosts that crashed (fault injection). */
  readonly crashed: Set<string>;
  /**
   * When no live host held the VM any more (the primary crashed with no synced backup alive): a double
   * failure the design does not survive. Null while the VM lives.
   */
  vmLostAtUs: number | null;
}

/** A built simulation: the runtime and handles to every component. */
export interface World {
  readonly runtime: SimRuntime;
  /** The guest running now (a promoted one after a failover). */
  guest: GuestCore;
  readonly client: ClientCore;
  readonly linkDown: LinkDirection;
  readonly linkUp: LinkDirection;
  readonly replication: Replication | null;
  readonly config: RunConfig;
  /** Loss, duplication and delay between services while a bus fault lasts. */
  readonly busFaults: BusFaultInjector;
}

export interface WorldHooks {
  readonly tamper?: SimRuntimeOptions['tamper'];
  readonly onLog?: SimRuntimeOptions['onLog'];
  /** Keep image digests on both hosts (checkpoint exactness tests). */
  readonly recordDigests?: boolean;
  /** Tests only: a bug the simulator must catch. */
  readonly plantedBug?: PlantedBug;
  /** Sees every message as it is published (after the oracle). */
  readonly onPublish?: (subject: string, msg: WireMessage, nowUs: number) => void;
}

/** Replication link queue: checkpoints are not dropped on it for its size, only delayed. */
const REPLICATION_QUEUE_BYTES = 1 << 30;
/**
 * ...but for time: a chunk that would wait more than a second (a link slowed
 * down by a fault) is dropped, and the checkpointer's ack timeout recovers it.
 * This bounds the backlog a slow spell leaves behind.
 */
const REPLICATION_QUEUE_DELAY_US = 1_000_000;

/** Builds the world of one run: guest and client on either side of a link, and the replication services between. */
export function buildWorld(config: RunConfig, hooks: WorldHooks = {}): World {
  const rng = new Rng(config.seed);
  const s = subjects(config.vmId);
  let oracle: OutputCommitOracle | null = null;
  const leaseStore = new MemoryLeaseStore(msToUs(config.failover.leaseStoreLatencyMs));
  const busFaults = new BusFaultInjector(s, rng.fork('bus'));
  const runtime = new SimRuntime({
    wireCheck: config.wireCheck,
    busDelayUs: config.busDelayUs,
    leaseStore,
    ...(hooks.tamper ? { tamper: hooks.tamper } : {}),
    ...(hooks.onLog ? { onLog: hooks.onLog } : {}),
    onPublish: (subject, msg, nowUs) => {
      if (oracle !== null && subject === s.tx && msg.type === 'segment') oracle.observeGuest(msg);
      const rep = world.replication;
      if (rep !== null && msg.type === 'checkpointAck' && msg.ok && msg.term === rep.primary.term && msg.host === rep.primary.peerHost) {
        rep.peerAckedEpoch = Math.max(rep.peerAckedEpoch, msg.epoch);
      }
      if (msg.type === 'roleChange') noteLostVm(world, msg, nowUs);
      hooks.onPublish?.(subject, msg, nowUs);
    },
    // An isolated host's heartbeats and control messages are lost.
    dropOnBus: (subject, msg) => {
      const isolated = world.replication?.isolated;
      if (isolated === undefined || isolated.size === 0) return false;
      return (msg.type === 'heartbeat' || msg.type === 'roleChange') && isolated.has(msg.host);
    },
    perturb: (subject, msg) => busFaults.perturb(subject, msg),
  });
  const linkDown = linkDirectionFor(config.link, config.seed, 'down');
  const linkUp = linkDirectionFor(config.link, config.seed, 'up');
  runtime.addHop(s.wireIn, linkUp);
  const guest = new GuestCore(guestOptionsFromConfig(config, s, rng, hooks.recordDigests ?? false));
  const client = new ClientCore(clientOptionsFromConfig(config, s));
  // Replicated runs start under term 1 (the first lease); native has no terms.
  if (isReplicated(config.mode)) guest.tcp.term = 1;
  const world: World = { runtime, guest, client, linkDown, linkUp, replication: null, config, busFaults };
  if (isReplicated(config.mode)) {
    const replication = buildReplication(world, rng, leaseStore, hooks);
    (world as { replication: Replication | null }).replication = replication;
    oracle = replication.oracle;
    runtime.addHop(s.wireOut, new CheckedHop(linkDown, (msg, nowUs) => replication.oracle.check(msg as Segment, nowUs)));
  } else {
    runtime.addHop(s.wireOut, linkDown);
  }
  runtime.addActor(guest);
  runtime.addActor(client);
  return world;
}

function buildReplication(world: World, rng: Rng, leaseStore: MemoryLeaseStore, hooks: WorldHooks): Replication {
  const { config, runtime } = world;
  const recordDigests = hooks.recordDigests ?? false;
  const plantedBug = hooks.plantedBug;
  const s = subjects(config.vmId);
  const replicationLink = (name: string) =>
    new LinkDirection(
      { rateBitsPerSec: config.replicationLink.bandwidthBitsPerSec, delayUs: msToUs(config.replicationLink.rttMs / 2), queueBytes: REPLICATION_QUEUE_BYTES, maxQueueDelayUs: REPLICATION_QUEUE_DELAY_US, lossRate: 0, jitterUs: 0 },
      rng.fork(name),
    );
  const replicationDown = replicationLink('replication.down');
  const replicationUp = replicationLink('replication.up');
  runtime.addHop(s.ckptData, replicationDown);
  runtime.addHop(s.ckptAck, replicationUp);
  const services = primaryServices(config, s, { recordDigests, firstEpoch: 1, unprotected: false, term: 1, host: HOSTS.primary, backupHost: HOSTS.backup, ...(plantedBug ? { plantedBug } : {}) });
  const backup = newBackup(config, recordDigests, false, HOSTS.backup);
  backup.term = 1;
  const f = config.failover;
  const failover = new FailoverCore({
    vmId: config.vmId,
    subjects: s,
    primaryHost: HOSTS.primary,
    backupHost: HOSTS.backup,
    spareHosts: [HOSTS.spare],
    heartbeatIntervalUs: msToUs(f.heartbeatIntervalMs),
    missCount: f.missCount,
    leaseDurationUs: msToUs(f.leaseDurationMs),
    clockSkewUs: msToUs(f.clockSkewMs),
  });
  // Output may come from epochs the backup applied, or that the primary committed alone while it had none.
  const oracle = new OutputCommitOracle(() => Math.max(rep.peerAckedEpoch, rep.primary.stats.lastLocalCommitEpoch));
  const rep: Replication = {
    ...services,
    backup,
    peerAckedEpoch: 0,
    replicationDown,
    replicationUp,
    oracle,
    failover,
    failoverUp: true,
    leaseStore,
    hosts: new Map(),
    history: { guests: [world.guest], services: [services] },
    primaryHost: HOSTS.primary,
    isolated: new Set(),
    isolatedBy: new Map(),
    crashed: new Set(),
    vmLostAtUs: null,
  };
  const addHost = (host: string, role: HostRole, hostServices: Core[]) => {
    const entry = { agent: null as unknown as HostAgentCore, services: hostServices, role, term: 1 };
    entry.agent = new HostAgentCore(
      { vmId: config.vmId, host, subjects: s, heartbeatIntervalUs: msToUs(f.heartbeatIntervalMs), leaseDurationUs: msToUs(f.leaseDurationMs), leaseSafetyUs: msToUs(f.leaseSafetyMs + f.clockSkewMs), ...(role === 'primary' ? { initialBackupHost: HOSTS.backup } : {}) },
      {
        status: () => {
          const backupHere = entry.role === 'backup' && rep.backup !== null && entry.services.includes(rep.backup) ? rep.backup : null;
          return {
            role: entry.role,
            term: entry.term,
            epoch: entry.role === 'primary' ? rep.primary.stats.lastCommittedEpoch : (backupHere?.stats.appliedEpoch ?? 0),
            synced: entry.role === 'primary' || (backupHere?.synced ?? false),
          };
        },
        startDelayUs: (change) => (change.role === 'primary' && entry.role === 'backup' ? msToUs(f.restoreFixedMs) + Math.ceil((config.guest.memoryBytes * US_PER_S) / f.restoreBytesPerSec) : 0),
        prepare: (change) => {
          // The backup's image is final from here: the promotion restores exactly this epoch.
          if (change.role === 'primary' && entry.role === 'backup' && rep.backup !== null && runtime.isRunning(rep.backup)) runtime.removeActor(rep.backup);
        },
        onRoleChange: (change, nowUs) => {
          // A backup that lost its image after the failover chose it (it restarted empty): the lease has moved, nothing to restore.
          if (change.role === 'primary' && entry.role === 'spare' && rep.vmLostAtUs === null) rep.vmLostAtUs = nowUs;
          if (change.role === 'primary' && entry.role === 'backup') promote(world, rep, host, plantedBug === 'stale-term-accepted' ? 1 : change.term, hooks);
          // A joining backup dropped and asked again (its heartbeats were lost) starts over from the next base epoch.
          if (change.role === 'backup' && (entry.role === 'spare' || entry.role === 'backup')) joinAsBackup(world, rep, host, change.term, recordDigests);
          entry.term = change.term;
          entry.role = change.role;
        },
        onFenced: () => {
          if (rep.primaryHost !== host || plantedBug === 'no-fencing') return;
          rep.netbuffer.fenced = true;
          rep.acker.fenced = true;
        },
        onUnfenced: () => {
          if (rep.primaryHost !== host) return;
          rep.netbuffer.fenced = false;
          rep.acker.fenced = false;
        },
      },
    );
    rep.hosts.set(host, entry);
    for (const core of hostServices) runtime.addActor(core);
    runtime.addActor(entry.agent);
  };
  addHost(HOSTS.primary, 'primary', [services.netbuffer, services.acker, services.primary]);
  addHost(HOSTS.backup, 'backup', [backup]);
  addHost(HOSTS.spare, 'spare', []);
  runtime.addActor(failover);
  return rep;
}

/**
 * The backup host becomes primary: its supervisor starts a guest from the
 * last applied checkpoint (memory, state, speculative buffer) and primary
 * services that continue the epoch numbering, unprotected until a new backup
 * joins. The output-commit oracle forgets what the old guest emitted after
 * that checkpoint: it never left, and the new guest emits it again.
 */
function promote(world: World, rep: Replication, host: string, term: number, hooks: WorldHooks): void {
  const recordDigests = hooks.recordDigests ?? false;
  const { config, runtime } = world;
  const backup = rep.backup;
  if (backup === null) return;
  const s = subjects(config.vmId);
  assert(backup.synced, `promoting ${host}, whose backup image is incomplete (${backup.missingPages} pages missing)`);
  const applied = backup.stats.appliedEpoch;
  const guest = new GuestCore(guestOptionsFromConfig(config, s, new Rng(config.seed).fork(`promoted.${term}`), recordDigests));
  if (applied > 0) guest.restore(backup.image.bytes, backup.stateBlob, term);
  const services = primaryServices(config, s, { recordDigests, firstEpoch: applied + 1, unprotected: true, term, host, backupHost: '', ...(hooks.plantedBug ? { plantedBug: hooks.plantedBug } : {}) });
  if (isSpeculative(config.mode) && backup.spec !== null && backup.ackerConnection !== null) services.acker.restore(backup.spec, backup.ackerConnection, applied);
  rep.oracle.rollbackTo(guest.tcp.sndMax, guest.tcp.term);
  if (runtime.isRunning(backup)) runtime.removeActor(backup);
  rep.backup = null;
  const entry = rep.hosts.get(host)!;
  entry.services = [guest, services.netbuffer, services.acker, services.primary];
  for (const core of entry.services) runtime.addActor(core);
  Object.assign(rep, services);
  rep.primaryHost = host;
  rep.history.guests.push(guest);
  rep.history.services.push(services);
  world.guest = guest;
}

/**
 * Re-protection: the spare host starts a backup that waits for the
 * primary's base epoch (an empty image, then every page within a few
 * epochs). The primary keeps running; from the base epoch on its output
 * waits for the new backup, which may be promoted once synced.
 */
function joinAsBackup(world: World, rep: Replication, host: string, term: number, recordDigests: boolean): void {
  const { config, runtime } = world;
  const backup = newBackup(config, recordDigests, true, host);
  backup.term = term;
  rep.backup = backup;
  const entry = rep.hosts.get(host)!;
  for (const core of entry.services) if (runtime.isRunning(core)) runtime.removeActor(core);
  entry.services = [backup];
  runtime.addActor(backup);
}

function newBackup(config: RunConfig, recordDigests: boolean, joining: boolean, host: string): CheckpointerBackupCore {
  return new CheckpointerBackupCore({ vmId: config.vmId, subjects: subjects(config.vmId), memoryBytes: config.guest.memoryBytes, specBufferBytes: config.buffers.specBufferBytes, maxPendingEpochs: config.checkpoint.maxInflightEpochs + 1, recordDigests, joining, host });
}

/**
 * Double failures the failover service's own moves reveal (liveness is not
 * owed after them):
 * - it promotes a host that crashed after it was chosen (a false suspicion
 *   of the primary, from lost heartbeats, and the backup dying meanwhile):
 *   the lease has moved away from the live primary, which stays fenced;
 * - it gives up the backup of a primary that has already crashed (the
 *   backup's heartbeats were lost, and the primary died after its own last
 *   heartbeat): it tells the dead primary to run alone or re-protects it, so
 *   no host it may promote holds the VM. Promoting the dropped backup would be unsafe:
 *   a primary told to replicate elsewhere commits without it.
 */
function noteLostVm(world: World, change: RoleChange, nowUs: number): void {
  const rep = world.replication;
  if (rep === null || rep.vmLostAtUs !== null) return;
  const promotion = change.role === 'primary' && change.host !== rep.primaryHost;
  if (promotion && rep.crashed.has(change.host)) rep.vmLostAtUs = nowUs;
  // Anything else sent while the primary is dead drops or replaces the backup: no promotion can follow.
  if (!promotion && rep.crashed.has(rep.primaryHost)) rep.vmLostAtUs = nowUs;
}

/** Crashes a host: every service on it, and its supervisor, stop at once. */
export function crashHost(world: World, host: string): void {
  const rep = world.replication;
  if (rep === null) return;
  const entry = rep.hosts.get(host);
  if (entry === undefined) return;
  const services = host === rep.primaryHost ? [world.guest, ...entry.services.filter((c) => c !== world.guest)] : entry.services;
  for (const core of [...new Set(services), entry.agent]) if (world.runtime.isRunning(core)) world.runtime.removeActor(core);
  if (rep.backup !== null && services.includes(rep.backup)) rep.backup = null;
  rep.crashed.add(host);
  const primaryAlive = !rep.crashed.has(rep.primaryHost);
  // Only the backup the failover service would promote counts: one it dropped (its heartbeats were lost) is behind the primary's local commits.
  const backupHost = rep.backup === null ? undefined : [...rep.hosts].find(([, e]) => e.services.includes(rep.backup!))?.[0];
  const syncedBackupAlive = rep.backup !== null && rep.backup.synced && backupHost === rep.failover.backupHost;
  if (!primaryAlive && !syncedBackupAlive && rep.vmLostAtUs === null) rep.vmLostAtUs = world.runtime.nowUs;
  // The lease was taken for this host (a false suspicion of the primary) and it dies before it runs as primary:
  // the old primary is fenced for good, and nobody else holds the VM.
  const holder = rep.leaseStore.table.peek(world.config.vmId)?.record.primaryHost;
  if (holder === host && host !== rep.primaryHost && rep.vmLostAtUs === null) rep.vmLostAtUs = world.runtime.nowUs;
}

/** The primary host each service crash hit (the primary may have changed by the time its supervisor acts). */
const serviceCrashedOn = new WeakMap<Fault, string>();

/** The host running the current backup (a dropped one may still believe it is one). */
function backupHostOf(rep: Replication): string | undefined {
  const backup = rep.backup;
  return backup === null ? undefined : [...rep.hosts].find(([, e]) => e.services.includes(backup))?.[0];
}

/**
 * The backup's checkpointer process dies and its supervisor starts it again
 * with nothing: the image is gone, so the host reports in as a spare and can
 * only come back through re-protection (a base epoch).
 */
function restartBackupService(world: World, rep: Replication, host: string): void {
  const entry = rep.hosts.get(host)!;
  for (const core of entry.services) if (world.runtime.isRunning(core)) world.runtime.removeActor(core);
  entry.services = [];
  entry.role = 'spare';
  rep.backup = null;
}

/** Starts or ends a fault. */
export function applyFaultStep(world: World, step: FaultStep): void {
  const rep = world.replication;
  if (rep === null) return;
  const f = step.fault;
  switch (f.kind) {
    case 'crash': {
      const host = f.role === 'primary' ? rep.primaryHost : backupHostOf(rep);
      if (host !== undefined) crashHost(world, host);
      return;
    }
    case 'isolate-primary':
    case 'isolate-backup': {
      if (step.phase === 'start') {
        const host = f.kind === 'isolate-primary' ? rep.primaryHost : backupHostOf(rep);
        if (host === undefined) return;
        rep.isolatedBy.set(f, host);
        rep.isolated.add(host);
        rep.leaseStore.partitioned.add(`host.${host}`);
      } else {
        const host = rep.isolatedBy.get(f);
        if (host === undefined) return;
        rep.isolatedBy.delete(f);
        // Overlapping windows on one host: it stays cut off until the last one ends.
        if ([...rep.isolatedBy.values()].includes(host)) return;
        rep.isolated.delete(host);
        rep.leaseStore.partitioned.delete(`host.${host}`);
      }
      return;
    }
    case 'crash-primary-service': {
      const host = rep.primaryHost;
      if (step.phase === 'start') {
        const core = { guest: world.guest, netbuffer: rep.netbuffer, acker: rep.acker, checkpointer: rep.primary }[f.service];
        if (world.runtime.isRunning(core)) world.runtime.removeActor(core);
        serviceCrashedOn.set(f, host);
      } else {
        const crashedOn = serviceCrashedOn.get(f);
        // The supervisor found a service of its primary dead: it takes the host down, so the backup takes over.
        if (crashedOn !== undefined && !rep.crashed.has(crashedOn)) crashHost(world, crashedOn);
      }
      return;
    }
    case 'restart-failover': {
      if (step.phase === 'start') {
        if (world.runtime.isRunning(rep.failover)) world.runtime.removeActor(rep.failover);
        rep.failoverUp = false;
      } else if (!rep.failoverUp) {
        // A new process with only its configuration: it learns the roles from the lease and the heartbeats.
        const restarted = new FailoverCore({ ...rep.failover.options, recover: true });
        Object.assign(restarted.stats, structuredClone(rep.failover.stats)); // the run's totals span both
        rep.failover = restarted;
        rep.failoverUp = true;
        world.runtime.addActor(restarted);
      }
      return;
    }
    case 'restart-backup': {
      const host = backupHostOf(rep);
      if (host !== undefined) restartBackupService(world, rep, host);
      return;
    }
    case 'lease-outage':
      rep.leaseStore.available = step.phase === 'end';
      return;
    case 'slow-replication': {
      const rateBitsPerSec = world.config.replicationLink.bandwidthBitsPerSec / (step.phase === 'start' ? f.factor : 1);
      rep.replicationDown.setRate(rateBitsPerSec);
      rep.replicationUp.setRate(rateBitsPerSec);
      return;
    }
    case 'bus':
      if (step.phase === 'start') world.busFaults.start(f);
      else world.busFaults.end(f);
      return;
  }
}

/** Runs the world to the end of its duration (or until a bulk transfer completes), injecting its faults. */
export function runWorld(world: World, onProgress?: (simUs: number) => void, extraFaults: readonly Fault[] = []): void {
  const endUs = sToUs(world.config.durationS);
  const sliceUs = 100 * US_PER_MS;
  const done = () => world.client.stats.peerClosedAtUs !== null;
  const crashAtMs = world.config.faults.crashPrimaryAtMs;
  const steps = world.replication === null ? [] : faultSteps([...(crashAtMs === null ? [] : [{ kind: 'crash', role: 'primary', atMs: crashAtMs } as const]), ...extraFaults]);
  let next = 0;
  for (let t = sliceUs; ; t += sliceUs) {
    const sliceEnd = Math.min(t, endUs);
    while (next < steps.length && steps[next]!.atUs <= sliceEnd) {
      const step = steps[next++]!;
      world.runtime.runUntil(step.atUs, done);
      applyFaultStep(world, step);
    }
    world.runtime.runUntil(sliceEnd, done);
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
