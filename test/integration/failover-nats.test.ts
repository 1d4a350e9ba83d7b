/**
 * The failover service over a real nats-server with its leases in JetStream
 * KV, against the REAL host agents: host-a's agent (the first primary: it
 * creates the lease and renews it every heartbeat), host-b's agent with
 * host-b's guest, checkpointer, netbuffer and acker (the first backup, with a
 * synced empty image: a promotion restores epoch 0 and needs no traffic) and
 * host-c's agent (the spare). Every service runs in this process through
 * runServiceProcess, each on its own connection, as its own process would;
 * host-a's and host-c's other services do not run (serviceStartupMs keeps
 * their agents from halting meanwhile). A host "crashes" when its services'
 * AbortSignals fire: its heartbeats and renewals stop. The CLI tests need
 * `npm run build` first (npm test does it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { EXIT_UNAVAILABLE } from '../../cli/exit-codes.js';
import { decodeBatch } from '../../lib/codec/batch.js';
import { decode } from '../../lib/codec/codec.js';
import type { FailoverStatus, Heartbeat, RoleChange, WireMessage, WireMessageType } from '../../lib/codec/messages.js';
import { subjects } from '../../lib/codec/subjects.js';
import { NATS_TIMING } from '../../lib/config/nats-profile.js';
import { runConfigSchema, type RunConfig } from '../../lib/config/run-config.js';
import { KvLeaseStore } from '../../lib/lease/kv-store.js';
import { leaseRecordSchema, type LeaseRecord, type LeaseStore } from '../../lib/lease/types.js';
import { wallClock } from '../../lib/runtime/nats/clock.js';
import { HEADER_BATCH } from '../../lib/runtime/nats/shell.js';
import { runServiceProcess, type FinalLine, type ReadyLine, type ServiceDefinition } from '../../lib/runtime/nats/service-process.js';
import { ackerService } from '../../services/acker/main.js';
import { checkpointerService } from '../../services/checkpointer/main.js';
import { failoverService } from '../../services/failover/main.js';
import { guestService } from '../../services/guest/main.js';
import { hostAgentService } from '../../services/host-agent/main.js';
import { netbufferService } from '../../services/netbuffer/main.js';
import { freePort, skipWithoutNatsBinary, startNatsServer, withNats, type NatsServerProcess } from './support/nats.js';

const HEARTBEAT_INTERVAL_MS = 50;
const MISS_COUNT = 3;
const LEASE_DURATION_MS = 300;
/** Larger than the default 1 ms so that "after expiry + skew" differs visibly from "after expiry". */
const CLOCK_SKEW_MS = 10;
/** Agents whose services never start (host-a's, host-c's) must not halt during a test. */
const SERVICE_STARTUP_MS = 60_000;
/** Bound on any one wait for the services to act (a take-over needs ~0.5 s: detection, then the old lease's expiry). */
const ACT_TIMEOUT_MS = 5_000;
/** Bound on a spawned CLI becoming ready (node start and module loading on a slow machine). */
const CLI_READY_TIMEOUT_MS = 15_000;
/** Bound on JetStream recovering a killed server's KV stream after the restart. */
const RECOVERY_TIMEOUT_MS = 10_000;
const CLI = fileURLToPath(new URL('../../dist/cli/specula.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const nats = await withNats();
const skipOutage = skipWithoutNatsBinary('failover-nats: the lease-store outage test');
afterAll(async () => {
  await nats?.stop();
});

/** The clock the services run on (the same formula in this process reads the same time). */
const wall = wallClock();
const wallMs = (): number => wall.nowUs() / 1000;
/** VM ids and buckets unique to this run: the server may be shared (NATS_URL). */
const RUN = `fo${process.pid}x${Date.now().toString(36)}`;
let runs = 0;
const unique = (): { vmId: string; bucket: string } => {
  const n = runs++;
  return { vmId: `${RUN}-vm${n}`, bucket: `${RUN}_leases${n}` };
};

const FAILOVER_CONFIG = { heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, missCount: MISS_COUNT, leaseDurationMs: LEASE_DURATION_MS, clockSkewMs: CLOCK_SKEW_MS, serviceStartupMs: SERVICE_STARTUP_MS };

/** Spec mode (a promotion hands the acker the speculative buffer), the bus timing of NATS runs. */
function configInput(vmId: string) {
  return { vmId, mode: 'spec' as const, failover: FAILOVER_CONFIG, bus: { ...NATS_TIMING.bus } };
}

const configFor = (vmId: string): RunConfig => runConfigSchema.parse(configInput(vmId));

function connectTo(url: string): Promise<NatsConnection> {
  return connect({ servers: url, name: 'specula-failover-test', reconnectTimeWait: 100, maxReconnectAttempts: -1, timeout: 2_000 });
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = ACT_TIMEOUT_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function waitForAsync(what: string, condition: () => Promise<boolean>, timeoutMs = ACT_TIMEOUT_MS): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const silent = pino({ level: 'silent' });

/** Where a host agent's leases are: a bucket on the bus's server, or a store the test owns (and takes away). */
type LeaseSource = { readonly leaseBucket: string } | { readonly leaseStore: LeaseStore };

/** One service run in this process as its process would run it. */
class RunningService {
  readonly abort = new AbortController();
  readonly lines: string[] = [];
  readonly final: Promise<FinalLine>;

  constructor(
    readonly def: ServiceDefinition,
    readonly host: string | null,
    url: string,
    config: RunConfig,
    lease: LeaseSource,
  ) {
    this.final = runServiceProcess(def, { natsUrl: url, host, configs: [config], ...lease, signal: this.abort.signal, write: (l) => this.lines.push(l), logger: silent });
    this.final.catch(() => undefined); // awaited by the test; never an unhandled rejection
  }

  get label(): string {
    return `${this.host ?? 'vm'} ${this.def.name}`;
  }

  async ready(): Promise<ReadyLine> {
    let failed: unknown = null;
    void this.final.catch((err: unknown) => (failed = err ?? new Error('failed')));
    await waitFor(`${this.label} ready`, () => this.lines.length > 0 || failed !== null, CLI_READY_TIMEOUT_MS);
    if (failed !== null) throw failed instanceof Error ? failed : new Error(String(failed));
    return JSON.parse(this.lines[0]!) as ReadyLine;
  }

  /** Its final line: stops it first (the crash of its host, or the end of the test). */
  async stop(): Promise<FinalLine> {
    this.abort.abort();
    return this.final;
  }
}

/** The processes of one host: its services (if any), then its agent, as the launcher starts them. */
class RunningHost {
  readonly services: RunningService[] = [];

  private constructor(readonly host: string) {}

  static async start(url: string, config: RunConfig, host: string, lease: LeaseSource, defs: readonly ServiceDefinition[]): Promise<RunningHost> {
    const h = new RunningHost(host);
    for (const def of [...defs, hostAgentService]) {
      const s = new RunningService(def, host, url, config, lease);
      h.services.push(s);
      await s.ready();
    }
    return h;
  }

  get agent(): RunningService {
    return this.services.at(-1)!;
  }

  /** The machine dies: every process of the host stops at once (no heartbeat, no renewal after this). */
  async crash(): Promise<void> {
    for (const s of this.services) s.abort.abort();
    await Promise.allSettled(this.services.map((s) => s.final));
  }
}

/** Every message of `type` on `subject` (batches unpacked), with when it arrived. */
function watch<T extends WireMessage>(nc: NatsConnection, subject: string, type: WireMessageType): { msg: T; atMs: number }[] {
  const got: { msg: T; atMs: number }[] = [];
  nc.subscribe(subject, {
    callback: (_err, m: Msg) => {
      const atMs = wallMs();
      const parts = m.headers?.get(HEADER_BATCH) ? decodeBatch(m.data) : [m.data];
      for (const part of parts) got.push({ msg: decode(type, part) as T, atMs });
    },
  });
  return got;
}

interface LeaseWrite {
  readonly revision: number;
  readonly record: LeaseRecord;
}

/** Every write of the VM's lease, in revision order, as the store applied it (a watch from before the first one). */
async function watchLease(store: KvLeaseStore, vmId: string): Promise<{ writes: LeaseWrite[]; stop: () => void }> {
  const writes: LeaseWrite[] = [];
  const iter = await store.kv.watch({ key: vmId });
  void (async () => {
    for await (const e of iter) {
      if (e.operation === 'PUT') writes.push({ revision: e.revision, record: leaseRecordSchema.parse(JSON.parse(e.string())) });
    }
  })().catch(() => undefined);
  return { writes, stop: () => iter.stop() };
}

/** What a test watches of one VM: role changes to host-b, host-b's heartbeats, the failover service's view. */
function observe(nc: NatsConnection, vmId: string) {
  const s = subjects(vmId);
  return {
    toB: watch<RoleChange>(nc, s.control('host-b'), 'roleChange'),
    beatsB: watch<Heartbeat>(nc, s.heartbeat('host-b'), 'heartbeat'),
    views: watch<FailoverStatus>(nc, s.failover, 'failoverStatus'),
  };
}

/** The hosts of a VM: host-a's agent, host-b's four services and agent, host-c's agent. */
async function startHosts(url: string, config: RunConfig, lease: (host: string) => LeaseSource): Promise<RunningHost[]> {
  return [
    await RunningHost.start(url, config, 'host-a', lease('host-a'), []),
    await RunningHost.start(url, config, 'host-b', lease('host-b'), [guestService, checkpointerService, netbufferService, ackerService]),
    await RunningHost.start(url, config, 'host-c', lease('host-c'), []),
  ];
}

describe.skipIf(nats === null)('failover service over NATS with leases in JetStream KV, against the real host agents', () => {
  const url = nats?.url ?? '';

  it("promotes host-b with term 2 once host-a is silent, no earlier than host-a's last lease expired + skew; host-b's agent ends up primary", async () => {
    const { vmId, bucket } = unique();
    const config = configFor(vmId);
    const nc = await connectTo(url);
    const store = await KvLeaseStore.open(nc, { bucket, requestTimeoutMs: 1_000 });
    const lease = await watchLease(store, vmId);
    const seen = observe(nc, vmId);
    let hosts: RunningHost[] = [];
    let failover: RunningService | null = null;
    try {
      await nc.flush();
      hosts = await startHosts(url, config, () => ({ leaseBucket: bucket }));
      const [hostA, hostB] = hosts as [RunningHost, RunningHost, RunningHost];
      // host-a's agent creates the lease with its first renewal, naming its backup.
      await waitFor('host-a creates the lease', () => lease.writes.length > 0);
      expect(lease.writes[0]!.record).toMatchObject({ primaryHost: 'host-a', term: 1, backupHost: 'host-b' });

      failover = new RunningService(failoverService, null, url, config, { leaseBucket: bucket });
      expect(await failover.ready()).toMatchObject({ kind: 'ready', service: 'failover', host: null, vms: [vmId] });

      // Live heartbeats and renewals for a few intervals beyond the miss count: no failover.
      await sleep(HEARTBEAT_INTERVAL_MS * (MISS_COUNT + 3));
      expect(seen.toB).toEqual([]);
      expect((await store.get(vmId))?.record).toMatchObject({ primaryHost: 'host-a', term: 1 });
      const renewalsBefore = lease.writes.filter((w) => w.record.primaryHost === 'host-a').length;
      expect(renewalsBefore).toBeGreaterThanOrEqual(MISS_COUNT + 3);

      const crashedAtMs = wallMs();
      await hostA.crash();
      await waitFor('role change for host-b', () => seen.toB.length > 0);
      const promotion = seen.toB[0]!;
      expect(promotion.msg).toMatchObject({ type: 'roleChange', vmId, host: 'host-b', role: 'primary', term: 2 });

      // The failover service's take-over is the first term-2 write; the record it replaced is host-a's last renewal.
      await waitFor('the take-over in the watch', () => lease.writes.some((w) => w.record.term === 2));
      const takeOver = lease.writes.findIndex((w) => w.record.term === 2);
      expect(lease.writes[takeOver]!.record).toMatchObject({ primaryHost: 'host-b', term: 2, backupHost: '' });
      const lastOfA = lease.writes[takeOver - 1]!.record;
      expect(lastOfA).toMatchObject({ primaryHost: 'host-a', term: 1 });
      expect(lease.writes.slice(takeOver).every((w) => w.record.primaryHost === 'host-b' && w.record.term === 2)).toBe(true);
      // The old primary may release output until its lease runs out; the new one is told only after that, skew included.
      expect(promotion.atMs).toBeGreaterThanOrEqual(lastOfA.expiresAtMs + CLOCK_SKEW_MS);
      console.log(`failover-nats: role change ${(promotion.atMs - crashedAtMs).toFixed(1)} ms after the crash, ${(promotion.atMs - lastOfA.expiresAtMs - CLOCK_SKEW_MS).toFixed(1)} ms after host-a's last lease expiry + skew; ${lease.writes.length} lease writes`);
      // And not before host-a missed its heartbeats.
      expect(promotion.atMs).toBeGreaterThanOrEqual(crashedAtMs + (MISS_COUNT - 1) * HEARTBEAT_INTERVAL_MS);

      // host-b restores epoch 0, claims the lease under term 2 and reports in as the primary.
      await waitFor('host-b heartbeats as primary of term 2', () => seen.beatsB.some((b) => b.msg.role === 'primary' && b.msg.term === 2));
      await waitFor('the failover service counts the promotion', () => seen.views.some((v) => v.msg.term === 2 && v.msg.primaryHost === 'host-b' && v.msg.state !== 'promoting' && v.msg.state !== 'suspect'));
      const stored = await store.get(vmId);
      expect(stored?.record).toMatchObject({ primaryHost: 'host-b', term: 2 });
      // host-b renewed the lease itself (the failover service's take-over is not its renewal).
      expect(lease.writes.filter((w) => w.record.primaryHost === 'host-b').length).toBeGreaterThanOrEqual(2);

      const agentB = await hostB.agent.stop();
      expect(agentB).toMatchObject({ kind: 'final', service: 'host-agent', host: 'host-b', reason: 'abort' });
      expect(agentB.vms[0]!.stats).toMatchObject({ state: 'primary', role: 'primary', term: 2 });
      expect(agentB.vms[0]!.stats.permitsGranted).toBeGreaterThanOrEqual(1);
      const final = await failover.stop();
      expect(final).toMatchObject({ kind: 'final', service: 'failover', host: null, reason: 'abort' });
      const f = final.vms[0]!;
      expect(f.vmId).toBe(vmId);
      expect(f.stats).toMatchObject({ term: 2, primaryHost: 'host-b', failovers: 1, leaseUnavailable: 0 });
      // host-a renewed after the service's first read, so its first take-over lost its compare-and-set and retried at once.
      expect(f.stats.leaseConflicts).toBeGreaterThanOrEqual(1);
      expect(f.shell.leaseConflicts).toBe(f.stats.leaseConflicts);
      expect(f.shell.leaseUnavailable).toBe(0);
      expect(f.shell.leaseErrors).toBe(0);
      expect(f.shell.leaseOps).toBeGreaterThanOrEqual(3); // the first read, the lost take-over, the winning one
      expect(JSON.parse(failover.lines.at(-1)!)).toEqual(JSON.parse(JSON.stringify(final)));
    } finally {
      await failover?.stop().catch(() => undefined);
      for (const h of hosts) await h.crash();
      lease.stop();
      await store.kv.destroy().catch(() => undefined);
      await nc.close();
    }
  });

  it('a failover service started again after a failover (as its supervisor would) learns from the lease that the VM moved, and changes nothing', async () => {
    const { vmId, bucket } = unique();
    const config = configFor(vmId);
    const nc = await connectTo(url);
    const seen = observe(nc, vmId);
    let hosts: RunningHost[] = [];
    let failover: RunningService | null = null;
    try {
      await nc.flush();
      hosts = await startHosts(url, config, () => ({ leaseBucket: bucket }));
      const [hostA] = hosts as [RunningHost, RunningHost, RunningHost];
      failover = new RunningService(failoverService, null, url, config, { leaseBucket: bucket });
      await failover.ready();
      await sleep(HEARTBEAT_INTERVAL_MS * (MISS_COUNT + 1));
      await hostA.crash();
      await waitFor('host-b heartbeats as primary of term 2', () => seen.beatsB.some((b) => b.msg.role === 'primary' && b.msg.term === 2));
      const first = await failover.stop();
      expect(first.vms[0]!.stats).toMatchObject({ failovers: 1, restartsDetected: 0 });

      // Started again with the same arguments: only the lease can tell it that host-b is primary now.
      const roleChangesBefore = seen.toB.length;
      const restartedAtMs = wallMs();
      failover = new RunningService(failoverService, null, url, config, { leaseBucket: bucket });
      await failover.ready();
      await waitFor('the restarted service\'s view, learned', () => seen.views.some((v) => v.atMs >= restartedAtMs && !v.msg.recovering), ACT_TIMEOUT_MS);
      const learned = seen.views.find((v) => v.atMs >= restartedAtMs && !v.msg.recovering)!.msg;
      // host-b primary under term 2, without a backup (host-a is gone): the VM is unprotected, and nothing was taken over again.
      expect(learned).toMatchObject({ primaryHost: 'host-b', term: 2 });
      await sleep(HEARTBEAT_INTERVAL_MS * (MISS_COUNT + 1));
      expect(seen.toB.slice(roleChangesBefore).filter((c) => c.msg.role !== 'primary' || c.msg.term !== 2), 'role changes that would depose host-b').toEqual([]);
      const second = await failover.stop();
      expect(second.vms[0]!.stats).toMatchObject({ restartsDetected: 1, failovers: 0, primaryHost: 'host-b', term: 2 });
    } finally {
      await failover?.stop().catch(() => undefined);
      for (const h of hosts) await h.crash();
      await nc.close();
    }
  });

  it.skipIf(skipOutage)('keeps running through a lease-store outage: unavailable answers, retries, and the take-over once the store is back', async () => {
    const { vmId, bucket } = unique();
    const config = configFor(vmId);
    let kvServer: NatsServerProcess = await startNatsServer();
    const storeDir = kvServer.storeDir;
    const nc = await connectTo(url);
    // The lease store on a server of its own, which the test kills: the bus stays up, the store does not.
    const kvConnections: NatsConnection[] = [];
    const storeOn = async (): Promise<KvLeaseStore> => {
      const c = await connectTo(kvServer.url);
      kvConnections.push(c);
      return KvLeaseStore.open(c, { bucket, requestTimeoutMs: 200 });
    };
    const testStore = await storeOn();
    const agentStores = new Map<string, KvLeaseStore>();
    for (const host of ['host-a', 'host-b', 'host-c']) agentStores.set(host, await storeOn());
    const serviceStore = await storeOn();
    const seen = observe(nc, vmId);
    let hosts: RunningHost[] = [];
    let failover: RunningService | null = null;
    try {
      await nc.flush();
      hosts = await startHosts(url, config, (host) => ({ leaseStore: agentStores.get(host)! }));
      const [hostA, hostB] = hosts as [RunningHost, RunningHost, RunningHost];
      await waitForAsync('host-a creates the lease', async () => (await testStore.get(vmId).catch(() => null))?.record.primaryHost === 'host-a');
      failover = new RunningService(failoverService, null, url, config, { leaseStore: serviceStore });
      await failover.ready();
      await sleep(HEARTBEAT_INTERVAL_MS * 3);

      await kvServer.kill('SIGKILL');
      await hostA.crash();
      // Detection after 150 ms, then take-overs that cannot reach the store, one per interval.
      await sleep(1_000);
      expect(seen.toB).toEqual([]);

      kvServer = await startNatsServer({ port: kvServer.port, storeDir });
      await waitFor('role change for host-b after the store came back', () => seen.toB.length > 0, RECOVERY_TIMEOUT_MS);
      const promotion = seen.toB[0]!.msg;
      expect(promotion).toMatchObject({ type: 'roleChange', vmId, host: 'host-b', role: 'primary' });
      // A take-over sent during the outage may still have been applied (its outcome was unknown), and the
      // service then takes over once more: term 2, or 3. The store and the role change agree on it.
      expect(promotion.term).toBeGreaterThanOrEqual(2);
      expect(promotion.term).toBeLessThanOrEqual(3);
      // host-b's agent (its store's connection back too) claims the lease and becomes the primary.
      await waitFor('host-b heartbeats as primary', () => seen.beatsB.some((b) => b.msg.role === 'primary' && b.msg.term === promotion.term), RECOVERY_TIMEOUT_MS);
      // The test's own connection to the store may still be reconnecting.
      let stored: LeaseRecord | null = null;
      await waitForAsync('the lease from the restarted store', async () => (stored = (await testStore.get(vmId).catch(() => null))?.record ?? null) !== null, RECOVERY_TIMEOUT_MS);
      expect(stored).toMatchObject({ primaryHost: 'host-b', term: promotion.term });

      const agentB = await hostB.agent.stop();
      expect(agentB.vms[0]!.stats).toMatchObject({ state: 'primary', term: promotion.term });
      const final = await failover.stop();
      const f = final.vms[0]!;
      expect(final.reason).toBe('abort');
      expect(f.stats).toMatchObject({ term: promotion.term, primaryHost: 'host-b', failovers: 1 });
      // Several take-overs went unanswered, and the service retried each interval.
      expect(f.stats.leaseUnavailable).toBeGreaterThanOrEqual(2);
      expect(f.shell.leaseUnavailable).toBe(f.stats.leaseUnavailable);
      expect(f.shell.leaseOps).toBeGreaterThanOrEqual((f.stats.leaseUnavailable as number) + 2);
      expect(f.shell.leaseErrors).toBe(0);
    } finally {
      await failover?.stop().catch(() => undefined);
      for (const h of hosts) await h.crash();
      await testStore.kv.destroy().catch(() => undefined);
      await Promise.all([nc.close(), ...kvConnections.map((c) => c.close().catch(() => undefined))]);
      await kvServer.stop();
      rmSync(storeDir, { recursive: true, force: true });
    }
  });

  it('`specula service failover` as a process: ready line, the take-over, and its final line on SIGTERM', async () => {
    const { vmId, bucket } = unique();
    const config = configFor(vmId);
    const nc = await connectTo(url);
    const store = await KvLeaseStore.open(nc, { bucket, requestTimeoutMs: 1_000 });
    const seen = observe(nc, vmId);
    let hosts: RunningHost[] = [];
    let child: Spawned | null = null;
    try {
      await nc.flush();
      hosts = await startHosts(url, config, () => ({ leaseBucket: bucket }));
      const [hostA] = hosts as [RunningHost, RunningHost, RunningHost];
      child = spawnCli(['service', 'failover', '--nats-url', url, '--config-json', JSON.stringify(configInput(vmId)), '--lease-bucket', bucket, '--exit-after-s', '60', '--log-level', 'warn']);
      const spawned = child;
      await waitFor('ready line', () => spawned.lines.length > 0, CLI_READY_TIMEOUT_MS).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}; stderr: ${spawned.stderr()}`);
      });
      expect(JSON.parse(spawned.lines[0]!)).toEqual({ kind: 'ready', service: 'failover', host: null, vms: [vmId], pid: spawned.process.pid });
      await sleep(HEARTBEAT_INTERVAL_MS * (MISS_COUNT + 3));
      expect(seen.toB).toEqual([]);

      await hostA.crash();
      await waitFor('role change for host-b', () => seen.toB.length > 0);
      expect(seen.toB[0]!.msg).toMatchObject({ host: 'host-b', role: 'primary', term: 2 });
      await waitFor('host-b heartbeats as primary of term 2', () => seen.beatsB.some((b) => b.msg.role === 'primary' && b.msg.term === 2));
      await waitFor('the failover service counts the promotion', () => seen.views.some((v) => v.msg.term === 2 && v.msg.state !== 'promoting' && v.msg.state !== 'suspect'));

      spawned.process.kill('SIGTERM');
      const code = await spawned.exited;
      expect(code, spawned.stderr()).toBe(0);
      const final = JSON.parse(spawned.lines.at(-1)!) as FinalLine;
      expect(final).toMatchObject({ kind: 'final', service: 'failover', host: null, reason: 'SIGTERM' });
      expect(final.vms).toHaveLength(1);
      const f = final.vms[0]!;
      expect(f.vmId).toBe(vmId);
      expect(f.stats).toMatchObject({ term: 2, primaryHost: 'host-b', failovers: 1 });
      expect(f.shell.leaseOps).toBeGreaterThanOrEqual(2);
      expect(f.shell.messagesIn).toBeGreaterThan(0);
    } finally {
      child?.process.kill('SIGKILL');
      for (const h of hosts) await h.crash();
      await store.kv.destroy().catch(() => undefined);
      await nc.close();
    }
  });
});

describe('`specula service failover` without a NATS server', () => {
  it('fails with one clear line and the exit code of an unavailable bus', async () => {
    const port = await freePort();
    const child = spawnCli(['service', 'failover', '--nats-url', `nats://127.0.0.1:${port}`]);
    const code = await child.exited;
    expect(code).toBe(EXIT_UNAVAILABLE);
    expect(child.lines).toEqual([]);
    expect(child.stderr().trim()).toMatch(new RegExp(`^specula service failover: cannot connect to NATS at nats://127\\.0\\.0\\.1:${port} \\(connection refused\\)`));
    expect(child.stderr()).not.toContain('    at ');
  });
});

interface Spawned {
  readonly process: ChildProcess;
  /** stdout, one entry per line. */
  readonly lines: string[];
  stderr(): string;
  readonly exited: Promise<number | null>;
}

/** Bound on one CLI process, whatever the test does with it. */
const CLI_KILL_AFTER_MS = 60_000;

function spawnCli(args: readonly string[]): Spawned {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build before the integration tests (npm test does)`);
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NATS_URL: '' } });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts.filter((l) => l !== ''));
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), CLI_KILL_AFTER_MS);
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  return { process: child, lines, stderr: () => stderr, exited };
}
