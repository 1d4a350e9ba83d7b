import { assert } from '../lib/assert.js';
import type { WireMessage } from '../lib/codec/messages.js';
import type { RunConfig } from '../lib/config/run-config.js';
import { InvariantViolationError } from '../lib/errors.js';
import { clientLinkFor, LinkDirection, replicationLinkFor } from '../lib/link/index.js';
import type { ServiceExtras } from '../lib/planted-bugs.js';
import { Rng } from '../lib/rng.js';
import { HostClock, SimRuntime, type Publisher, type SimRuntimeOptions } from '../lib/runtime/sim/index.js';
import { topologyOf, type Topology } from '../lib/topology/index.js';
import { msToUs, sToUs, US_PER_MS } from '../lib/units.js';
import { AckerCore } from '../services/acker/core.js';
import { ackerOptionsFromConfig } from '../services/acker/options-from-config.js';
import { Auditor, VmLossClassifier } from '../services/auditor/index.js';
import type { Violation } from '../services/auditor/violations.js';
import { CheckpointerCore } from '../services/checkpointer/core.js';
import { checkpointerOptionsFromConfig } from '../services/checkpointer/options-from-config.js';
import { ClientCore } from '../services/client/core.js';
import { clientOptionsFromConfig } from '../services/client/options-from-config.js';
import { FailoverCore } from '../services/failover/core.js';
import { failoverOptionsFromConfig } from '../services/failover/options-from-config.js';
import { GuestCore } from '../services/guest/core.js';
import { guestOptionsFromConfig } from '../services/guest/options-from-config.js';
import { HostAgentCore } from '../services/host-agent/core.js';
import { hostAgentOptionsFromConfig } from '../services/host-agent/options-from-config.js';
import { NetbufferCore } from '../services/netbuffer/core.js';
import { netbufferOptionsFromConfig } from '../services/netbuffer/options-from-config.js';
import { BusFaultInjector } from './bus-faults.js';
import { faultSteps, type Fault, type FaultStep } from './faults.js';
import { MemoryLeaseStore } from './lease-store.js';

/** The services one host runs now (a restarted one replaces its predecessor). */
export interface HostServices {
  guest: GuestCore;
  checkpointer: CheckpointerCore;
  netbuffer: NetbufferCore;
  acker: AckerCore;
  agent: HostAgentCore;
}

/** One machine of a replicated run: its clock and the services on it. */
export interface SimHost {
  readonly name: string;
  readonly clock: HostClock;
  readonly services: HostServices;
  /** Service instances a restart replaced, for totals. */
  readonly retired: (GuestCore | CheckpointerCore | NetbufferCore | AckerCore)[];
  /** False once it crashed. */
  up: boolean;
}

/** The replication side of a replicated run. */
export interface Replication {
  readonly replicationDown: LinkDirection;
  readonly replicationUp: LinkDirection;
  readonly auditor: Auditor;
  readonly vmLoss: VmLossClassifier;
  /** The failover service running now; null while it is down. */
  failover: FailoverCore | null;
  /** Every failover service that ran (a restarted one adds one), for totals. */
  readonly failovers: FailoverCore[];
  readonly leaseStore: MemoryLeaseStore;
  /** Hosts cut off from the failover service and the lease store (fault injection). */
  readonly isolated: Set<string>;
  /** The host each isolation window cut off (windows may overlap). */
  readonly isolatedBy: Map<Fault, string>;
  /** Hosts whose heartbeats are lost, and the host each muting window hit. */
  readonly muted: Set<string>;
  readonly mutedBy: Map<Fault, string>;
  /** The failover service has lost the bus (fault `cut-off-failover`). */
  failoverCutOff: boolean;
}

