import { Command, Option } from 'commander';
import { withNatsTiming, type ExplicitTiming } from '../../lib/config/nats-profile.js';
import { parseConfig } from '../../lib/config/parse.js';
import { MODES, runConfigSchema, type Mode, type RunConfig } from '../../lib/config/run-config.js';
import { ConfigError, CredentialsRefusedError, SpeculaError, TransportError, VmRunningError } from '../../lib/errors.js';
import { forgetLease, LEASE_BUCKET } from '../../lib/lease/kv-store.js';
import { liveLease } from '../../lib/lease/live-lease.js';
import { wallClockLiveLease } from '../live-lease-clock.js';
import { connectNats } from '../../lib/runtime/nats/connect.js';
import { openLeaseStore } from '../../lib/runtime/nats/service-process.js';
import { DEFAULT_NATS_URL } from '../../lib/runtime/nats/options.js';
import { BusAuditor } from '../../services/auditor/main.js';
import { EXIT_FAILED, exitCodeOf } from '../exit-codes.js';
import { Fleet } from '../launcher/fleet.js';
import { startOwnNatsServer, type OwnNatsServer } from '../launcher/nats-server.js';
import { num } from '../run-options.js';
import { readConfigFile, vmConfigs } from './service.js';
import { LAYOUTS, type Layout } from '../launcher/plan.js';
import { checkTimerMs } from '../validate.js';

interface UpFlags {
  mode: Mode;
  vms: number;
  layout: Layout;
  audit: boolean;
  config?: string;
  natsUrl: string;
  exitAfterS?: number;
  logLevel: string;
}

/** Whether a server answers at `url`. One that refuses the credentials answers: its error is thrown, no server is started beside it. */
async function reachable(url: string): Promise<boolean> {
  try {
    const nc = await connectNats({ servers: url, reconnect: false, connectTimeoutMs: 1_000 });
    await nc.close();
    return true;
  } catch (err) {
    if (err instanceof TransportError && !(err instanceof CredentialsRefusedError)) return false;
    throw err;
  }
}

/**
 * The configuration `up` runs: its file's, with --mode over the file's mode
 * when given (and in place of a mode the file does not set), and NATS timing wherever the file sets none (the simulator's
 * 10 ms heartbeats would fail a loaded machine's VMs over for nothing);
 * without a file, --mode with NATS timing. A native VM has nothing to
 * protect: refused.
 */
export function upConfig(flags: Pick<UpFlags, 'config' | 'mode'>, modeGiven: boolean): RunConfig {
  if (flags.config === undefined) return withNatsTiming(parseConfig(runConfigSchema, { mode: flags.mode, durationS: 3_600 }));
  const { input, config: fromFile } = readConfigFile(flags.config);
  // What the file sets of the timing stands over NATS_TIMING; a mode it does not set is --mode's.
  const raw = input as ExplicitTiming & { mode?: unknown };
  const mode = modeGiven || raw.mode === undefined ? flags.mode : fromFile.mode;
  const config = withNatsTiming({ ...fromFile, mode }, { ...(raw.failover ? { failover: raw.failover } : {}), ...(raw.bus ? { bus: raw.bus } : {}), ...(raw.epochPolicy ? { epochPolicy: raw.epochPolicy } : {}) });
  if (config.mode === 'native') throw new ConfigError(`--config ${flags.config}: mode native has no backup to protect the VM; set a replicated mode in the file or give --mode`);
  return config;
}

/**
 * `specula up`: protected VMs on this machine, every service its own process
 * (or each host's data path in one, `--layout host`) over NATS: the failover service and three hosts (primary, backup, spare)
 * with their agents and services. Logs on stderr prefixed by host and
 * service; ready when every process says so; Ctrl-C stops everything.
 */
