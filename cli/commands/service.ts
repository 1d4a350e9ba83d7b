import { Argument, Command, Option } from 'commander';
import { parseConfig } from '../../lib/config/parse.js';
import { runConfigSchema, type RunConfig } from '../../lib/config/run-config.js';
import { ConfigError, TransportError } from '../../lib/errors.js';
import { DEFAULT_NATS_URL } from '../../lib/runtime/nats/options.js';
import { EXIT_FAILED } from '../exit-codes.js';
import { num } from '../run-options.js';

export const SERVICES = ['guest', 'client'] as const;
export type ServiceName = (typeof SERVICES)[number];

interface ServiceFlags {
  configJson: string;
  natsUrl: string;
  exitAfterS?: number;
  logLevel: string;
}

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
 * `specula service guest|client`: one service core as a process over NATS.
 * JSON lines on stdout (guest: a ready line, then its report on exit;
 * client: its RunResult); pino logs on stderr.
 */
export function serviceCommand(): Command {
  return new Command('service')
    .description('run one service core as a process over NATS (results as JSON lines on stdout, logs on stderr)')
    .addArgument(new Argument('<name>', 'guest: TCP server running the workload, until SIGTERM; client: connects, verifies, prints its RunResult when the run ends').choices(SERVICES))
    .addOption(new Option('--config-json <json>', 'run configuration as JSON (RunConfig fields; defaults fill the rest); both services of a run need the same one').env('SPECULA_CONFIG_JSON').default('{}'))
    .addOption(new Option('--nats-url <url>', 'NATS server(s), comma-separated').env('NATS_URL').default(DEFAULT_NATS_URL))
    .addOption(new Option('--exit-after-s <n>', 'guest: stop after this many wall seconds even without a signal (a bound for spawned runs)').argParser(num))
    .addOption(new Option('--log-level <level>', 'level of the stderr logs').choices(['debug', 'info', 'warn', 'error', 'silent']).env('SPECULA_LOG_LEVEL').default('info'))
    .action(async (name: ServiceName, flags: ServiceFlags) => {
      const config = runConfigFromJson(flags.configJson);
      if (config.mode !== 'native') throw new ConfigError(`mode ${config.mode}: the NATS runtime runs --mode native only so far`);
      process.env.SPECULA_LOG_LEVEL = flags.logLevel;
      try {
        if (name === 'guest') {
          const { runGuestService } = await import('../../services/guest/main.js');
          await runGuestService(config, { natsUrl: flags.natsUrl, ...(flags.exitAfterS === undefined ? {} : { exitAfterS: flags.exitAfterS }) });
        } else {
          const { runClientService } = await import('../../services/client/main.js');
          const { connected, natsDisconnects } = await runClientService(config, { natsUrl: flags.natsUrl });
          // The result is printed either way; a run that never connected verified nothing,
          // and one that lost NATS measured the outage rather than the link.
          if (!connected || natsDisconnects > 0) process.exitCode = EXIT_FAILED;
        }
      } catch (err) {
        if (!(err instanceof TransportError)) throw err;
        // An unreachable or lost server is an operational error: say what and where, no stack.
        process.stderr.write(`specula service ${name}: ${err.message}\n`);
        process.exitCode = EXIT_FAILED;
      }
    });
}
