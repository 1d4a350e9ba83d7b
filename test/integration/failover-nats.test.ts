/**
 * The failover service over a real nats-server with its leases in JetStream
 * KV. The test plays the host agents: heartbeats for host-a (primary), host-b
 * (backup) and host-c (spare) every heartbeat interval, and host-a's lease
 * renewed by compare-and-set with each one. The CLI test needs `npm run build`
 * first (npm test does it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { decode, encode } from '../../lib/codec/codec.js';
import type { HostRole, RoleChange, WireMessage } from '../../lib/codec/messages.js';
import { subjects } from '../../lib/codec/subjects.js';
import { runConfigSchema, type RunConfig } from '../../lib/config/run-config.js';
import { KvLeaseStore } from '../../lib/lease/kv-store.js';
import type { LeaseRecord, VersionedLease } from '../../lib/lease/types.js';
import { wallClock } from '../../lib/runtime/nats/clock.js';
import { runFailoverService, type FailoverReport } from '../../services/failover/main.js';
import { findNatsServerBinary, freePort, startNatsServer, withNats, type NatsServerProcess } from './support/nats.js';

const HEARTBEAT_INTERVAL_MS = 50;
const MISS_COUNT = 3;
const LEASE_DURATION_MS = 300;
/** Larger than the default 1 ms so that "after expiry + skew" differs visibly from "after expiry". */
const CLOCK_SKEW_MS = 10;
/** Bound on any one wait for the service to act (it needs ~0.5 s: detection, then the old lease's expiry). */
const ACT_TIMEOUT_MS = 3_000;
/** Bound on a spawned CLI becoming ready (node start and module loading on a slow machine). */
const CLI_READY_TIMEOUT_MS = 8_000;
/** Bound on JetStream recovering a killed server's KV stream after the restart. */
const RECOVERY_TIMEOUT_MS = 8_000;
const CLI = fileURLToPath(new URL('../../dist/cli/specula.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const nats = await withNats();
const natsBinary = findNatsServerBinary();
if (nats !== null && natsBinary === null) console.warn('failover-nats: no nats-server binary, so the lease-store outage test is SKIPPED (it kills and restarts a server of its own)');
afterAll(async () => {
  await nats?.stop();
});

/** The clock the service's core runs on; the same formula in this process reads the same time. */
const wall = wallClock();
const wallMs = (): number => wall.nowUs() / 1000;
/** VM ids and buckets unique to this run: the server may be shared (NATS_URL). */
const RUN = `fo${process.pid}x${Date.now().toString(36)}`;
let runs = 0;
const unique = (): { vmId: string; bucket: string } => {
  const n = runs++;
  return { vmId: `${RUN}-vm${n}`, bucket: `${RUN}_leases${n}` };
};

function configFor(vmId: string): RunConfig {
  return runConfigSchema.parse({ vmId, mode: 'spec', failover: { heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, missCount: MISS_COUNT, leaseDurationMs: LEASE_DURATION_MS, clockSkewMs: CLOCK_SKEW_MS } });
}

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
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The host agents of one VM, as the test plays them: heartbeats for every
 * live host each interval, and the primary's lease renewed by compare-and-set
 * with each heartbeat (one renewal at a time, as a host agent does).
 */
class HostAgents {
  readonly #roles = new Map<string, { role: HostRole; term: number }>();
  #timer: NodeJS.Timeout | null = null;
  #renewing: Promise<void> | null = null;
  #renewHost: string | null = null;
  #revision = 0;
  /** The last renewal the store confirmed. */
  lastRenewal: LeaseRecord | null = null;
  renewalFailures = 0;

  constructor(
    readonly nc: NatsConnection,
    readonly vmId: string,
    readonly store: KvLeaseStore,
  ) {}

  /** Writes the first lease, as the primary's agent does before its services release anything. */
  async createLease(host: string): Promise<void> {
    const record: LeaseRecord = { primaryHost: host, term: 1, expiresAtMs: wallMs() + LEASE_DURATION_MS };
    this.#revision = await this.store.create(this.vmId, record);
    this.lastRenewal = record;
    this.#renewHost = host;
  }

  set(host: string, role: HostRole, term: number): void {
    this.#roles.set(host, { role, term });
  }

  start(): void {
    this.#tick();
    this.#timer = setInterval(() => this.#tick(), HEARTBEAT_INTERVAL_MS);
  }

  /** The host goes silent (a crash): no more heartbeats or renewals; resolves once its last renewal settled. */
  async silence(host: string): Promise<void> {
    this.#roles.delete(host);
    if (this.#renewHost === host) this.#renewHost = null;
    await this.#renewing;
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#renewHost = null;
    await this.#renewing;
  }

  #tick(): void {
    const s = subjects(this.vmId);
    for (const [host, { role, term }] of this.#roles) {
      // Not a fresh literal: the Heartbeat type may carry more fields than this test sets, and encode() defaults them.
      const fields = { type: 'heartbeat' as const, vmId: this.vmId, term, host, role, epoch: 0, synced: true };
      this.nc.publish(s.heartbeat(host), encode(fields as WireMessage));
    }
    const host = this.#renewHost;
    if (host === null || this.#renewing !== null) return;
    const record: LeaseRecord = { primaryHost: host, term: 1, expiresAtMs: wallMs() + LEASE_DURATION_MS };
    this.#renewing = this.store
      .update(this.vmId, record, this.#revision)
      .then(
        (revision) => {
          this.#revision = revision;
          this.lastRenewal = record;
        },
        () => void this.renewalFailures++,
      )
      .finally(() => (this.#renewing = null));
  }
}

interface Received {
  readonly msg: RoleChange;
  readonly atMs: number;
}

/** Role changes the failover service sends to `host`, with when they arrived. */
function watchControl(nc: NatsConnection, vmId: string, host: string): Received[] {
  const got: Received[] = [];
  nc.subscribe(subjects(vmId).control(host), {
    callback: (_err, m) => {
      got.push({ msg: decode('roleChange', m.data) as RoleChange, atMs: wallMs() });
    },
  });
  return got;
}

const silent = pino({ level: 'silent' });

describe.skipIf(nats === null)('failover service over NATS with leases in JetStream KV', () => {
  const url = nats?.url ?? '';

  it('promotes host-b with term 2 once host-a is silent, no earlier than host-a\'s last lease expired + skew', async () => {
    const { vmId, bucket } = unique();
    const nc = await connectTo(url);
    const store = await KvLeaseStore.open(nc, { bucket, requestTimeoutMs: 1_000 });
    const agents = new HostAgents(nc, vmId, store);
    const toB = watchControl(nc, vmId, 'host-b');
    const abort = new AbortController();
    const lines: string[] = [];
    let service: Promise<FailoverReport> | null = null;
    try {
      await nc.flush();
      await agents.createLease('host-a');
      agents.set('host-a', 'primary', 1);
      agents.set('host-b', 'backup', 1);
      agents.set('host-c', 'spare', 1);
      agents.start();
      service = runFailoverService(configFor(vmId), { natsUrl: url, leaseBucket: bucket, signal: abort.signal, write: (l) => lines.push(l), logger: silent });
      await waitFor('ready line', () => lines.length > 0);
      expect(JSON.parse(lines[0]!)).toMatchObject({ kind: 'failover-ready', vmId, primaryHost: 'host-a', backupHost: 'host-b', spareHosts: ['host-c'], leaseBucket: bucket });

      // Live heartbeats for a few intervals beyond the miss count: no failover.
      await sleep(HEARTBEAT_INTERVAL_MS * (MISS_COUNT + 3));
      expect(toB).toEqual([]);
      expect((await store.get(vmId))?.record).toMatchObject({ primaryHost: 'host-a', term: 1 });

      const silencedAtMs = wallMs();
      await agents.silence('host-a');
      const oldLease = agents.lastRenewal!;
      await waitFor('role change for host-b', () => toB.length > 0);
      const promotion = toB[0]!;
      expect(promotion.msg).toMatchObject({ type: 'roleChange', vmId, host: 'host-b', role: 'primary', term: 2 });
      // The old primary may release output until its lease runs out; the new one starts only after that, skew included.
      expect(promotion.atMs).toBeGreaterThanOrEqual(oldLease.expiresAtMs + CLOCK_SKEW_MS);
      expect(promotion.atMs).toBeGreaterThanOrEqual(silencedAtMs + MISS_COUNT * HEARTBEAT_INTERVAL_MS - HEARTBEAT_INTERVAL_MS);
      const lease = await store.get(vmId);
      expect(lease?.record).toMatchObject({ primaryHost: 'host-b', term: 2 });

      // host-b's agent reports in as the primary of term 2: the failover is complete.
      agents.set('host-b', 'primary', 2);
      await sleep(HEARTBEAT_INTERVAL_MS * 3);
      abort.abort();
      const report = await service;
      expect(report).toMatchObject({ kind: 'failover-report', vmId, term: 2, primaryHost: 'host-b', reason: 'abort' });
      expect(report.failover.failovers).toBe(1);
      // host-a renewed after the service's first read, so the first take-over lost its compare-and-set and retried at once.
      expect(report.failover.leaseConflicts).toBeGreaterThanOrEqual(1);
      expect(report.shell.leaseConflicts).toBe(report.failover.leaseConflicts);
      expect(report.shell.leaseUnavailable).toBe(0);
      expect(report.shell.leaseOps).toBeGreaterThanOrEqual(3); // the first read, the lost take-over, the winning one
      expect(JSON.parse(lines.at(-1)!)).toEqual(JSON.parse(JSON.stringify(report)));
    } finally {
      abort.abort();
      await service?.catch(() => undefined);
      await agents.stop();
      await store.kv.destroy().catch(() => undefined);
      await nc.close();
    }
  });

  it.skipIf(natsBinary === null)('keeps running through a lease-store outage: unavailable answers, retries, and the take-over once the store is back', async () => {
    const { vmId, bucket } = unique();
    let kvServer: NatsServerProcess = await startNatsServer();
    const storeDir = kvServer.storeDir;
    const nc = await connectTo(url);
    // The lease store on a server of its own, which the test kills: the bus stays up, the store does not.
    const serviceKv = await connectTo(kvServer.url);
    const agentKv = await connectTo(kvServer.url);
    const serviceStore = await KvLeaseStore.open(serviceKv, { bucket, requestTimeoutMs: 200 });
    const agentStore = await KvLeaseStore.open(agentKv, { bucket, requestTimeoutMs: 200 });
    const agents = new HostAgents(nc, vmId, agentStore);
    const toB = watchControl(nc, vmId, 'host-b');
    const abort = new AbortController();
    const lines: string[] = [];
    let service: Promise<FailoverReport> | null = null;
    try {
      await nc.flush();
      await agents.createLease('host-a');
      agents.set('host-a', 'primary', 1);
      agents.set('host-b', 'backup', 1);
      agents.set('host-c', 'spare', 1);
      agents.start();
      service = runFailoverService(configFor(vmId), { natsUrl: url, leaseStore: serviceStore, signal: abort.signal, write: (l) => lines.push(l), logger: silent });
      await waitFor('ready line', () => lines.length > 0);
      expect(JSON.parse(lines[0]!)).toMatchObject({ kind: 'failover-ready', leaseBucket: null });
      await sleep(HEARTBEAT_INTERVAL_MS * 3);

      await kvServer.kill('SIGKILL');
      await agents.silence('host-a');
      // Detection after 150 ms, then take-overs that cannot reach the store, one per interval.
      await sleep(1_000);
      expect(toB).toEqual([]);

      kvServer = await startNatsServer({ port: kvServer.port, storeDir });
      await waitFor('role change for host-b after the store came back', () => toB.length > 0, RECOVERY_TIMEOUT_MS);
      const promotion = toB[0]!.msg;
      expect(promotion).toMatchObject({ type: 'roleChange', vmId, host: 'host-b', role: 'primary' });
      // A take-over sent during the outage may still have been applied (its outcome was unknown), and the
      // service then takes over once more: term 2, or 3. The store and the role change agree on it.
      expect(promotion.term).toBeGreaterThanOrEqual(2);
      expect(promotion.term).toBeLessThanOrEqual(3);
      // The agents' own connection may still be reconnecting.
      let stored: VersionedLease | null = null;
      await waitForAsync('the lease from the restarted store', async () => (stored = await agentStore.get(vmId).catch(() => null)) !== null, RECOVERY_TIMEOUT_MS);
      expect(stored!.record).toMatchObject({ primaryHost: 'host-b', term: promotion.term });

      abort.abort();
      const report = await service;
      expect(report.reason).toBe('abort');
      expect(report.term).toBe(promotion.term);
      expect(report.primaryHost).toBe('host-b');
      // Several take-overs went unanswered, and the service retried each interval.
      expect(report.failover.leaseUnavailable).toBeGreaterThanOrEqual(2);
      expect(report.shell.leaseUnavailable).toBe(report.failover.leaseUnavailable);
      expect(report.shell.leaseOps).toBeGreaterThanOrEqual(report.failover.leaseUnavailable + 2);
      expect(report.shell.leaseErrors).toBe(0);
    } finally {
      abort.abort();
      await service?.catch(() => undefined);
      await agents.stop();
      await agentStore.kv.destroy().catch(() => undefined);
      await Promise.all([nc.close(), serviceKv.close(), agentKv.close()]);
      await kvServer.stop();
      rmSync(storeDir, { recursive: true, force: true });
    }
  });

  it('`specula service failover` as a process: ready line, the take-over, and its report on SIGTERM', async () => {
    const { vmId, bucket } = unique();
    const nc = await connectTo(url);
    const store = await KvLeaseStore.open(nc, { bucket, requestTimeoutMs: 1_000 });
    const agents = new HostAgents(nc, vmId, store);
    const toB = watchControl(nc, vmId, 'host-b');
    const config = { vmId, mode: 'spec', failover: { heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, missCount: MISS_COUNT, leaseDurationMs: LEASE_DURATION_MS, clockSkewMs: CLOCK_SKEW_MS } };
    let child: Spawned | null = null;
    try {
      await nc.flush();
      await agents.createLease('host-a');
      agents.set('host-a', 'primary', 1);
      agents.set('host-b', 'backup', 1);
      agents.set('host-c', 'spare', 1);
      agents.start();
      child = spawnCli(['service', 'failover', '--nats-url', url, '--config-json', JSON.stringify(config), '--lease-bucket', bucket, '--exit-after-s', '30', '--log-level', 'warn']);
      const spawned = child;
      await waitFor('ready line', () => spawned.lines.length > 0, CLI_READY_TIMEOUT_MS);
      expect(JSON.parse(spawned.lines[0]!)).toMatchObject({ kind: 'failover-ready', vmId, primaryHost: 'host-a', backupHost: 'host-b', spareHosts: ['host-c'], leaseBucket: bucket });
      await sleep(HEARTBEAT_INTERVAL_MS * 3);

      await agents.silence('host-a');
      await waitFor('role change for host-b', () => toB.length > 0);
      expect(toB[0]!.msg).toMatchObject({ host: 'host-b', role: 'primary', term: 2 });
      agents.set('host-b', 'primary', 2);
      await sleep(HEARTBEAT_INTERVAL_MS * 3);

      spawned.process.kill('SIGTERM');
      const code = await spawned.exited;
      expect(code, spawned.stderr()).toBe(0);
      const report = JSON.parse(spawned.lines.at(-1)!) as FailoverReport;
      expect(report).toMatchObject({ kind: 'failover-report', vmId, term: 2, primaryHost: 'host-b', reason: 'SIGTERM' });
      expect(report.failover.failovers).toBe(1);
      expect(report.shell.leaseOps).toBeGreaterThanOrEqual(2);
      expect(report.shell.messagesIn).toBeGreaterThan(0);
    } finally {
      child?.process.kill('SIGKILL');
      await agents.stop();
      await store.kv.destroy().catch(() => undefined);
      await nc.close();
    }
  });
});

describe('`specula service failover` without a NATS server', () => {
  it('fails with one clear line and exit code 1', async () => {
    const port = await freePort();
    const child = spawnCli(['service', 'failover', '--nats-url', `nats://127.0.0.1:${port}`]);
    const code = await child.exited;
    expect(code).toBe(1);
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
const CLI_KILL_AFTER_MS = 30_000;

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
