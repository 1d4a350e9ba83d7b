import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RunConfig } from '../lib/config/run-config.js';
import { ConfigError, SpeculaError, TransportError } from '../lib/errors.js';
import type { RunResult } from '../lib/results/run-result.js';
import { connectNats } from '../lib/runtime/nats/connect.js';
import type { GuestReport } from '../services/guest/main.js';

export interface NatsRunOptions {
  readonly natsUrl: string;
  /** The compiled CLI the services run from; found beside this module by default. */
  readonly cliPath?: string;
  /** How long the guest may take to connect and subscribe. */
  readonly readyTimeoutMs?: number;
  /** Wall time allowed beyond the run's duration before both processes are killed. */
  readonly graceMs?: number;
}

const DEFAULT_READY_TIMEOUT_MS = 15_000;
const DEFAULT_GRACE_MS = 30_000;
/** How long the guest may take to drain and report after SIGTERM before SIGKILL. */
const GUEST_STOP_TIMEOUT_MS = 5_000;
/** Stderr kept per child for error messages. */
const STDERR_TAIL_BYTES = 4_096;
/** Room left in a vmId (64 characters at most) for the per-run suffix. */
const VM_ID_BASE_MAX = 55;

/** A run on NATS failed after it started (a service crashed, hung or printed nonsense). */
export class NatsRunError extends SpeculaError {
  readonly code = 'NATS_RUN';
  readonly retryable = false;
}

/**
 * Runs the guest and client cores as two processes (`specula service …`) over
 * NATS, in real time, with the link emulated in each receiving process.
 * Subjects get a per-run vmId suffix, so runs in parallel do not collide.
 */
export async function runOnNats(config: RunConfig, options: NatsRunOptions): Promise<RunResult> {
  if (config.mode !== 'native') throw new ConfigError(`--mode ${config.mode}: --runtime nats runs --mode native only so far`);
  const t0 = performance.now();
  // Fail fast, in this process, with a clear TransportError when the server is unreachable.
  const probe = await connectNats({ servers: options.natsUrl, name: 'specula-run', reconnect: false });
  await probe.close();

  const runConfig: RunConfig = { ...config, vmId: `${config.vmId.slice(0, VM_ID_BASE_MAX)}-${randomUUID().slice(0, 8)}` };
  const cliPath = options.cliPath ?? compiledCliPath();
  const serviceArgs = (name: 'guest' | 'client', ...extra: string[]) => ['service', name, '--config-json', JSON.stringify(runConfig), '--nats-url', options.natsUrl, ...extra];
  const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
  // The guest bounds its own life too, in case this process dies without killing it.
  const guest = new ServiceProcess('guest', cliPath, serviceArgs('guest', '--exit-after-s', String(config.durationS + graceMs / 1000)));
  let client: ServiceProcess | null = null;
  try {
    await guest.waitForLine((line) => line.includes('"guest-ready"'), options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS, 'to subscribe');
    client = new ServiceProcess('client', cliPath, serviceArgs('client'));
    const clientExit = await client.exited(config.durationS * 1000 + graceMs);
    if (clientExit.code !== 0) throw client.failure(`exited with ${clientExit.signal ?? clientExit.code}`);
    const result = parseLast<RunResult>(client, (v) => typeof v === 'object' && v !== null && (v as RunResult).runtime === 'nats');
    guest.kill('SIGTERM');
    const guestExit = await guest.exited(GUEST_STOP_TIMEOUT_MS);
    if (guestExit.code !== 0) throw guest.failure(`exited with ${guestExit.signal ?? guestExit.code} after SIGTERM`);
    const report = parseLast<GuestReport>(guest, (v) => typeof v === 'object' && v !== null && (v as GuestReport).kind === 'guest-report');
    if (report.shell.disconnects > 0) throw new TransportError(`the guest lost its NATS connection ${report.shell.disconnects} time(s) during the run; its result does not measure the emulated link`);
    return { ...mergeGuestReport(result, report), wallMs: Math.round(performance.now() - t0) };
  } finally {
    guest.kill('SIGKILL');
    client?.kill('SIGKILL');
  }
}

