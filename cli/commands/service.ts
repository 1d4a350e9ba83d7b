import { readFileSync } from 'node:fs';
import { Argument, Command, Option } from 'commander';
import { parseConfig } from '../../lib/config/parse.js';
import { runConfigSchema, type RunConfig } from '../../lib/config/run-config.js';
import { ConfigError, TransportError } from '../../lib/errors.js';
import { LeaseStoreUnavailableError } from '../../lib/lease/errors.js';
import { LEASE_BUCKET } from '../../lib/lease/kv-store.js';
import { HEALTH_PATHS } from '../../lib/runtime/nats/health-server.js';
import { DEFAULT_NATS_URL } from '../../lib/runtime/nats/options.js';
import type { ServiceDefinition } from '../../lib/runtime/nats/service-process.js';
import { DEFAULT_TRACE_SAMPLE_RATE } from '../../lib/tracing/options.js';
import { EXIT_FAILED, exitCodeOf } from '../exit-codes.js';
import { num } from '../run-options.js';
import { checkPort, checkTimerMs } from '../validate.js';

const SWITCH_ON = ['1', 'true', 'on', 'yes'];
const SWITCH_OFF = ['', '0', 'false', 'off', 'no'];

/** An on/off environment variable: unset or one of SWITCH_OFF is off, SWITCH_ON on, anything else a ConfigError (commander would take any value, "false" too, for on). */
export function envSwitch(name: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  const v = value.trim().toLowerCase();
  if (SWITCH_ON.includes(v)) return true;
  if (SWITCH_OFF.includes(v)) return false;
  throw new ConfigError(`${name}=${value}: must be one of ${[...SWITCH_ON, ...SWITCH_OFF.filter((o) => o !== '')].join(', ')}, or empty`);
}

/** Reports more often than this would be most of what a service publishes. */
const MIN_REPORT_INTERVAL_MS = 10;

