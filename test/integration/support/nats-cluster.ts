/**
 * A three-node nats-server cluster on loopback with clustered JetStream, for
 * tests that kill a server mid-run. Every node runs the binary that
 * `findNatsServerBinary()` finds, with its own client, cluster and monitoring
 * ports and its own store dir; JetStream clustering needs a server name and a
 * cluster name, which each node gets on its command line. `startNatsCluster`
 * resolves once every node accepts clients, JetStream has a meta leader and
 * can place a stream on all three nodes (an R3 probe stream is created and
 * deleted). Every wait is bounded. Skip rule: `skipWithoutNatsBinary()` from
 * ./nats.ts (never skips under CI).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { findNatsServerBinary, freePort, NoNatsServerError } from './nats.js';

export const CLUSTER_NAME = 'specula-test';
const CLUSTER_SIZE = 3;
/** Bound on the whole start: ports, routes, the meta leader and a placeable R3 stream. */
const CLUSTER_READY_TIMEOUT_MS = 30_000;
const NODE_STOP_TIMEOUT_MS = 5_000;
const POLL_MS = 100;

export interface ClusterNode {
  /** node0, node1, node2: the server_name, as JetStream's cluster info names it. */
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly clusterPort: number;
  /** HTTP monitoring (/varz, /connz, /jsz) on 127.0.0.1. */
  readonly monitorPort: number;
  readonly storeDir: string;
  readonly process: ChildProcess;
  /** True until the node was killed or stopped (or exited on its own). */
  readonly running: boolean;
  /** The tail of the node's log (stderr). */
  readonly log: string;
}

export interface NatsCluster {
  readonly nodes: readonly ClusterNode[];
  /** Every node's client URL, comma-separated, node0 first: what --nats-url takes. */
  readonly urls: string;
  /** Index of the node whose server_name is `name`; -1 if none. */
  indexOf(name: string): number;
  /** SIGKILLs node i (a crash) and waits until it has exited; its store dir stays until stop(). */
  kill(i: number): Promise<void>;
  /** Stops every node still running (SIGTERM, SIGKILL after 5 s) and removes the store dirs. */
  stop(): Promise<void>;
}

interface NodeState {
  readonly name: string;
  readonly port: number;
  readonly clusterPort: number;
  readonly monitorPort: number;
  readonly storeDir: string;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  log: string;
}

const isRunning = (c: ChildProcess): boolean => c.exitCode === null && c.signalCode === null;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Distinct free loopback ports (freePort may hand the same one out twice when asked in a row). */
async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let tries = 0; ports.size < n; tries++) {
    if (tries > 100 * n) throw new Error(`could not find ${n} distinct free ports`);
    ports.add(await freePort());
  }
  return [...ports];
}

async function stopNode(n: NodeState, signal: NodeJS.Signals): Promise<void> {
  if (!isRunning(n.child)) return;
  n.child.kill(signal);
  const timer = setTimeout(() => n.child.kill('SIGKILL'), NODE_STOP_TIMEOUT_MS);
  await n.exited;
  clearTimeout(timer);
}

/**
 * Starts a 3-node cluster (nodes node0..node2, cluster `specula-test`) with
 * JetStream on each; resolves when all accept clients and JetStream can place
 * an R3 stream. On failure every node is stopped and the error carries the
 * nodes' logs.
 */
