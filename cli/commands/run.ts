import { Command, Option } from 'commander';
import { MODES, type Mode } from '../../lib/config/run-config.js';
import { ConfigError } from '../../lib/errors.js';
import type { RunResult } from '../../lib/results/run-result.js';
import { writeFileSync } from 'node:fs';
import type { RunTimeline } from '../../lib/results/timeline.js';
import { simulateTimedWithTimeline } from '../simulate-timed.js';
import { renderSvg } from '../experiment/plot.js';
import { timelineSpec } from '../plot/timeline.js';
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
  vms: number;
  verbose: boolean;
  plot?: string;
}

/** The run's timeline as an SVG at `path`; says where on stderr. */
async function writePlot(path: string, timeline: RunTimeline, result: RunResult): Promise<void> {
  const title = `${result.mode}, ${result.runtime}: goodput over time${result.epochMs === null ? '' : ` (${result.epochMs} ms epochs)`}`;
  writeFileSync(path, await renderSvg(timelineSpec(timeline, title)));
  process.stderr.write(`specula run: wrote ${path}\n`);
}

export function runCommand(): Command {
  const cmd = new Command('run').description('run one scenario and print its result');
  cmd.addOption(new Option('--mode <mode>', 'replication mode').choices(MODES).default('native'));
  cmd.option('--epoch-ms <n>', 'checkpoint epoch length (replicated modes)', num, 25);
  cmd.option('--rtt-ms <n>', 'round-trip propagation delay', num, 1).option('--seed <n>', 'seed of the whole run', num, 1);
  addScenarioOptions(cmd);
  cmd
    .option('--crash-primary-at-ms <n>', 'crash the primary host (all its services) at this time (sim: simulated; nats: SIGKILL of its processes after the client started); the backup takes over (replicated modes)', num)
    .addOption(new Option('--format <format>', 'output format').choices(['json', 'table']).default('json'))
    .addOption(new Option('--runtime <runtime>', 'sim: deterministic simulator; nats: every service as its own process over NATS, in real time').choices(['sim', 'nats']).default('sim'))
    .addOption(new Option('--nats-url <url>', 'NATS server for --runtime nats').env('NATS_URL').default('nats://127.0.0.1:4222'))
    .option('--vms <n>', 'nats: protected VMs at once (each service process serves all of them); one result line each', num, 1)
    .option('--verbose', 'nats: show the services\' logs on stderr, prefixed by host and service', false)
    .option('--plot <file.svg>', 'also draw goodput over time, with the epochs\' commits, the crash, the promotion and the re-protection marked, as SVG')
    .action(async (flags: RunFlags) => {
      if (flags.crashPrimaryAtMs !== undefined && flags.mode === 'native') throw new ConfigError('--crash-primary-at-ms: native mode has no backup to fail over to');
      const config = validateRunConfig({
        ...scenarioConfig(flags, { mode: flags.mode, epochMs: flags.epochMs, rttMs: flags.rttMs, seed: flags.seed }),
        faults: { crashPrimaryAtMs: flags.crashPrimaryAtMs ?? null },
      });
      if (flags.runtime === 'nats') {
        const { runOnNats } = await import('../launcher/nats-run.js');
        const timelines: RunTimeline[] = [];
        const results = await runOnNats(config, {
          natsUrl: flags.natsUrl,
          vms: flags.vms,
          onTimeline: (_vm, t) => timelines.push(t),
          onViolation: (v) => process.stderr.write(`specula run: audit: ${v.invariant} (${v.rule}) on ${v.host ?? 'the bus'}: ${v.detail}\n`),
          ...(flags.verbose ? { onLog: (line: string) => process.stderr.write(line + '\n') } : {}),
        });
        const out = results.length === 1 ? formatResult(results[0]!, flags.format) : results.map((r) => formatResult(r, flags.format)).join('\n');
        process.stdout.write(out + '\n');
        if (flags.plot !== undefined && timelines[0] !== undefined) await writePlot(flags.plot, timelines[0], results[0]!);
        process.exitCode = results.every((r) => r.streamVerified && (r.auditViolations ?? 0) === 0) ? EXIT_OK : EXIT_FAILED;
        return;
      }
      if (flags.vms !== 1) throw new ConfigError('--vms: the simulator runs one VM per run');
      const { result, timeline } = simulateTimedWithTimeline(config);
      process.stdout.write(formatResult(result, flags.format) + '\n');
      if (flags.plot !== undefined) await writePlot(flags.plot, timeline, result);
      process.exitCode = result.streamVerified ? EXIT_OK : EXIT_FAILED;
    });
  return cmd;
}