/** A built simulation: the runtime and handles to every component. */
export interface World {
  readonly runtime: SimRuntime;
  readonly config: RunConfig;
  readonly topology: Topology;
  readonly client: ClientCore;
  /** The guest of a native run; null when replicated (each host has one). */
  readonly nativeGuest: GuestCore | null;
  readonly hosts: ReadonlyMap<string, SimHost>;
  readonly linkDown: LinkDirection;
  readonly linkUp: LinkDirection;
  readonly replication: Replication | null;
  /** Loss, duplication and delay between services while a bus fault lasts. */
  readonly busFaults: BusFaultInjector;
  /**
   * A `tamper` hook rewrites deliveries: cores may then act on messages the
   * auditor never saw published (a forged role change makes two primaries
   * of one term), so its view of the guest's bytes is no longer complete.
   */
  readonly deliveriesTampered: boolean;
}

export interface WorldHooks {
  readonly tamper?: SimRuntimeOptions['tamper'];
  readonly onLog?: SimRuntimeOptions['onLog'];
  /** Keep image digests on both hosts (checkpoint exactness tests). */
  readonly recordDigests?: boolean;
  /** Tests only: a bug the simulator must catch. */
  readonly plantedBug?: ServiceExtras['plantedBug'];
  /** Sees every message as it is published (after the auditor). */
  readonly onPublish?: (subject: string, msg: WireMessage, nowUs: number, from: Publisher) => void;
  /** Receives every span the services report (config.tracing says which). */
  readonly onSpan?: SimRuntimeOptions['onSpan'];
  /**
   * Receives each output-commit violation the auditor finds, and the run goes
   * on; without it the first one ends the run (InvariantViolationError). For
   * runs with forged messages on trusted subjects, where the question is
   * whether a core survives them.
   */
  readonly onViolation?: (violation: Violation) => void;
}

/** The clock of machine `node` (a host, 'failover' or 'client'): exact unless the run's faults skew it. */
function clockOf(config: RunConfig, node: string): HostClock {
  const skew = config.faults.clocks.find((c) => c.node === node);
  return new HostClock(skew === undefined ? undefined : { offsetUs: skew.offsetUs, driftPpm: skew.driftPpm });
}

/** `busJitterUs`: every subject but the client's link (which has its own jitter) is delayed by [0, maxUs], from its own seeded stream. */
function busJitter(maxUs: number, unjittered: ReadonlySet<string>, rng: Rng): (subject: string) => number | null {
  return (subject) => (unjittered.has(subject) ? null : rng.int(maxUs + 1));
}

