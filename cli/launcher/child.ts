import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ServiceProcessError, type Exit } from './service-process-error.js';

export { ServiceProcessError, type Exit } from './service-process-error.js';

/** Stderr kept per child for error messages. */
const STDERR_TAIL_BYTES = 4_096;

/** Children still running when this process exits are killed: one listener for all of them. */
const living = new Set<Child>();
process.once('exit', () => {
  for (const c of living) c.kill('SIGKILL');
});

/** dist/cli/specula.js of this build; from the TypeScript sources, the build's copy. */
export function compiledCliPath(): string {
  const beside = fileURLToPath(new URL('../specula.js', import.meta.url));
  if (existsSync(beside)) return beside;
  const built = fileURLToPath(new URL('../../dist/cli/specula.js', import.meta.url));
  if (existsSync(built)) return built;
  throw new ServiceProcessError(`compiled CLI not found at ${beside} or ${built}; run npm run build`);
}

export interface ChildOptions {
  /** A label for logs and errors: "host-a guest". */
  readonly label: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Each stderr line of the child, prefixed with its label (none: kept quiet, only the tail is kept). */
  readonly onLog?: (line: string) => void;
  /** Another program to run with `args` (a nats-server) instead of the specula CLI. */
  readonly executable?: string;
}

/** One `specula …` child process: stdout as JSON lines, stderr prefixed and its tail kept. */
export class Child {
  readonly lines: string[] = [];
  readonly #child: ChildProcess;
  readonly #exit: Promise<Exit>;
  #partialOut = '';
  #partialErr = '';
  #stderrTail = '';
  #exitInfo: Exit | null = null;
  readonly #lineWaiters = new Set<(line: string) => void>();

  constructor(
    readonly options: ChildOptions,
    cliPath = options.executable === undefined ? compiledCliPath() : '',
  ) {
    // SPECULA_CHILD_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") goes to every child's node: profiling a fleet.
    const nodeArgs = (process.env.SPECULA_CHILD_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    const [command, args] = options.executable === undefined ? [process.execPath, [...nodeArgs, cliPath, ...options.args]] : [options.executable, [...options.args]];
    this.#child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    living.add(this);
    this.#child.stdout!.setEncoding('utf8').on('data', (chunk: string) => this.#onStdout(chunk));
    this.#child.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.#onStderr(chunk));
    this.#exit = new Promise<Exit>((resolve) => {
      this.#child.once('error', (err) => {
        this.#stderrTail += `\nspawn failed: ${err.message}`;
        this.#exitInfo = { code: -1, signal: null };
        resolve(this.#exitInfo);
      });
      this.#child.once('close', (code, signal) => {
        living.delete(this);
        this.#exitInfo = { code, signal };
        resolve(this.#exitInfo);
      });
    });
  }

  get label(): string {
    return this.options.label;
  }
  get pid(): number | undefined {
    return this.#child.pid;
  }
  get running(): boolean {
    return this.#exitInfo === null && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  #onStdout(chunk: string): void {
    const parts = (this.#partialOut + chunk).split('\n');
    this.#partialOut = parts.pop()!;
    for (const line of parts) {
      if (line.trim() === '') continue;
      this.lines.push(line);
      for (const waiter of this.#lineWaiters) waiter(line);
    }
  }

  #onStderr(chunk: string): void {
    this.#stderrTail = (this.#stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
    const onLog = this.options.onLog;
    if (onLog === undefined) return;
    const parts = (this.#partialErr + chunk).split('\n');
    this.#partialErr = parts.pop()!;
    for (const line of parts) if (line.trim() !== '') onLog(`[${this.options.label}] ${line}`);
  }

  /** Resolves with the first stdout line that parses as JSON and passes `accept`; fails on exit or timeout. */
  waitForJson<T>(accept: (value: unknown) => value is T, timeoutMs: number, what: string): Promise<T> {
    const seen = this.lines.map(jsonOf).find(accept);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<T>((resolve, reject) => {
      const done = (outcome: { readonly value: T } | Error) => {
        clearTimeout(timer);
        this.#lineWaiters.delete(onLine);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome.value);
      };
      const onLine = (line: string) => {
        const value = jsonOf(line);
        if (accept(value)) done({ value });
      };
      const timer = setTimeout(() => done(this.failure(`did not manage ${what} within ${timeoutMs} ms`)), timeoutMs);
      this.#lineWaiters.add(onLine);
      void this.#exit.then((e) => done(this.failure(`exited (${e.signal ?? e.code}) before managing ${what}`)));
    });
  }

  /** The exit status, or a ServiceProcessError (after SIGKILL) when it takes longer than `timeoutMs`. */
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

  /** Resolves on exit, whenever it comes. */
  get exit(): Promise<Exit> {
    return this.#exit;
  }

  kill(signal: NodeJS.Signals): void {
    if (this.running) this.#child.kill(signal);
  }

  /** The last stdout line that parses as JSON and passes `accept`, or null. */
  lastJson<T>(accept: (value: unknown) => value is T): T | null {
    for (let i = this.lines.length - 1; i >= 0; i--) {
      const value = jsonOf(this.lines[i]!);
      if (accept(value)) return value;
    }
    return null;
  }

  /** An error naming this child, with the end of its stderr. */
  failure(what: string): ServiceProcessError {
    const tail = this.#stderrTail.trim();
    return new ServiceProcessError(`${this.options.label} ${what}${tail ? `; its stderr ends:\n${tail}` : ''}`, { label: this.options.label, pid: this.pid }, this.#exitInfo);
  }
}

/** A stdout line's JSON value; undefined for a line that is not JSON (a service prints only JSON lines, but a child may be anything). */
function jsonOf(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return undefined;
  }
}
