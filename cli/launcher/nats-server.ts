import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { TransportError } from '../../lib/errors.js';

const FALLBACK_BINARY = '/usr/sbin/nats-server';
const READY_TIMEOUT_MS = 10_000;

/** The nats-server binary: on PATH first, then /usr/sbin/nats-server; null when neither exists. */
export function findNatsServerBinary(): string | null {
  const candidates = [...(process.env.PATH ?? '').split(delimiter).filter((d) => d !== '').map((d) => join(d, 'nats-server')), FALLBACK_BINARY];
  for (const path of candidates) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return null;
}

/** Where Linux takes the local ports of outgoing connections from. */
const EPHEMERAL_RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range';
/** Ports picked below the ephemeral range start here, above the well-known and most registered services. */
const LOWEST_PICKED_PORT = 10_000;
/** Random ports tried below the ephemeral range before asking the kernel for one. */
const PICK_ATTEMPTS = 64;

/**
 * A loopback port that was free a moment ago, for a listener started soon
 * after. Picked at random below the kernel's ephemeral range where it is
 * known: a port the kernel hands out (bind to 0) is one it may give the next
 * outgoing connection as its local port before the listener binds it, and a
 * health server then failed with EADDRINUSE beside a busy test suite.
 */
export async function freePort(): Promise<number> {
  const ephemeralLow = ephemeralRangeStart();
  if (ephemeralLow !== null && ephemeralLow - LOWEST_PICKED_PORT >= 1_000) {
    for (let i = 0; i < PICK_ATTEMPTS; i++) {
      const port = LOWEST_PICKED_PORT + Math.floor(Math.random() * (ephemeralLow - LOWEST_PICKED_PORT));
      if ((await listenOnce(port)) !== null) return port;
    }
  }
  const port = await listenOnce(0);
  if (port === null) throw new TransportError('no free loopback port: the kernel gave none');
  return port;
}

/** The first port of the ephemeral range (Linux), or null where it cannot be read. */
function ephemeralRangeStart(): number | null {
  try {
    const low = Number(readFileSync(EPHEMERAL_RANGE_FILE, 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 0 ? low : null;
  } catch {
    return null;
  }
}

/** Listens on loopback `port` (0: any) and closes again: the port it got, or null when it was taken. */
function listenOnce(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(null));
    srv.listen(port, '127.0.0.1', () => {
      const address = srv.address();
      const got = typeof address === 'object' && address !== null ? address.port : null;
      srv.close(() => resolve(got));
    });
  });
}

/** Whether something accepts TCP connections on loopback `port`. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = new Socket();
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.connect(port, '127.0.0.1');
  });
}

/** How long a server has to stop after SIGTERM before SIGKILL. */
const STOP_TIMEOUT_MS = 5_000;

/** A nats-server this process started (JetStream on, store in a temp dir). */
export interface OwnNatsServer {
  readonly url: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts nats-server with JetStream on a free loopback port; a TransportError when there is no binary or it does not come up. */
export async function startOwnNatsServer(): Promise<OwnNatsServer> {
  const binary = findNatsServerBinary();
  if (binary === null) throw new TransportError('no NATS server answered and no nats-server binary was found (PATH, /usr/sbin/nats-server): set NATS_URL or install nats-server');
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'specula-nats-'));
  const child = spawn(binary, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: 'ignore' });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      // A server that does not shut down (a JetStream flush on a full disk) is killed, so that stopping never hangs.
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    rmSync(storeDir, { recursive: true, force: true });
  };
  const deadline = performance.now() + READY_TIMEOUT_MS;
  while (!(await accepts(port))) {
    if (child.exitCode !== null || performance.now() > deadline) {
      await stop();
      throw new TransportError(`nats-server (${binary}) did not start on port ${port}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `nats://127.0.0.1:${port}`, process: child, stop };
}
