import { Argument, Command, Option } from 'commander';
import { parseConfig } from '../../lib/config/parse.js';
import { runConfigSchema, type RunConfig } from '../../lib/config/run-config.js';
import { ConfigError, TransportError } from '../../lib/errors.js';
import { LeaseStoreUnavailableError } from '../../lib/lease/errors.js';
import { LEASE_BUCKET } from '../../lib/lease/kv-store.js';
import { DEFAULT_NATS_URL } from '../../lib/runtime/nats/options.js';
import { EXIT_FAILED } from '../exit-codes.js';
import { num } from '../run-options.js';

export const SERVICES = ['guest', 'client', 'failover'] as const;
export type ServiceName = (typeof SERVICES)[number];
/** Over NATS these run native mode only (the replicated services are not there yet); failover works the same in every mode. */
const NATIVE_ONLY: ReadonlySet<ServiceName> = new Set(['guest', 'client']);

interface ServiceFlags {
  configJson: string;
  natsUrl: string;
  exitAfterS?: number;
  logLevel: string;
  primaryHost: string;
  backupHost: string;
  spareHosts: string;
  leaseBucket: string;
}

/** A comma-separated list of host names; empty entries dropped (so '' is no host). */
const hostList = (value: string): string[] =>
  value
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');

/** Parses and validates a RunConfig given as JSON; errors name the bad field. */
export function runConfigFromJson(json: string): RunConfig {
  let input: unknown;
  try {
    input = JSON.parse(json);
  } catch (cause) {
    throw new ConfigError(`--config-json is not JSON: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
  return parseConfig(runConfigSchema, input);
}

/**
 * `specula service guest|client|failover`: one service core as a process over
 * NATS. JSON lines on stdout (guest and failover: a ready line, then a report
 * on exit; client: its RunResult); pino logs on stderr.
 */
export function serviceCommand(): Command {
  return new Command('service')
    .description('run one service core as a process over NATS (results as JSON lines on stdout, logs on stderr)')
    .addArgument(new Argument('<name>', 'guest: TCP server running the workload, until SIGTERM; client: connects, verifies, prints its RunResult when the run ends; failover: watches heartbeats, takes the lease in JetStream KV and promotes the backup, until SIGTERM').choices(SERVICES))
    .addOption(new Option('--config-json <json>', 'run configuration as JSON (RunConfig fields; defaults fill the rest); both services of a run need the same one').env('SPECULA_CONFIG_JSON').default('{}'))
    .addOption(new Option('--nats-url <url>', 'NATS server(s), comma-separated').env('NATS_URL').default(DEFAULT_NATS_URL))
    .addOption(new Option('--exit-after-s <n>', 'guest, failover: stop after this many wall seconds even without a signal (a bound for spawned runs)').argParser(num))
    .addOption(new Option('--primary-host <name>', 'failover: the primary host at start').default('host-a'))
    .addOption(new Option('--backup-host <name>', 'failover: the backup host at start').default('host-b'))
    .addOption(new Option('--spare-hosts <names>', 'failover: spare hosts, comma-separated').default('host-c'))
    .addOption(new Option('--lease-bucket <name>', 'failover: JetStream KV bucket of the leases (created when missing)').default(LEASE_BUCKET))
    .addOption(new Option('--log-level <level>', 'level of the stderr logs').choices(['debug', 'info', 'warn', 'error', 'silent']).env('SPECULA_LOG_LEVEL').default('info'))
    .action(async (name: ServiceName, flags: ServiceFlags) => {
      const config = runConfigFromJson(flags.configJson);
      if (NATIVE_ONLY.has(name) && config.mode !== 'native') throw new ConfigError(`mode ${config.mode}: the NATS runtime runs the ${name} in --mode native only so far`);
      process.env.SPECULA_LOG_LEVEL = flags.logLevel;
      try {
        if (name === 'guest') {
          const { runGuestService } = await import('../../services/guest/main.js');
          await runGuestService(config, { natsUrl: flags.natsUrl, ...(flags.exitAfterS === undefined ? {} : { exitAfterS: flags.exitAfterS }) });
        } else if (name === 'failover') {
          const { runFailoverService } = await import('../../services/failover/main.js');
          await runFailoverService(config, {
            natsUrl: flags.natsUrl,
            hosts: { primaryHost: flags.primaryHost, backupHost: flags.backupHost, spareHosts: hostList(flags.spareHosts) },
            leaseBucket: flags.leaseBucket,
            ...(flags.exitAfterS === undefined ? {} : { exitAfterS: flags.exitAfterS }),
          });
        } else {
          const { runClientService } = await import('../../services/client/main.js');
          const { connected, natsDisconnects } = await runClientService(config, { natsUrl: flags.natsUrl });
          // The result is printed either way; a run that never connected verified nothing,
          // and one that lost NATS measured the outage rather than the link.
          if (!connected || natsDisconnects > 0) process.exitCode = EXIT_FAILED;
        }
      } catch (err) {
        if (!(err instanceof TransportError || err instanceof LeaseStoreUnavailableError)) throw err;
        // An unreachable or lost server is an operational error: say what and where, no stack.
        process.stderr.write(`specula service ${name}: ${err.message}\n`);
        process.exitCode = EXIT_FAILED;
      }
    });
}
