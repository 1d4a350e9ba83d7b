import { Command, Option } from 'commander';
import { MODES, type Mode } from '../../lib/config/run-config.js';
import { ConfigError } from '../../lib/errors.js';
import type { RunResult } from '../../lib/results/run-result.js';
import type { RunTimeline } from '../../lib/results/timeline.js';
import { simulateTimedWithTimeline } from '../simulate-timed.js';
import { SpanCollector } from '../../lib/tracing/collector.js';
import { toJaegerJson, toOtlpJson } from '../../lib/tracing/export.js';
import { serviceOfActor } from '../../sim/actors.js';
import { EXIT_FAILED, EXIT_OK } from '../exit-codes.js';
import { formatResult, type OutputFormat } from '../format.js';
import { addScenarioOptions, num, scenarioConfig, type ScenarioFlags } from '../run-options.js';
import { checkOutputFile, validateRunConfig, writeOutputFile } from '../validate.js';
import { LAYOUTS, type Layout } from '../launcher/plan.js';

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
  layout: Layout;
  verbose: boolean;
  plot?: string;
  traceOut?: string;
  traceFormat: 'jaeger' | 'otlp';
  traceSample: number;
}

/** The run's timeline as an SVG at `path`; says where on stderr. */
async function writePlot(path: string, timeline: RunTimeline, result: RunResult): Promise<void> {
  // Loaded only here: vega is heavy, and every command (a health probe too) starts through this module.
  const [{ renderSvg }, { timelineSpec }] = await Promise.all([import('../experiment/plot.js'), import('../plot/timeline.js')]);
  const title = `${result.mode}, ${result.runtime}: goodput over time${result.epochMs === null ? '' : ` (${result.epochMs} ms epochs)`}`;
  writeOutputFile('--plot', path, await renderSvg(timelineSpec(timeline, title)));
  process.stderr.write(`specula run: wrote ${path}\n`);
}

/** Spans a traced run keeps (about 200 MB of JSON at most); more are counted. */
const MAX_TRACE_SPANS = 1_000_000;

