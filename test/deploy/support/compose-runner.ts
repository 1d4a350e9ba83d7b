/**
 * Runs the services of a Compose file as local processes, for machines
 * without a Docker engine: each service's command and environment as the
 * file gives them, with what a container would have done by itself made
 * explicit:
 *   - the image: `nats:*` is the local nats-server binary, the specula image
 *     is the compiled CLI (`specula` is its entrypoint); other images (Jaeger)
 *     are not run, and what points at them points at a closed port;
 *   - hostnames: `<service>:<port>` is 127.0.0.1 on a free port of its own
 *     (the containers' ports all live on one loopback here), and so is the
 *     health port of each specula service;
 *   - bind mounts: the file is copied to a folder of the service's, and paths
 *     under the mount point are rewritten to it; named volumes are empty
 *     folders;
 *   - healthchecks: the file's CMD, run with the same rewriting.
 */
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Child } from '../../../cli/launcher/child.js';
import { findNatsServerBinary, freePort } from '../../../cli/launcher/nats-server.js';
import { HEALTH_PATHS } from '../../../lib/runtime/nats/health-server.js';
import type { ComposeFile, ComposeService } from './compose-file.js';
import type { BuiltImage } from './docker-build.js';

export interface ComposeRunnerOptions {
  readonly compose: ComposeFile;
  /** The folder of the Compose file: where `./` paths start. */
  readonly projectDir: string;
  /** The name the file gives the specula image, and that image, built (docker-build.ts). */
  readonly speculaImage: string;
  readonly image: BuiltImage;
  readonly onLog?: (line: string) => void;
}

const HEALTHY_TIMEOUT_MS = 30_000;
const HEALTH_RETRY_MS = 250;

/** The port a specula container's health server listens on (its SPECULA_HEALTH_PORT). */
const HEALTH_PORT_ENV = 'SPECULA_HEALTH_PORT';

export class ComposeRunner {
  readonly #root = mkdtempSync(join(tmpdir(), 'specula-compose-'));
  /** `<service>:<container port>` → local port. */
  readonly #ports = new Map<string, number>();
  readonly #children = new Map<string, Child>();
  /** Where a service's mount targets are on this machine. */
  readonly #mounts = new Map<string, { target: string; local: string }[]>();
  readonly #healthPorts = new Map<string, number>();
  readonly skipped: string[] = [];

  private constructor(readonly options: ComposeRunnerOptions) {}