export const SERVICES = ['guest', 'checkpointer', 'netbuffer', 'acker', 'host-agent', 'failover', 'client'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** The definition of each service, loaded only when that service runs. */
export async function serviceDefinition(name: ServiceName): Promise<ServiceDefinition> {
  switch (name) {
    case 'guest':
      return (await import('../../services/guest/main.js')).guestService;
    case 'checkpointer':
      return (await import('../../services/checkpointer/main.js')).checkpointerService;
    case 'netbuffer':
      return (await import('../../services/netbuffer/main.js')).netbufferService;
    case 'acker':
      return (await import('../../services/acker/main.js')).ackerService;
    case 'host-agent':
      return (await import('../../services/host-agent/main.js')).hostAgentService;
    case 'failover':
      return (await import('../../services/failover/main.js')).failoverService;
    case 'client':
      return (await import('../../services/client/main.js')).clientService;
  }
}

interface ServiceFlags {
  config?: string;
  configJson: string;
  natsUrl: string;
  host?: string;
  vms: number;
  exitAfterS?: number;
  reportIntervalMs: number;
  logLevel: string;
  mode?: string;
  primaryHost?: string;
  backupHost?: string;
  spareHosts?: string;
  leaseBucket: string;
  leaseReplicas: number;
  healthPort?: number;
  trace: boolean;
  traceSample: number;
}

/** A comma-separated list of host names; empty entries dropped (so '' is no host). */
const hostList = (value: string): string[] =>
  value
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');

/** A RunConfig given as JSON, validated, with the JSON as given (what it sets, and what it leaves to defaults); errors name the bad field. */
function parseRunConfigJson(json: string, origin: string): { readonly input: unknown; readonly config: RunConfig } {
  let input: unknown;
  try {
    input = JSON.parse(json);
  } catch (cause) {
    throw new ConfigError(`${origin} is not JSON: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
  return { input, config: parseConfig(runConfigSchema, input) };
}

/** Parses and validates a RunConfig given as JSON; errors name the bad field. */
export function runConfigFromJson(json: string, origin = '--config-json'): RunConfig {
  return parseRunConfigJson(json, origin).config;
}

/** A configuration file (--config): the JSON as written and the configuration it gives. */
export function readConfigFile(path: string): { readonly input: unknown; readonly config: RunConfig } {
  let json: string;
  try {
    json = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`--config ${path}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
  return parseRunConfigJson(json, `--config ${path}`);
}

/** The run configuration of a service: a file, else JSON from a flag or SPECULA_CONFIG_JSON; host flags override its hosts. */
export function serviceConfig(flags: Pick<ServiceFlags, 'config' | 'configJson' | 'mode' | 'primaryHost' | 'backupHost' | 'spareHosts'>): RunConfig {
  const base = flags.config !== undefined ? readConfigFile(flags.config).config : runConfigFromJson(flags.configJson);
  if (flags.mode === undefined && flags.primaryHost === undefined && flags.backupHost === undefined && flags.spareHosts === undefined) return base;
  const hosts = { primary: flags.primaryHost ?? base.hosts.primary, backup: flags.backupHost ?? base.hosts.backup, spares: flags.spareHosts === undefined ? base.hosts.spares : hostList(flags.spareHosts) };
  return parseConfig(runConfigSchema, { ...base, ...(flags.mode === undefined ? {} : { mode: flags.mode }), hosts });
}

/** Why a client's final counters show no connection, from what answered its SYN. */
export function whyNotConnected(stats: Readonly<Record<string, unknown>>): string {
  const earlier = stats['segmentsOfAnEarlierConnection'];
  if (typeof earlier === 'number' && earlier > 0) {
    return `never connected: the VM still serves an earlier client (${earlier} of its segments answered this SYN). A VM serves one client connection in its lifetime; for another transfer, start the VMs again (specula up) or give each client a VM of its own (--vms)`;
  }
  return 'never connected: nothing answered its SYN (is the VM up, with this vmId and mode, on this NATS server?)';
}

/** The VMs one process serves: `vms` of them, vm1-1 … vm1-N (seeds seed … seed + N − 1), or the configured one alone. */
export function vmConfigs(config: RunConfig, vms: number): RunConfig[] {
  if (!Number.isSafeInteger(vms) || vms < 1 || vms > 256) throw new ConfigError(`--vms ${vms}: must be a whole number from 1 to 256`);
  if (config.busJitterUs > 0) throw new ConfigError(`busJitterUs (--bus-jitter-us) ${config.busJitterUs}: the simulator's only; over NATS the bus has jitter of its own`);
  if (vms === 1) return [config];
  return Array.from({ length: vms }, (_, i) => parseConfig(runConfigSchema, { ...config, vmId: `${config.vmId.slice(0, 60)}-${i + 1}`, seed: (config.seed + i) % 2 ** 32 }));
}

/**
 * `specula service <name…>`: one service as a process over NATS, for one VM
 * or several; several names run those services in one process, each as it
 * runs alone (`runServiceGroup`). JSON lines on stdout (a ready line, a
 * final line with each VM's counters, per service), pino logs on stderr,
 * reports on specula.<vm>.report.
 */
export function serviceCommand(): Command {
  return new Command('service')
    .description('run a service as a process over NATS (ready and final lines as JSON on stdout, logs on stderr, periodic reports on the bus); several names: those services in one process, still talking only over NATS')
    .addArgument(new Argument('<name...>', 'guest, checkpointer, netbuffer, acker, host-agent (one host each: --host), failover (once per VM), client (the remote peer: runs a transfer and prints its counters; alone)').choices(SERVICES))
    .addOption(new Option('--config <file>', 'run configuration as a JSON file (RunConfig fields; defaults fill the rest)').env('SPECULA_CONFIG'))
    .addOption(new Option('--config-json <json>', 'run configuration as JSON, when no --config file is given; every service of a VM needs the same one').env('SPECULA_CONFIG_JSON').default('{}'))
    .addOption(new Option('--nats-url <url>', 'NATS server(s), comma-separated').env('NATS_URL').default(DEFAULT_NATS_URL))
    .addOption(new Option('--host <name>', 'the host this process belongs to (host services)').env('SPECULA_HOST'))
    .addOption(new Option('--vms <n>', 'serve this many VMs (<vmId>-1 … -N); 1: the configured vmId').argParser(num).env('SPECULA_VMS').default(1))
    .addOption(new Option('--exit-after-s <n>', 'stop after this many wall seconds even without a signal (a bound for spawned runs; the client stops after the run duration anyway)').argParser(num))
    .addOption(new Option('--report-interval-ms <n>', 'interval of the reports on specula.<vm>.report').argParser(num).default(1000))
    .addOption(new Option('--mode <mode>', 'replication mode (overrides the configuration\'s mode); every service of a VM needs the same').choices(runConfigSchema.shape.mode.unwrap().options).env('SPECULA_MODE'))
    .addOption(new Option('--primary-host <name>', 'the VM\'s first primary (overrides hosts.primary)'))
    .addOption(new Option('--backup-host <name>', 'the VM\'s first backup (overrides hosts.backup)'))
    .addOption(new Option('--spare-hosts <names>', 'spare hosts, comma-separated (overrides hosts.spares)'))
    .addOption(new Option('--lease-bucket <name>', 'host-agent, failover: JetStream KV bucket of the leases (created when missing)').env('SPECULA_LEASE_BUCKET').default(LEASE_BUCKET))
    .addOption(new Option('--lease-replicas <n>', 'host-agent, failover: replicas of the lease bucket when this process creates it (3 or 5 on a JetStream cluster)').argParser(num).env('SPECULA_LEASE_REPLICAS').default(1))
    .addOption(new Option('--health-port <n>', `serve ${HEALTH_PATHS.live} (live) and ${HEALTH_PATHS.ready} (connected and serving) over HTTP on this port, for container probes`).argParser(num).env('SPECULA_HEALTH_PORT'))
    .addOption(new Option('--trace', 'export traces with OpenTelemetry (on anyway when OTEL_EXPORTER_OTLP_ENDPOINT is set; the OTEL_* variables configure the exporter); env SPECULA_TRACE: 1/true/on or 0/false/off').default(false))
    .addOption(new Option('--trace-sample <rate>', 'share of the guest\'s output segments traced, 0 to 1; every service of a VM needs the same').argParser(num).env('SPECULA_TRACE_SAMPLE').default(DEFAULT_TRACE_SAMPLE_RATE))
    .addOption(new Option('--log-level <level>', 'level of the stderr logs').choices(['debug', 'info', 'warn', 'error', 'silent']).env('SPECULA_LOG_LEVEL').default('info'))
    .action(async (names: ServiceName[], flags: ServiceFlags) => {
      const configs = vmConfigs(serviceConfig(flags), flags.vms);
      checkTimerMs('--report-interval-ms', flags.reportIntervalMs, flags.reportIntervalMs, MIN_REPORT_INTERVAL_MS);
      if (flags.exitAfterS !== undefined) checkTimerMs('--exit-after-s', flags.exitAfterS, flags.exitAfterS * 1000, 1);
      process.env.SPECULA_LOG_LEVEL = flags.logLevel;
      const defs = await Promise.all(names.map((n) => serviceDefinition(n)));
      const { runServiceGroup } = await import('../../lib/runtime/nats/service-group.js');
      if (flags.healthPort !== undefined) checkPort('--health-port', flags.healthPort);
      if (!(flags.traceSample >= 0 && flags.traceSample <= 1)) throw new ConfigError(`--trace-sample ${flags.traceSample}: must be from 0 to 1`);
      if (![1, 3, 5].includes(flags.leaseReplicas)) throw new ConfigError(`--lease-replicas ${flags.leaseReplicas}: must be 1, 3 or 5`);
      const traceOn = flags.trace || envSwitch('SPECULA_TRACE', process.env.SPECULA_TRACE);
      const exitAfterS = flags.exitAfterS ?? (names.includes('client') ? Math.max(...configs.map((c) => c.durationS)) : undefined);
      try {
        const finals = await runServiceGroup(defs, { natsUrl: flags.natsUrl, host: flags.host ?? null, configs, leaseBucket: flags.leaseBucket, leaseReplicas: flags.leaseReplicas as 1 | 3 | 5, reportIntervalMs: flags.reportIntervalMs, ...(flags.healthPort === undefined ? {} : { healthPort: flags.healthPort }), trace: { enabled: traceOn, segmentSampleRate: flags.traceSample }, ...(exitAfterS === undefined ? {} : { exitAfterS }) });
        // A client that never connected verified nothing; one whose bus dropped measured the outage, not the link.
        if (finals.some((final) => final.service === 'client' && final.vms.some((v) => v.stats.connected !== true || v.shell.disconnects > 0))) process.exitCode = EXIT_FAILED;
        for (const final of finals) if (final.service === 'client') for (const v of final.vms) if (v.stats.connected !== true) process.stderr.write(`specula service client: ${v.vmId}: ${whyNotConnected(v.stats)}\n`);
      } catch (err) {
        if (!(err instanceof TransportError || err instanceof LeaseStoreUnavailableError)) throw err;
        // An unreachable or lost server is an operational error: say what and where, no stack.
        process.stderr.write(`specula service ${names.join(' ')}: ${err.message}\n`);
        process.exitCode = exitCodeOf(err);
      }
    });
}