export async function startNatsCluster(options: { binary?: string; timeoutMs?: number } = {}): Promise<NatsCluster> {
  const binary = options.binary ?? findNatsServerBinary();
  if (binary === null) throw new NoNatsServerError('cannot start a nats-server cluster: no nats-server binary on PATH or at /usr/sbin/nats-server (apt-get install nats-server)');
  const ports = await distinctFreePorts(3 * CLUSTER_SIZE);
  const nodes: NodeState[] = [];
  for (let i = 0; i < CLUSTER_SIZE; i++) {
    const port = ports[i]!;
    const clusterPort = ports[CLUSTER_SIZE + i]!;
    const monitorPort = ports[2 * CLUSTER_SIZE + i]!;
    const name = `node${i}`;
    const storeDir = mkdtempSync(join(tmpdir(), `specula-nats-${name}-`));
    const routes = ports
      .slice(CLUSTER_SIZE, 2 * CLUSTER_SIZE)
      .filter((p) => p !== clusterPort)
      .map((p) => `nats://127.0.0.1:${p}`)
      .join(',');
    const args = ['-a', '127.0.0.1', '-p', String(port), '-m', String(monitorPort), '-js', '-sd', storeDir, '-n', name, '--cluster_name', CLUSTER_NAME, '--cluster', `nats://127.0.0.1:${clusterPort}`, '--routes', routes];
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const state: NodeState = { name, port, clusterPort, monitorPort, storeDir, child, exited: new Promise<void>((resolve) => child.once('exit', () => resolve())), log: '' };
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      state.log = (state.log + chunk).slice(-16_384);
    });
    nodes.push(state);
  }
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(nodes.map((n) => stopNode(n, 'SIGTERM')));
    for (const n of nodes) rmSync(n.storeDir, { recursive: true, force: true });
  };
  const urls = nodes.map((n) => `nats://127.0.0.1:${n.port}`).join(',');
  try {
    await waitUntilReady(nodes, urls, options.timeoutMs ?? CLUSTER_READY_TIMEOUT_MS);
  } catch (err) {
    await stop();
    const logs = nodes.map((n) => `--- ${n.name} (${binary}) ---\n${n.log.slice(-4_000)}`).join('\n');
    throw new Error(`nats-server cluster did not become ready: ${(err as Error).message}\n${logs}`, { cause: err });
  }
  return {
    nodes: nodes.map((n) => ({
      name: n.name,
      url: `nats://127.0.0.1:${n.port}`,
      port: n.port,
      clusterPort: n.clusterPort,
      monitorPort: n.monitorPort,
      storeDir: n.storeDir,
      process: n.child,
      get running() {
        return isRunning(n.child);
      },
      get log() {
        return n.log;
      },
    })),
    urls,
    indexOf: (name) => nodes.findIndex((n) => n.name === name),
    kill: async (i) => {
      const n = nodes[i];
      if (n === undefined) throw new RangeError(`no node ${i} in a ${CLUSTER_SIZE}-node cluster`);
      await stopNode(n, 'SIGKILL');
    },
    stop,
  };
}

/** Every node accepts a client, then JetStream answers (a meta leader) and places (and removes) an R3 stream. */
async function waitUntilReady(nodes: readonly NodeState[], urls: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  const left = () => deadline - performance.now();
  const check = () => {
    const dead = nodes.find((n) => !isRunning(n.child));
    if (dead) throw new Error(`${dead.name} exited (code ${dead.child.exitCode}, signal ${dead.child.signalCode})`);
    if (left() <= 0) throw new Error(`not ready within ${timeoutMs} ms`);
  };
  // Each node serves clients (a connect to it alone succeeds).
  for (const n of nodes) {
    for (;;) {
      check();
      const nc = await connect({ servers: `nats://127.0.0.1:${n.port}`, timeout: 1_000, reconnect: false }).catch(() => null);
      if (nc !== null) {
        await nc.close();
        break;
      }
      await sleep(POLL_MS);
    }
  }
  let nc: NatsConnection | null = null;
  try {
    nc = await connect({ servers: urls.split(','), timeout: 2_000, maxReconnectAttempts: -1, reconnectTimeWait: POLL_MS, name: 'specula-cluster-probe' });
    // No API check here: the meta leader may not be elected yet, which the loop below waits for.
    const jsm = await jetstreamManager(nc, { timeout: 2_000, checkAPI: false });
    // A meta leader: the account info request is answered.
    let lastError: unknown = null;
    for (;;) {
      check();
      try {
        await jsm.getAccountInfo();
        break;
      } catch (err) {
        lastError = err;
        await sleep(POLL_MS);
      }
      if (left() <= POLL_MS) throw new Error(`JetStream has no meta leader: ${(lastError as Error | null)?.message ?? 'no answer'}`);
    }
    // Every peer known to the meta group: an R3 stream can be placed.
    const probe = `specula_cluster_probe_${process.pid}`;
    for (;;) {
      check();
      try {
        await jsm.streams.add({ name: probe, subjects: [`${probe}.>`], num_replicas: CLUSTER_SIZE });
        await jsm.streams.delete(probe);
        return;
      } catch (err) {
        lastError = err;
        await sleep(POLL_MS);
      }
      if (left() <= POLL_MS) throw new Error(`JetStream cannot place an R${CLUSTER_SIZE} stream: ${(lastError as Error | null)?.message ?? 'no answer'}`);
    }
  } finally {
    await nc?.close().catch(() => undefined);
  }
}

/**
 * A bound on one /connz answer, a hang guard: the node answers in
 * milliseconds, but mid-transfer 17 processes share two cores with it, and
 * 2 s timed out once beside a vopr run.
 */
const CONNZ_TIMEOUT_MS = 10_000;

/** Client connections a node serves now whose name starts with `prefix` (from its /connz). */
export async function connectionsOn(node: ClusterNode, prefix = ''): Promise<string[]> {
  const res = await fetch(`http://127.0.0.1:${node.monitorPort}/connz?limit=1024`, { signal: AbortSignal.timeout(CONNZ_TIMEOUT_MS) });
  const body = (await res.json()) as { connections?: { name?: string }[] };
  return (body.connections ?? []).map((c) => c.name ?? '').filter((name) => name.startsWith(prefix));
}