/** Builds the world of one run from its topology: the client behind its link, and the hosts with their services. */
export function buildWorld(config: RunConfig, hooks: WorldHooks = {}): World {
  const topology = topologyOf(config);
  const s = topology.subjects;
  const rng = new Rng(config.seed);
  const replicated = topology.replicated;
  let world: World | null = null;
  const auditor = new Auditor(config.vmId, (v) => {
    if (hooks.onViolation) hooks.onViolation(v);
    else throw new InvariantViolationError(v);
  }, 2 * config.tcp.rcvBufBytes);
  const vmLoss = new VmLossClassifier({ primaryHost: topology.primaryHost, backupHost: topology.backupHost, hosts: topology.hosts });
  const leaseStore = new MemoryLeaseStore(msToUs(config.failover.leaseStoreLatencyMs), (record) => vmLoss.leaseWritten(record));
  const busFaults = new BusFaultInjector(s, topology.hosts, rng.fork('bus'));
  const runtime = new SimRuntime({
    wireCheck: config.wireCheck,
    busDelayUs: config.busDelayUs,
    leaseStore,
    ...(hooks.tamper ? { tamper: hooks.tamper } : {}),
    ...(hooks.onLog ? { onLog: hooks.onLog } : {}),
    ...(hooks.onSpan ? { onSpan: hooks.onSpan } : {}),
    onPublish: (subject, msg, nowUs, from) => {
      if (replicated) {
        auditor.observe(subject, msg, { atUs: nowUs, host: from.host, localUs: from.clock.localUs(nowUs) });
        vmLoss.observe(subject, msg, nowUs);
      }
      hooks.onPublish?.(subject, msg, nowUs, from);
    },
    // An isolated host's heartbeats and the role changes for it are lost; a muted host's heartbeats too; every
    // heartbeat and role change while the failover service is cut off.
    dropOnBus: (_subject, msg) => {
      const rep = world?.replication;
      if (rep === undefined || rep === null) return false;
      if (rep.failoverCutOff && (msg.type === 'heartbeat' || msg.type === 'roleChange')) return true;
      if (rep.isolated.size === 0 && rep.muted.size === 0) return false;
      if (msg.type === 'heartbeat') return rep.isolated.has(msg.host) || rep.muted.has(msg.host);
      return msg.type === 'roleChange' && rep.isolated.has(msg.host);
    },
    perturb: (subject, msg) => busFaults.perturb(subject, msg),
    ...(config.busJitterUs > 0 ? { jitterUs: busJitter(config.busJitterUs, new Set([s.wireOut, s.wireIn]), rng.fork('bus-jitter')) } : {}),
  });
  const linkDown = clientLinkFor(config, 'down');
  const linkUp = clientLinkFor(config, 'up');
  runtime.addHop(s.wireIn, linkUp);
  runtime.addHop(s.wireOut, linkDown);
  const client = new ClientCore(clientOptionsFromConfig(config));
  const extras: ServiceExtras = { ...(hooks.recordDigests ? { recordDigests: true } : {}), ...(hooks.plantedBug ? { plantedBug: hooks.plantedBug } : {}) };
  const hosts = new Map<string, SimHost>();
  let replication: Replication | null = null;
  let nativeGuest: GuestCore | null = null;
  if (replicated) {
    // One replication NIC each way: every backup host's checkpoints share it, as the acknowledgements do.
    const replicationDown = replicationLinkFor(config.replicationLink, config.seed, 'down');
    const replicationUp = replicationLinkFor(config.replicationLink, config.seed, 'up');
    for (const host of topology.hosts) runtime.addHop(s.ckptData(host), replicationDown);
    runtime.addHop(s.ckptAck, replicationUp);
    for (const name of topology.hosts) {
      const clock = clockOf(config, name);
      const services: HostServices = {
        guest: new GuestCore(guestOptionsFromConfig(config, name, extras)),
        checkpointer: new CheckpointerCore(checkpointerOptionsFromConfig(config, name)),
        netbuffer: new NetbufferCore(netbufferOptionsFromConfig(config, name, extras)),
        acker: new AckerCore(ackerOptionsFromConfig(config, name, extras)),
        agent: new HostAgentCore(hostAgentOptionsFromConfig(config, name, extras)),
      };
      const host: SimHost = { name, clock, services, retired: [], up: true };
      hosts.set(name, host);
      for (const core of [services.guest, services.checkpointer, services.netbuffer, services.acker, services.agent]) runtime.addActor(core, { host: name, clock });
    }
    const failover = new FailoverCore(failoverOptionsFromConfig(config));
    runtime.addActor(failover, { clock: clockOf(config, 'failover') });
    replication = { replicationDown, replicationUp, auditor, vmLoss, failover, failovers: [failover], leaseStore, isolated: new Set(), isolatedBy: new Map(), muted: new Set(), mutedBy: new Map(), failoverCutOff: false };
  } else {
    nativeGuest = new GuestCore(guestOptionsFromConfig(config, null, extras));
    runtime.addActor(nativeGuest, { clock: clockOf(config, 'guest') });
  }
  runtime.addActor(client, { clock: clockOf(config, 'client') });
  world = { runtime, config, topology, client, nativeGuest, hosts, linkDown, linkUp, replication, busFaults, deliveriesTampered: hooks.tamper !== undefined };
  return world;
}

/** The host whose agent serves as primary under the newest term (a deposed one may still believe it is). */
export function primaryHostOf(world: World): SimHost | undefined {
  let best: SimHost | undefined;
  for (const h of world.hosts.values()) {
    if (!h.up || h.services.agent.state !== 'primary') continue;
    if (best === undefined || h.services.agent.term > best.services.agent.term) best = h;
  }
  return best;
}