export function upCommand(): Command {
  return new Command('up')
    .description('start protected VMs locally: the failover service and three hosts with their services, each a process over NATS (a nats-server is started if none answers)')
    .addOption(new Option('--mode <mode>', 'replication mode').choices(MODES.filter((m) => m !== 'native')).default('spec'))
    .addOption(new Option('--vms <n>', 'protected VMs (each service process serves all of them)').argParser(num).default(1))
    .addOption(new Option('--layout <layout>', 'service: every service its own process; host: a host\'s guest, checkpointer, netbuffer and acker in one process (still over NATS), its agent in another').choices(LAYOUTS).default('service'))
    .option('--audit', 'run the auditor on every VM\'s bus and stop everything at the first violation', false)
    .addOption(new Option('--config <file>', 'run configuration as a JSON file (--mode, when given, over its mode; NATS timing where it sets none)').env('SPECULA_CONFIG'))
    .addOption(new Option('--nats-url <url>', 'NATS server(s); if nothing answers, a nats-server is started on a free port').env('NATS_URL').default(DEFAULT_NATS_URL))
    .addOption(new Option('--exit-after-s <n>', 'stop everything after this many seconds').argParser(num))
    .addOption(new Option('--log-level <level>', 'level of the services\' logs').choices(['debug', 'info', 'warn', 'error', 'silent']).default('warn'))
    .action(async (flags: UpFlags, command: Command) => {
      const say = (line: string) => process.stderr.write(`specula up: ${line}\n`);
      const config = upConfig(flags, command.getOptionValueSource('mode') === 'cli');
      const configs = vmConfigs(config, flags.vms);
      if (flags.exitAfterS !== undefined) checkTimerMs('--exit-after-s', flags.exitAfterS, flags.exitAfterS * 1000, 1);
      let own: OwnNatsServer | null = null;
      let natsUrl = flags.natsUrl;
      if (!(await reachable(natsUrl))) {
        own = await startOwnNatsServer();
        natsUrl = own.url;
        say(`no NATS server at ${flags.natsUrl}: started nats-server at ${natsUrl}`);
      }
      const nc = await connectNats({ servers: natsUrl, name: 'specula-up' });
      let fleet: Fleet | null = null;
      let stopping: Promise<void> | null = null;
      const stop = (why: string, code = 0): Promise<void> => {
        stopping ??= (async () => {
          say(`stopping (${why})`);
          for (const err of (await fleet?.stop()) ?? []) say(err.message.split('\n')[0]!);
          await nc.close().catch(() => undefined);
          await own?.stop();
          process.exitCode = code;
        })();
        return stopping;
      };
      let auditors: ReturnType<typeof BusAuditor.forVm>[];
      try {
        auditors = flags.audit
          ? configs.map((c) =>
                BusAuditor.forVm(nc, c, (v) => {
                  say(`audit: ${v.invariant} (${v.rule}) on ${v.host ?? 'the bus'}: ${v.detail}`);
                  void stop('audit violation', EXIT_FAILED);
                }),
            )
          : [];
        await nc.flush();
        // These VMs are created now: a lease an earlier VM of the same id left in the bucket would depose their first
        // primary. But one a live holder renews belongs to a VM running now (another `up` on this bus): not ours to take.
        const leases = await openLeaseStore(nc, LEASE_BUCKET, natsUrl);
        const timing = wallClockLiveLease(config.failover.heartbeatIntervalMs, config.failover.clockSkewMs);
        for (const c of configs) {
          const live = await liveLease(leases, c.vmId, timing);
          if (live === null) continue;
          throw new VmRunningError(`${c.vmId} is running on ${natsUrl}: ${live.primaryHost} holds its lease under term ${live.term} and renews it. Stop the specula up (or the deployment) that runs it, or give these VMs other ids (--config with another vmId).`);
        }
        for (const c of configs) await forgetLease(leases, c.vmId);
      } catch (err) {
        // Nothing started yet but the connection (and maybe a nats-server of its own): closed, or the process would stay.
        await stop('could not start', err instanceof SpeculaError ? exitCodeOf(err) : EXIT_FAILED);
        throw err;
      }
      process.once('SIGINT', () => void stop('SIGINT'));
      process.once('SIGTERM', () => void stop('SIGTERM'));
      try {
        // Held before the wait: Ctrl-C while the processes start stops them (stop, above).
        fleet = Fleet.launch({ natsUrl, config, vms: flags.vms, layout: flags.layout, logLevel: flags.logLevel, onLog: (line) => process.stderr.write(line + '\n') });
        await fleet.whenReady();
      } catch (err) {
        // Stopped by a signal while starting: its processes went with it, as asked; nothing failed.
        if (stopping !== null) return stopping;
        await stop('a service did not start', EXIT_FAILED);
        throw err;
      }
      const hosts = [config.hosts.primary, config.hosts.backup, ...config.hosts.spares];
      say(`ready: ${configs.length} VM(s) in ${config.mode} mode (${configs.map((c) => c.vmId).join(', ')}) on ${hosts.join(', ')}; ${fleet.children.length} processes; NATS ${natsUrl}${flags.audit ? '; auditing' : ''}`);
      say(`a transfer (one client connection per VM in its lifetime): specula service client --nats-url ${natsUrl} --config-json '${JSON.stringify({ vmId: config.vmId, mode: config.mode, durationS: 10 })}'${flags.vms > 1 ? ` --vms ${flags.vms}` : ''}`);
      say(`watch: specula status --nats-url ${natsUrl}`);
      process.stdout.write(JSON.stringify({ kind: 'up', natsUrl, mode: config.mode, vms: configs.map((c) => c.vmId), hosts, processes: fleet.children.map((c) => ({ label: c.child.label, pid: c.child.pid })) }) + '\n');
      const lifetime = flags.exitAfterS === undefined ? null : setTimeout(() => void stop('lifetime'), flags.exitAfterS * 1000);
      // A process that dies on its own (not killed by a test or an operator) is reported; the rest goes on, as hosts do.
      const reported = new Set<string>();
      const watch = setInterval(() => {
        for (const err of fleet?.unexpectedExits() ?? []) {
          const which = `${err.process?.label}/${err.process?.pid}`;
          if (reported.has(which)) continue;
          reported.add(which);
          say(err.message.split('\n')[0]!);
        }
      }, 1_000);
      await new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (stopping !== null) {
            clearInterval(check);
            resolve();
          }
        }, 100);
      });
      await stopping;
      clearInterval(watch);
      if (lifetime) clearTimeout(lifetime);
      for (const a of auditors) a?.close();
    });
}