/** Adds what only the guest knows to the client's result. */
export function mergeGuestReport(result: RunResult, report: GuestReport): RunResult {
  return {
    ...result,
    streamVerified: result.streamVerified && report.guest.requestStreamVerified,
    retransmits: report.tcp.retransmits,
    fastRetransmits: report.tcp.fastRetransmits,
    timeouts: report.tcp.timeouts,
    linkQueueDrops: result.linkQueueDrops + report.linkUp.queueDrops,
    linkRandomLosses: result.linkRandomLosses + report.linkUp.randomLosses,
    simEvents: result.simEvents + report.shell.inputsHandled,
  };
}

/** dist/cli/specula.js beside this module; from the TypeScript sources, the build's copy. */
function compiledCliPath(): string {
  const beside = fileURLToPath(new URL('./specula.js', import.meta.url));
  if (existsSync(beside)) return beside;
  const built = fileURLToPath(new URL('../dist/cli/specula.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new NatsRunError(`compiled CLI not found at ${beside} or ${built}; run npm run build`);
}

function parseLast<T>(service: ServiceProcess, accept: (value: unknown) => boolean): T {
  for (let i = service.lines.length - 1; i >= 0; i--) {
    try {
      const value: unknown = JSON.parse(service.lines[i]!);
      if (accept(value)) return value as T;
    } catch {
      // not a JSON line; keep looking
    }
  }
  throw service.failure('printed no result line');
}

interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One `specula service` child: stdout split into lines, stderr forwarded and its tail kept. */
class ServiceProcess {
  readonly lines: string[] = [];
  readonly #child: ChildProcess;
  readonly #exit: Promise<Exit>;
  #partial = '';
  #stderrTail = '';
  #exitInfo: Exit | null = null;
  readonly #lineWaiters = new Set<(line: string) => void>();
  readonly #killOnExit = () => this.kill('SIGKILL');

  constructor(
    readonly name: string,
    cliPath: string,
    args: readonly string[],
  ) {
    const env = { ...process.env, SPECULA_LOG_LEVEL: process.env.SPECULA_LOG_LEVEL || 'warn' };
    this.#child = spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    process.once('exit', this.#killOnExit);
    this.#child.stdout!.setEncoding('utf8').on('data', (chunk: string) => this.#onStdout(chunk));
    this.#child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      process.stderr.write(chunk);
      this.#stderrTail = (this.#stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
    });
    this.#exit = new Promise<Exit>((resolve) => {
      this.#child.once('error', (err) => {
        this.#stderrTail += `\nspawn failed: ${err.message}`;
        this.#exitInfo = { code: -1, signal: null };
        resolve(this.#exitInfo);
      });
      this.#child.once('close', (code, signal) => {
        process.off('exit', this.#killOnExit);
        this.#exitInfo = { code, signal };
        resolve(this.#exitInfo);
      });
    });
  }

  #onStdout(chunk: string): void {
    const parts = (this.#partial + chunk).split('\n');
    this.#partial = parts.pop()!;
    for (const line of parts) {
      if (line.trim() === '') continue;
      this.lines.push(line);
      for (const waiter of this.#lineWaiters) waiter(line);
    }
  }

  /** Resolves on the first stdout line that matches; fails on exit or timeout. */
  waitForLine(match: (line: string) => boolean, timeoutMs: number, what: string): Promise<void> {
    if (this.lines.some(match)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.#lineWaiters.delete(onLine);
        if (err) reject(err);
        else resolve();
      };
      const onLine = (line: string) => {
        if (match(line)) done();
      };
      const timer = setTimeout(() => done(this.failure(`did not manage ${what} within ${timeoutMs} ms`)), timeoutMs);
      this.#lineWaiters.add(onLine);
      void this.#exit.then((e) => done(this.failure(`exited (${e.signal ?? e.code}) before managing ${what}`)));
    });
  }

  /** The exit status, or a NatsRunError (after SIGKILL) when it takes longer than `timeoutMs`. */
  async exited(timeoutMs: number): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    const exit = await Promise.race([this.#exit, timeout]);
    clearTimeout(timer);
    if (exit !== null) return exit;
    this.kill('SIGKILL');
    throw this.failure(`did not finish within ${timeoutMs} ms; killed`);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.#exitInfo === null && this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill(signal);
  }

  /** An error naming this service, with the end of its stderr; transport trouble stays a TransportError. */
  failure(what: string): SpeculaError {
    const tail = this.#stderrTail.trim();
    const message = `${this.name} service ${what}${tail ? `; its stderr ends:\n${tail}` : ''}`;
    return /cannot connect to NATS|connection closed|lost its NATS connection/.test(tail) ? new TransportError(message) : new NatsRunError(message);
  }
}