/** A host serving as backup (mid-promotion too): the one the failover service would promote, failing that any. */
export function backupHostOf(world: World): SimHost | undefined {
  const named = world.replication?.failover?.backupHost ?? null;
  const backups = [...world.hosts.values()].filter((h) => h.up && h.services.agent.role === 'backup');
  return backups.find((h) => h.name === named) ?? backups[0];
}

/** Crashes a host: every service on it, and its agent, stop at once. */
export function crashHost(world: World, host: string): void {
  const h = world.hosts.get(host);
  const rep = world.replication;
  if (h === undefined || rep === null || !h.up) return;
  const s = h.services;
  for (const core of [s.guest, s.checkpointer, s.netbuffer, s.acker, s.agent]) if (world.runtime.isRunning(core)) world.runtime.removeActor(core);
  h.up = false;
  rep.vmLoss.hostDown(host, world.runtime.nowUs);
}

/** The primary host each service crash hit (the primary may have changed by the time its supervisor acts). */
const serviceCrashedOn = new WeakMap<Fault, string>();

/** A fresh instance of a host's service, as its process starts again with only its configuration. */
function freshService<K extends keyof Omit<HostServices, 'agent'>>(old: HostServices[K]): HostServices[K] {
  if (old instanceof GuestCore) return new GuestCore(old.options) as HostServices[K];
  if (old instanceof CheckpointerCore) return new CheckpointerCore(old.options) as HostServices[K];
  if (old instanceof NetbufferCore) return new NetbufferCore(old.options) as HostServices[K];
  return new AckerCore((old as AckerCore).options) as HostServices[K];
}

/**
 * A service process dies and its supervisor starts it again with nothing;
 * its host agent learns so from the new incarnation's first report.
 */
function restartService(world: World, h: SimHost, service: keyof Omit<HostServices, 'agent'>): void {
  const old = h.services[service];
  if (world.runtime.isRunning(old)) world.runtime.removeActor(old);
  const fresh = freshService(old);
  (h.services as unknown as Record<string, unknown>)[service] = fresh;
  h.retired.push(old);
  world.runtime.addActor(fresh, { host: h.name, clock: h.clock });
}