  static async create(options: ComposeRunnerOptions): Promise<ComposeRunner> {
    const runner = new ComposeRunner(options);
    for (const s of options.compose.services.values()) {
      const containerPorts = new Set([...s.ports, ...(s.environment[HEALTH_PORT_ENV] ? [Number(s.environment[HEALTH_PORT_ENV])] : [])]);
      if (runner.#isNats(s)) containerPorts.add(4222).add(8222);
      for (const p of containerPorts) runner.#ports.set(`${s.name}:${p}`, await freePort());
      if (s.environment[HEALTH_PORT_ENV]) runner.#healthPorts.set(s.name, runner.#ports.get(`${s.name}:${s.environment[HEALTH_PORT_ENV]}`)!);
      runner.#mount(s);
    }
    return runner;
  }

  #isNats = (s: ComposeService) => s.image?.startsWith('nats:') === true;
  #isSpecula = (s: ComposeService) => s.image === this.options.speculaImage;

  #mount(s: ComposeService): void {
    const mounts: { target: string; local: string }[] = [];
    for (const v of s.volumes) {
      const local = join(this.#root, s.name, v.target);
      if (v.bind) {
        mkdirSync(dirname(local), { recursive: true });
        cpSync(resolve(this.options.projectDir, v.source), local, { recursive: true });
      } else mkdirSync(local, { recursive: true });
      mounts.push({ target: v.target, local });
    }
    this.#mounts.set(s.name, mounts);
  }

  /** A value as the process sees it here: mount paths, service hostnames and the service's own ports rewritten. */
  rewrite(service: string, value: string): string {
    let out = value;
    for (const m of this.#mounts.get(service) ?? []) if (out === m.target || out.startsWith(`${m.target}/`)) out = m.local + out.slice(m.target.length);
    out = out.replace(/\b([a-z][a-z0-9-]*):(\d+)\b/g, (match, host: string, port: string) => {
      const own = host === '127.0.0.1' || host === 'localhost' ? service : host;
      const local = this.#ports.get(`${own}:${port}`);
      if (local !== undefined) return `127.0.0.1:${local}`;
      // A service that is not run here (Jaeger): nothing listens.
      return this.options.compose.services.has(host) ? '127.0.0.1:9' : match;
    });
    return out.replace(/\b127\.0\.0\.1:(\d+)\b/g, (match, port: string) => {
      const local = this.#ports.get(`${service}:${port}`);
      return local === undefined || value.includes(`127.0.0.1:${local}`) ? match : `127.0.0.1:${local}`;
    });
  }

  #env(s: ComposeService): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: join(this.#root, s.name), ...(this.#isSpecula(s) ? this.options.image.env : {}) };
    for (const [k, v] of Object.entries(s.environment)) env[k] = this.rewrite(s.name, v);
    const health = this.#healthPorts.get(s.name);
    if (health !== undefined) env[HEALTH_PORT_ENV] = String(health);
    return env;
  }

  service(name: string): ComposeService {
    const s = this.options.compose.services.get(name);
    if (s === undefined) throw new Error(`no service ${name} in the Compose file`);
    return s;
  }

  /** Starts a service's process; resolves when it is healthy (its healthcheck passes) or, without one, started. */
  async start(name: string): Promise<Child | null> {
    const s = this.service(name);
    let child: Child;
    if (this.#isNats(s)) {
      const binary = findNatsServerBinary();
      if (binary === null) throw new Error('no nats-server binary for the Compose file\'s nats service');
      const args = [...s.command.map((a) => this.rewrite(name, a)), '-a', '127.0.0.1', '-p', String(this.#ports.get(`${name}:4222`)), '-m', String(this.#ports.get(`${name}:8222`))];
      child = new Child({ label: name, args, env: this.#env(s), executable: binary, ...(this.options.onLog ? { onLog: this.options.onLog } : {}) });
    } else if (this.#isSpecula(s)) {
      // The image's ENTRYPOINT with the service's command as its arguments.
      const [entry, ...entryArgs] = this.options.image.entrypoint;
      const args = [...entryArgs, ...s.command.map((a) => this.rewrite(name, a))];
      child = new Child({ label: name, args, env: this.#env(s), executable: this.options.image.which(entry!), ...(this.options.onLog ? { onLog: this.options.onLog } : {}) });
    } else {
      this.skipped.push(name);
      return null;
    }
    this.#children.set(name, child);
    if (s.healthcheck !== null) await this.#healthy(s, child);
    return child;
  }

  /** Runs the service's healthcheck command until it succeeds. */
  async #healthy(s: ComposeService, child: Child): Promise<void> {
    const deadline = performance.now() + HEALTHY_TIMEOUT_MS;
    const [command, ...args] = s.healthcheck!.map((a) => this.rewrite(s.name, a));
    const healthPort = this.#healthPorts.get(s.name);
    for (;;) {
      if (!child.running) throw child.failure('exited before it was healthy');
      // What the file's command asks (a specula service's /readyz) is first polled from here: a node process per
      // try, for 16 services starting at once on 2 cores, would itself starve them. The command then confirms it.
      if (healthPort !== undefined && !(await this.#answersReady(healthPort))) {
        if (performance.now() > deadline) throw child.failure(`not ready after ${HEALTHY_TIMEOUT_MS} ms (its ${HEALTH_PATHS.ready} on port ${healthPort})`);
        await new Promise((r) => setTimeout(r, HEALTH_RETRY_MS));
        continue;
      }
      const ok = await this.#exitsZero(this.#isSpecula(s) ? this.options.image.which(command!) : command!, args, this.#env(s));
      if (ok) return;
      if (performance.now() > deadline) throw child.failure(`not healthy after ${HEALTHY_TIMEOUT_MS} ms (healthcheck: ${s.healthcheck!.join(' ')})`);
      await new Promise((r) => setTimeout(r, HEALTH_RETRY_MS));
    }
  }

  async #answersReady(port: number): Promise<boolean> {
    try {
      return (await fetch(`http://127.0.0.1:${port}${HEALTH_PATHS.ready}`, { signal: AbortSignal.timeout(HEALTH_RETRY_MS * 4) })).status === 200;
    } catch {
      return false; // not listening yet, or too slow to answer
    }
  }

  #exitsZero(command: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<boolean> {
    return new Promise((done) => {
      const p = spawn(command, args, { stdio: 'ignore', env });
      p.once('error', () => done(false));
      p.once('close', (code) => done(code === 0));
    });
  }

  /** `docker compose up`: every service without a profile, each after the ones it depends on are healthy. */
  async up(): Promise<void> {
    const started = new Map<string, Promise<unknown>>();
    const startWithDeps = (name: string): Promise<unknown> => {
      let p = started.get(name);
      if (p === undefined) {
        const s = this.service(name);
        p = Promise.all(s.dependsOn.map(startWithDeps)).then(() => this.start(name));
        started.set(name, p);
      }
      return p;
    };
    await Promise.all([...this.options.compose.services.values()].filter((s) => s.profiles.length === 0).map((s) => startWithDeps(s.name)));
  }

  child(name: string): Child | undefined {
    return this.#children.get(name);
  }

  /** The local port of `<service>:<container port>`. */
  port(service: string, containerPort: number): number {
    const p = this.#ports.get(`${service}:${containerPort}`);
    if (p === undefined) throw new Error(`${service} publishes no port ${containerPort}`);
    return p;
  }

  /** The loopback port a specula service's health server (and /metrics) listens on here. */
  healthPort(service: string): number {
    const p = this.#healthPorts.get(service);
    if (p === undefined) throw new Error(`${service} has no health port`);
    return p;
  }

  /** `docker compose kill -s SIGKILL …`. */
  kill(names: readonly string[], signal: NodeJS.Signals = 'SIGKILL'): void {
    for (const n of names) this.#children.get(n)?.kill(signal);
  }

  /**
   * `docker compose down`: in reverse dependency order, as Compose stops
   * them (a service before what it depends on: the services drain into a
   * NATS server that is still there), each SIGTERM, then SIGKILL after
   * `timeoutMs`; the folders go.
   */
  async down(timeoutMs = 10_000): Promise<void> {
    const stopping = new Map<string, Promise<void>>();
    const stop = (name: string): Promise<void> => {
      let p = stopping.get(name);
      if (p === undefined) {
        const dependents = [...this.options.compose.services.values()].filter((s) => s.dependsOn.includes(name)).map((s) => s.name);
        p = Promise.all(dependents.map(stop)).then(async () => {
          const child = this.#children.get(name);
          child?.kill('SIGTERM');
          await child?.exited(timeoutMs).catch(() => undefined);
        });
        stopping.set(name, p);
      }
      return p;
    };
    await Promise.all([...this.#children.keys()].map(stop));
    rmSync(this.#root, { recursive: true, force: true });
  }
}
