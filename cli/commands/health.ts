import { Command, Option } from 'commander';
import { HEALTH_PATHS } from '../../lib/runtime/nats/health-server.js';
import { ConfigError } from '../../lib/errors.js';
import { EXIT_FAILED } from '../exit-codes.js';
import { num } from '../run-options.js';
import { checkPort } from '../validate.js';

/** A host name, an IPv4 address, or an IPv6 address in brackets. */
const HOST_PATTERN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])$/;

interface HealthFlags {
  port: number;
  host: string;
  live: boolean;
  timeoutMs: number;
}

/**
 * `specula health`: asks a service process on this machine whether it is
 * ready (or, with --live, alive); exit 0 if so, 1 if not. The container
 * image's HEALTHCHECK, where no curl is installed.
 */
export function healthCommand(): Command {
  return new Command('health')
    .description(`exit 0 when the service process at --port answers ${HEALTH_PATHS.ready} with 200 (with --live: ${HEALTH_PATHS.live}), else 1`)
    .addOption(new Option('--port <n>', 'the process\'s --health-port').argParser(num).env('SPECULA_HEALTH_PORT').makeOptionMandatory())
    .addOption(new Option('--host <name>', 'where the process listens').default('127.0.0.1'))
    .addOption(new Option('--live', `ask ${HEALTH_PATHS.live} (the event loop turns) instead of ${HEALTH_PATHS.ready}`).default(false))
    .addOption(new Option('--timeout-ms <n>', 'give up after this long').argParser(num).default(2_000))
    .action(async (flags: HealthFlags) => {
      checkPort('--port', flags.port);
      if (!(flags.timeoutMs > 0)) throw new ConfigError(`--timeout-ms ${flags.timeoutMs}: must be positive`);
      // An IPv6 address goes in brackets in a URL; anything but a name or an address (a path, a user) is refused.
      const host = flags.host.includes(':') && !flags.host.startsWith('[') ? `[${flags.host}]` : flags.host;
      if (!HOST_PATTERN.test(host)) throw new ConfigError(`--host '${flags.host}': not a host name or address`);
      const url = `http://${host}:${flags.port}${flags.live ? HEALTH_PATHS.live : HEALTH_PATHS.ready}`;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(flags.timeoutMs) });
        const body = await res.text();
        process.stdout.write(`${res.status} ${body}\n`);
        if (!res.ok) process.exitCode = EXIT_FAILED;
      } catch (err) {
        process.stderr.write(`specula health: ${url}: ${err instanceof Error ? err.message : String(err)}\n`);
        process.exitCode = EXIT_FAILED;
      }
    });
}