/** Starts or ends a fault. */
export function applyFaultStep(world: World, step: FaultStep): void {
  const rep = world.replication;
  if (rep === null) return;
  const f = step.fault;
  switch (f.kind) {
    case 'crash': {
      const host = f.role === 'primary' ? primaryHostOf(world) : backupHostOf(world);
      if (host !== undefined) crashHost(world, host.name);
      return;
    }
    case 'isolate-primary':
    case 'isolate-backup': {
      if (step.phase === 'start') {
        const host = (f.kind === 'isolate-primary' ? primaryHostOf(world) : backupHostOf(world))?.name;
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
    case 'mute-heartbeats': {
      if (step.phase === 'start') {
        const host = (f.role === 'primary' ? primaryHostOf(world) : backupHostOf(world))?.name;
        if (host === undefined) return;
        rep.mutedBy.set(f, host);
        rep.muted.add(host);
      } else {
        const host = rep.mutedBy.get(f);
        if (host === undefined) return;
        rep.mutedBy.delete(f);
        if (![...rep.mutedBy.values()].includes(host)) rep.muted.delete(host);
      }
      return;
    }
    case 'crash-primary-service': {
      if (step.phase === 'start') {
        const h = primaryHostOf(world);
        if (h === undefined) return;
        const core = h.services[f.service];
        if (world.runtime.isRunning(core)) world.runtime.removeActor(core);
        serviceCrashedOn.set(f, h.name);
      } else {
        // Its process manager starts it again, empty; the host agent sees the new incarnation (or, had it stayed
        // down, the silence) and takes the host down: the VM's state in that service is gone.
        const h = world.hosts.get(serviceCrashedOn.get(f) ?? '');
        if (h !== undefined && h.up) restartService(world, h, f.service);
      }
      return;
    }
    case 'cut-off-failover': {
      const failover = rep.failover;
      rep.failoverCutOff = step.phase === 'start';
      if (rep.failoverCutOff) rep.leaseStore.partitioned.add('failover');
      else rep.leaseStore.partitioned.delete('failover');
      if (failover !== null && world.runtime.isRunning(failover)) world.runtime.connection(failover, step.phase === 'end');
      return;
    }
    case 'restart-failover': {
      if (step.phase === 'start') {
        if (rep.failover !== null && world.runtime.isRunning(rep.failover)) world.runtime.removeActor(rep.failover);
        rep.failover = null;
      } else if (rep.failover === null) {
        // A new process with only its configuration, as the first: the lease tells it that it was restarted.
        const restarted = new FailoverCore(failoverOptionsFromConfig(world.config));
        rep.failover = restarted;
        rep.failovers.push(restarted);
        world.runtime.addActor(restarted, { clock: clockOf(world.config, 'failover') });
        if (rep.failoverCutOff) world.runtime.connection(restarted, false); // it starts without the bus too
      }
      return;
    }
    case 'restart-backup': {
      const h = backupHostOf(world);
      if (h !== undefined) restartService(world, h, 'guest');
      return;
    }
    case 'reboot-backup': {
      const h = backupHostOf(world);
      if (h === undefined) return;
      // The host's agent may already be promoting it: a reboot then takes the VM's only live copy.
      rep.vmLoss.hostRebooted(h.name, world.runtime.nowUs);
      for (const service of ['guest', 'checkpointer', 'netbuffer', 'acker'] as const) restartService(world, h, service);
      const old = h.services.agent;
      if (world.runtime.isRunning(old)) world.runtime.removeActor(old);
      h.services.agent = new HostAgentCore(old.options); // an agent keeps no totals a run reports
      world.runtime.addActor(h.services.agent, { host: h.name, clock: h.clock });
      return;
    }
    case 'restart-agent': {
      const h = f.role === 'primary' ? primaryHostOf(world) : backupHostOf(world);
      if (h === undefined) return;
      const old = h.services.agent;
      if (world.runtime.isRunning(old)) world.runtime.removeActor(old);
      h.services.agent = new HostAgentCore(old.options);
      world.runtime.addActor(h.services.agent, { host: h.name, clock: h.clock });
      return;
    }
    case 'revive':
      for (const h of world.hosts.values()) {
        if (h.up) continue;
        for (const service of ['guest', 'checkpointer', 'netbuffer', 'acker'] as const) restartService(world, h, service);
        h.services.agent = new HostAgentCore(h.services.agent.options);
        world.runtime.addActor(h.services.agent, { host: h.name, clock: h.clock });
        h.up = true;
        rep.vmLoss.hostRevived(h.name);
      }
      return;
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
    while (next < steps.length && steps[next]!.atUs <= sliceEnd && !done()) {
      const step = steps[next++]!;
      world.runtime.runUntil(step.atUs, done);
      if (!done()) applyFaultStep(world, step);
    }
    world.runtime.runUntil(sliceEnd, done);
    onProgress?.(world.runtime.nowUs);
    if (done() || t >= endUs) break;
  }
  // Here the auditor sees every message as it is published: a guest byte it never saw emitted is a bug, not a gap
  // (unless deliveries were forged: then cores act on what no one published, and the hostile test counts it).
  const unseen = world.replication?.auditor.unseenGuestBytes ?? 0;
  assert(unseen === 0 || world.deliveriesTampered, () => `the auditor missed ${unseen} guest bytes in the simulator, where it sees every publication`);
  // Nor a permit: a number skipped here is an agent that numbers its permits wrong.
  const permitsMissed = world.replication?.auditor.stats.permitsMissed ?? 0;
  assert(permitsMissed === 0 || world.deliveriesTampered, () => `the auditor missed ${permitsMissed} release permits in the simulator, where it sees every publication`);
}

/** Delivered goodput over the run (or until the transfer completed); `bulkOnly`: of the bulk connection alone. */
export function goodputBitsPerSec(world: World, bulkOnly = false): number {
  return world.client.goodputBitsPerSec(sToUs(world.config.durationS), bulkOnly);
}
