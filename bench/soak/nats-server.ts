import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepts, findNatsServerBinary, freePort } from '../../cli/launcher/nats-server.js';
import { TransportError } from '../../lib/errors.js';

const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

/**
 * A nats-server with JetStream that can be restarted on the same port and
 * store, as an operator restarts a broker: clients reconnect to the same
 * URL and the lease bucket is still there.
 */
export class RestartableNatsServer {
  #process: ChildProcess | null = null;
  restarts = 0;
  /** Slow consumers the server reported before its last restart (its own count starts over). */
  #slowConsumersBefore = 0;

  private constructor(
    readonly binary: string,
    readonly port: number,
    readonly monitorPort: number,
    readonly storeDir: string,
  ) {}

  static async start(): Promise<RestartableNatsServer> {
    const binary = findNatsServerBinary();
    if (binary === null) throw new TransportError('no nats-server binary (PATH, /usr/sbin/nats-server): the soak starts and restarts its own');
    const server = new RestartableNatsServer(binary, await freePort(), await freePort(), mkdtempSync(join(tmpdir(), 'specula-soak-nats-')));
    await server.#launch();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /**
   * Clients the server cut off for not reading fast enough, over every run of
   * it (its monitoring endpoint's `slow_consumers`): a subscriber cut off so
   * misses messages, which the soak's auditor must not.
   */
  async slowConsumers(): Promise<number> {
    return this.#slowConsumersBefore + (await this.#varzSlowConsumers());
  }

  async #varzSlowConsumers(): Promise<number> {
    const response = await fetch(`http://127.0.0.1:${this.monitorPort}/varz`);
    const varz = (await response.json()) as { slow_consumers?: unknown };
    return typeof varz.slow_consumers === 'number' ? varz.slow_consumers : 0;
  }

  /** SIGTERM (nats-server shuts down cleanly), then the same server again after `downMs`. */
  async restart(downMs: number): Promise<void> {
    this.#slowConsumersBefore += await this.#varzSlowConsumers().catch(() => 0);
    await this.#terminate();
    await new Promise((resolve) => setTimeout(resolve, downMs));
    await this.#launch();
    this.restarts++;
  }

  async stop(): Promise<void> {
    await this.#terminate();
    rmSync(this.storeDir, { recursive: true, force: true });
  }

  async #launch(): Promise<void> {
    const child = spawn(this.binary, ['-a', '127.0.0.1', '-p', String(this.port), '-m', String(this.monitorPort), '-js', '-sd', this.storeDir], { stdio: 'ignore' });
    this.#process = child;
    const deadline = performance.now() + READY_TIMEOUT_MS;
    while (!(await accepts(this.port))) {
      if (child.exitCode !== null || performance.now() > deadline) throw new TransportError(`nats-server did not come up on port ${this.port}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async #terminate(): Promise<void> {
    const child = this.#process;
    this.#process = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
}
