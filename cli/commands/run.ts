import { Command, Option } from 'commander';
import { MODES, type Mode } from '../../lib/config/run-config.js';
import { ConfigError } from '../../lib/errors.js';
import type { RunResult } from '../../lib/results/run-result.js';
import { simulateTimed } from '../simulate-timed.js';
import { EXIT_FAILED, EXIT_OK } from '../exit-codes.js';
import { formatResult, type OutputFormat } from '../format.js';
import { addScenarioOptions, num, scenarioConfig, type ScenarioFlags } from '../run-options.js';
import { validateRunConfig } from '../validate.js';

interface RunFlags extends ScenarioFlags {
  mode: Mode;
  epochMs: number;
  rttMs: number;
  seed: number;
  format: OutputFormat;
  runtime: 'sim' | 'nats';
  crashPrimaryAtMs?: number;
  natsUrl: string;
}

export function runCommand(): Command {
  const cmd = new Command('run').description('run one scenario and print its result');
  cmd.addOption(new Option('--mode <mode>', 'replication mode').choices(MODES).default('native'));
  cmd.option('--epoch-ms <n>', 'checkpoint epoch length (replicated modes)', num, 25);
  cmd.option('--rtt-ms <n>', 'round-trip propagation delay', num, 1).option('--seed <n>', 'seed of the whole run', num, 1);
  addScenarioOptions(cmd);
  cmd
    .option('--crash-primary-at-ms <n>', 'crash the primary host (all its services) at this simulated time; the backup takes over (replicated modes)', num)
    .addOption(new Option('--format <format>', 'output format').choices(['json', 'table']).default('json'))
    .addOption(new Option('--runtime <runtime>', 'sim: deterministic simulator; nats: guest and client as processes over NATS').choices(['sim', 'nats']).default('sim'))
    .addOption(new Option('--nats-url <url>', 'NATS server for --runtime nats').env('NATS_URL').default('nats://127.0.0.1:4222'))
    .action(async (flags: RunFlags) => {
      if (flags.crashPrimaryAtMs !== undefined && flags.mode === 'native') throw new ConfigError('--crash-primary-at-ms: native mode has no backup to fail over to');
      const config = validateRunConfig({
        ...scenarioConfig(flags, { mode: flags.mode, epochMs: flags.epochMs, rttMs: flags.rttMs, seed: flags.seed }),
        faults: { crashPrimaryAtMs: flags.crashPrimaryAtMs ?? null },
      });
      let result: RunResult;
      if (flags.runtime === 'nats') {
        const { runOnNats } = await import('../nats-run.js');
        result = await runOnNats(config, { natsUrl: flags.natsUrl });
      } else {
        result = simulateTimed(config);
      }
      process.stdout.write(formatResult(result, flags.format) + '\n');
      process.exitCode = result.streamVerified ? EXIT_OK : EXIT_FAILED;
    });
  return cmd;
}