function writeTraces(path: string, format: 'jaeger' | 'otlp', collector: SpanCollector): void {
  writeOutputFile('--trace-out', path, JSON.stringify(format === 'jaeger' ? toJaegerJson(collector.spans) : toOtlpJson(collector.spans)));
  const traces = new Set(collector.spans.map((s) => s.traceId)).size;
  const dropped = collector.dropped > 0 ? `; ${collector.dropped} more spans not kept (the bound is ${MAX_TRACE_SPANS})` : '';
  process.stderr.write(`specula run: wrote ${collector.spans.length} spans of ${traces} traces to ${path} (${format})${dropped}\n`);
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
    .addOption(new Option('--layout <layout>', 'nats: service: every service its own process; host: a host\'s guest, checkpointer, netbuffer and acker in one process (still over NATS), its agent in another').choices(LAYOUTS).default('service'))
    .option('--verbose', 'nats: show the services\' logs on stderr, prefixed by host and service', false)
    .option('--trace-out <file.json>', 'sim: write the run\'s traces (every epoch, and the sampled packets\' paths) as JSON that Jaeger\'s UI opens (its JSON file upload)')
    .addOption(new Option('--trace-format <format>', 'jaeger: Jaeger\'s JSON; otlp: OTLP/JSON').choices(['jaeger', 'otlp']).default('jaeger'))
    .option('--trace-sample <rate>', 'share of the guest\'s output segments traced with --trace-out (0 to 1)', num, 0.01)
    .option('--plot <file.svg>', 'also draw goodput over time, with the epochs\' commits, the crash, the promotion and the re-protection marked, as SVG')
    .action(async (flags: RunFlags, command: Command) => {
      if (flags.crashPrimaryAtMs !== undefined && flags.mode === 'native') throw new ConfigError('--crash-primary-at-ms: native mode has no backup to fail over to');
      const config = validateRunConfig({
        ...scenarioConfig(flags, { mode: flags.mode, epochMs: flags.epochMs, rttMs: flags.rttMs, seed: flags.seed }),
        faults: { crashPrimaryAtMs: flags.crashPrimaryAtMs ?? null },
      });
      if (flags.traceOut !== undefined && flags.runtime === 'nats') throw new ConfigError('--trace-out: the simulator\'s runs only; over NATS the services export to OTEL_EXPORTER_OTLP_ENDPOINT');
      if (flags.traceOut === undefined && command.getOptionValueSource('traceSample') === 'cli') throw new ConfigError('--trace-sample: samples for --trace-out, which is not given');
      if (flags.crashPrimaryAtMs !== undefined && flags.crashPrimaryAtMs >= config.durationS * 1000) throw new ConfigError(`--crash-primary-at-ms ${flags.crashPrimaryAtMs}: at or after the run's end (--duration-s ${config.durationS}), so nothing would crash`);
      // Output files are checked before the run: one that cannot be written would lose it.
      if (flags.traceOut !== undefined) checkOutputFile('--trace-out', flags.traceOut);
      if (flags.plot !== undefined) checkOutputFile('--plot', flags.plot);
      const traced = flags.traceOut === undefined ? config : validateRunConfig({ ...config, tracing: { segmentSampleRate: flags.traceSample, epochs: true } });
      if (flags.runtime === 'nats') {
        const { runOnNats } = await import('../launcher/nats-run.js');
        const timelines: RunTimeline[] = [];
        // A signal to this process alone (not to its group, as a terminal's Ctrl-C is) must still stop every service it started.
        const interrupt = new AbortController();
        const onSignal = (signal: NodeJS.Signals) => interrupt.abort(signal);
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        const results = await runOnNats(config, {
          signal: interrupt.signal,
          natsUrl: flags.natsUrl,
          vms: flags.vms,
          layout: flags.layout,
          // A flag given on the command line stands over the NATS timing; its default does not.
          explicitTiming: command.getOptionValueSource('quietUs') === 'cli' ? { epochPolicy: { quietUs: flags.quietUs } } : {},
          onTimeline: (_vm, t) => timelines.push(t),
          onViolation: (v) => process.stderr.write(`specula run: audit: ${v.invariant} (${v.rule}) on ${v.host ?? 'the bus'}: ${v.detail}\n`),
          ...(flags.verbose ? { onLog: (line: string) => process.stderr.write(line + '\n') } : {}),
        }).finally(() => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        });
        const out = results.length === 1 ? formatResult(results[0]!, flags.format) : results.map((r) => formatResult(r, flags.format)).join('\n');
        process.stdout.write(out + '\n');
        if (flags.plot !== undefined && timelines[0] !== undefined) await writePlot(flags.plot, timelines[0], results[0]!);
        process.exitCode = results.every((r) => r.streamVerified && (r.auditViolations ?? 0) === 0) ? EXIT_OK : EXIT_FAILED;
        return;
      }
      if (flags.vms !== 1) throw new ConfigError('--vms: the simulator runs one VM per run');
      if (flags.layout !== 'service') throw new ConfigError('--layout: how processes are laid out over NATS; the simulator runs one process');
      if (flags.verbose) throw new ConfigError('--verbose: the services\' logs over NATS; the simulator has no processes to show');
      const collector = flags.traceOut === undefined ? null : new SpanCollector(MAX_TRACE_SPANS);
      const { result, timeline } = simulateTimedWithTimeline(traced, collector === null ? {} : { onSpan: (span, from) => collector.add(span, serviceOfActor(from.actor), from.host) });
      process.stdout.write(formatResult({ ...result, config: traced }, flags.format) + '\n');
      if (collector !== null) writeTraces(flags.traceOut!, flags.traceFormat, collector);
      if (flags.plot !== undefined) await writePlot(flags.plot, timeline, result);
      process.exitCode = result.streamVerified ? EXIT_OK : EXIT_FAILED;
    });
  return cmd;
}
