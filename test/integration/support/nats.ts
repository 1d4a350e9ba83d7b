/**
 * Finds a NATS server for integration tests, in this order:
 *   1. NATS_URL (a server you run);
 *   2. a nats-server binary (PATH, then /usr/sbin/nats-server): a private
 *      server on a free loopback port with JetStream in a temp dir;
 *   3. testcontainers (@testcontainers/nats), for machines with Docker;
 *   4. none: withNats() returns null and warns loudly; tests skip. Under CI
 *      (CI set, and not 'false' or '0') it throws instead: a CI run without a
 *      server fails, it never passes by skipping everything.
 * Tests that start a nats-server of their own skip with
 * `skipWithoutNatsBinary()`, which never skips under CI either.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepts, findNatsServerBinary, freePort } from '../../../cli/launcher/nats-server.js';

export interface NatsHandle {
  readonly url: string;
  readonly source: 'env' | 'binary' | 'container';
  stop(): Promise<void>;
}

export interface NatsServerProcess {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  readonly process: ChildProcess;
  /** Kills the server (SIGKILL by default: a crash) and waits for it to exit; keeps the store dir. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the server gracefully and removes its store dir. */
  stop(): Promise<void>;
}

const SERVER_READY_TIMEOUT_MS = 10_000;
const SERVER_STOP_TIMEOUT_MS = 5_000;
const CONTAINER_IMAGE = 'nats:2.10';

const HOW_TO_PROVIDE =
  'no NATS server found. Provide one of: ' +
  '(1) NATS_URL=nats://127.0.0.1:4222 pointing at a running nats-server; ' +
  '(2) the nats-server binary on PATH or at /usr/sbin/nats-server (apt-get install nats-server, or https://github.com/nats-io/nats-server/releases); ' +
  '(3) a running Docker daemon, for testcontainers (image ' +
  CONTAINER_IMAGE +
  ').';

/** A CI run (CI set, and not '', 'false' or '0'): there a missing NATS server is a failure, never a skip. */
export function isCi(): boolean {
  const ci = (process.env.CI ?? '').trim().toLowerCase();
  return ci !== '' && ci !== 'false' && ci !== '0';
}

/** Thrown under CI when no NATS server can be found: the test file fails. */
export class NoNatsServerError extends Error {
  override readonly name = 'NoNatsServerError';
}

const banner = (text: string): string => `\n${'!'.repeat(100)}\n${text}\n${'!'.repeat(100)}\n`;

/**
 * For tests that start (and kill) a nats-server of their own: whether to skip
 * them. True, after a loud warning, only when no binary exists and this is not
 * CI; under CI always false, so the test runs and fails in startNatsServer
 * with how to provide one.
 */
export function skipWithoutNatsBinary(what: string): boolean {
  if (findNatsServerBinary() !== null || isCi()) return false;
  console.warn(banner(`${what} SKIPPED (it starts a nats-server of its own): ${HOW_TO_PROVIDE}`));
  return true;
}

export { findNatsServerBinary, freePort };

/**
 * Starts nats-server on 127.0.0.1 (on `port`, or a free one) with JetStream
 * storing in `storeDir` (a fresh temp dir by default; `jetStream: false`:
 * without JetStream). Resolves when it
 * accepts connections. Pass the same port and storeDir to restart a killed
 * server in place.
 */
export async function startNatsServer(options: { port?: number; binary?: string; storeDir?: string; configFile?: string; env?: NodeJS.ProcessEnv; jetStream?: boolean } = {}): Promise<NatsServerProcess> {
  const binary = options.binary ?? findNatsServerBinary();
  if (binary === null) throw new NoNatsServerError(`cannot start a nats-server: ${HOW_TO_PROVIDE}`);
  const port = options.port ?? (await freePort());
  const storeDir = options.storeDir ?? mkdtempSync(join(tmpdir(), 'specula-nats-'));
  const config = options.configFile === undefined ? [] : ['-c', options.configFile];
  const jetStream = options.jetStream === false ? [] : ['-js', '-sd', storeDir];
  const child = spawn(binary, [...config, '-a', '127.0.0.1', '-p', String(port), ...jetStream], { stdio: ['ignore', 'ignore', 'pipe'], env: options.env ?? process.env });
  let log = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    log = (log + chunk).slice(-8192);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), SERVER_STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };
  const url = `nats://127.0.0.1:${port}`;
  try {
    await waitForPort(port, SERVER_READY_TIMEOUT_MS, () => child.exitCode !== null);
  } catch (err) {
    await kill();
    if (options.storeDir === undefined) rmSync(storeDir, { recursive: true, force: true });
    throw new Error(`nats-server (${binary}) did not start on port ${port}: ${(err as Error).message}\n${log}`, { cause: err });
  }
  return {
    url,
    port,
    storeDir,
    process: child,
    kill,
    stop: async () => {
      await kill('SIGTERM');
      if (options.storeDir === undefined) rmSync(storeDir, { recursive: true, force: true });
    },
  };
}

async function waitForPort(port: number, timeoutMs: number, gaveUp: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gaveUp()) throw new Error('server exited');
    if (await accepts(port)) return;
    if (Date.now() > deadline) throw new Error(`not listening after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startContainer(): Promise<NatsHandle | null> {
  try {
    const { NatsContainer } = await import('@testcontainers/nats');
    const started = await new NatsContainer(CONTAINER_IMAGE).withJetStream().start();
    const o = started.getConnectionOptions();
    const server = Array.isArray(o.servers) ? o.servers[0]! : o.servers!;
    const hostPort = server.replace(/^nats:\/\//, '');
    const auth = o.user !== undefined ? `${encodeURIComponent(o.user)}:${encodeURIComponent(o.pass ?? '')}@` : '';
    return {
      url: `nats://${auth}${hostPort}`,
      source: 'container',
      stop: async () => {
        await started.stop();
      },
    };
  } catch (err) {
    console.warn(`testcontainers could not start NATS: ${(err as Error).message.split('\n')[0]}`);
    return null;
  }
}

export type NatsSource = NatsHandle['source'];

/**
 * A NATS server for a test file: NATS_URL, else a private nats-server, else a
 * container, else null after a loud warning (the caller skips its tests) —
 * except under CI, where finding none throws NoNatsServerError and the file
 * fails. `sources` narrows the search (and its order).
 */
export async function withNats(options: { sources?: readonly NatsSource[] } = {}): Promise<NatsHandle | null> {
  for (const source of options.sources ?? (['env', 'binary', 'container'] as const)) {
    if (source === 'env') {
      const fromEnv = process.env.NATS_URL;
      if (fromEnv) return { url: fromEnv, source: 'env', stop: async () => undefined };
    } else if (source === 'binary') {
      if (findNatsServerBinary() === null) continue;
      const server = await startNatsServer();
      return { url: server.url, source: 'binary', stop: () => server.stop() };
    } else {
      const container = await startContainer();
      if (container) return container;
    }
  }
  if (isCi()) throw new NoNatsServerError(`NATS integration tests FAILED: CI is set and ${HOW_TO_PROVIDE} (Outside CI these tests skip.)`);
  console.warn(banner(`NATS integration tests SKIPPED: ${HOW_TO_PROVIDE}`));
  return null;
}
