import { availableParallelism } from 'node:os';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import { Piscina } from 'piscina';
import type { WireMessage } from '../../lib/codec/messages.js';
import { MAX_SEED } from '../../lib/config/run-config.js';
import { ConfigError } from '../../lib/errors.js';
import { faultSteps } from '../../sim/faults.js';
import { PLANTED_BUGS, type PlantedBug } from '../../lib/planted-bugs.js';
import { runVoprSeed, voprScenario, VOPR_EPOCH_POLICIES, type VoprEpochPolicy, type VoprOutcome } from '../../sim/vopr.js';
import { EXIT_FAILED, EXIT_OK } from '../exit-codes.js';
import { num } from '../run-options.js';

const BATCH_SEEDS = 10;
/** Message types a replay can log, in the order of the pipeline. */
const EVENT_TYPES = ['segment', 'epochBarrier', 'epochEnd', 'checkpointChunk', 'checkpointAck', 'epochCommit', 'outputIdle', 'heartbeat', 'roleChange'] as const satisfies readonly WireMessage['type'][];
type EventType = (typeof EVENT_TYPES)[number];
/** A replay's event log stops here (a fast link's segments alone can be millions); the rest is only counted. */
const MAX_LOGGED_EVENTS = 200_000;

interface VoprFlags {
  seeds: number;
  from: number;
  replay?: number;
  workers: number;
  format: 'json' | 'table';
  plantBug?: PlantedBug;
  events: EventType[];
  epochPolicy: VoprEpochPolicy;
}

/** The compiled worker next to this module (from source, the one in dist/). */
function workerUrl(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../../dist/cli/vopr/worker.js', here) : new URL('../vopr/worker.js', here);
}

export function voprCommand(): Command {
  return new Command('vopr')
    .description('run seeded fault-injection simulations: a safety phase with faults (crashes, isolation, lease-store outages), then a liveness phase without; print the failing seeds')
    .option('--seeds <n>', 'how many seeds to run', num, 100)
    .option('--from <seed>', 'first seed', num, 1)
    .option('--replay <seed>', 'run one seed and print its scenario, fault timeline, event log and outcome (bit-for-bit the same every time)', num)
    .addOption(new Option('--events <types>', `with --replay: the message types to log, comma-separated (${EVENT_TYPES.join(', ')}), or none`).argParser(parseEventTypes).default(['roleChange'] as EventType[], 'roleChange'))
    .addOption(new Option('--workers <n>', 'worker threads').argParser(num).default(availableParallelism(), `this machine's cores, ${availableParallelism()}`))
    .addOption(new Option('--epoch-policy <policy>', "each seed's own draw (half of them adaptive), or one policy for every seed (docs/adaptive-epochs.md)").choices(VOPR_EPOCH_POLICIES).default('drawn'))
    .addOption(new Option('--format <format>', 'output format of a run of seeds (a replay prints JSON)').choices(['json', 'table']).default('table'))
    .addOption(new Option('--plant-bug <bug>', 'plant a known bug to check the simulator finds it (for testing the tester)').choices(PLANTED_BUGS).hideHelp())
    .action(async (flags: VoprFlags, command: Command) => {
      // A flag of the other form would be ignored without a word: refused instead.
      const given = (flag: string) => command.getOptionValueSource(flag) === 'cli';
      if (flags.replay === undefined && given('events')) throw new ConfigError('--events: only with --replay (a run of seeds logs no events)');
      const ofRuns = (['seeds', 'from', 'workers', 'format'] as const).filter(given);
      if (flags.replay !== undefined && ofRuns.length > 0) throw new ConfigError(`--replay runs one seed and prints JSON: ${ofRuns.map((f) => `--${f}`).join(', ')} ${ofRuns.length === 1 ? 'is' : 'are'} for a run of seeds`);
      for (const [name, value] of [['--seeds', flags.seeds], ['--from', flags.from], ['--workers', flags.workers]] as const) {
        if (!Number.isSafeInteger(value) || value < (name === '--from' ? 0 : 1)) throw new ConfigError(`${name}: must be a whole number ≥ ${name === '--from' ? 0 : 1}`);
      }
      if (flags.from + flags.seeds - 1 > MAX_SEED) throw new ConfigError(`--from, --seeds: the last seed, ${flags.from + flags.seeds - 1}, is above ${MAX_SEED} (seeds are 32 bits)`);
      if (flags.replay !== undefined && (!Number.isSafeInteger(flags.replay) || flags.replay < 0 || flags.replay > MAX_SEED)) throw new ConfigError(`--replay: must be a whole number from 0 to ${MAX_SEED}`);
      if (flags.replay !== undefined) return replay(flags.replay, flags.events, flags.epochPolicy, flags.plantBug);
      const outcomes = await runSeeds(flags);
      const failures = outcomes.filter((o) => !o.ok).map((o) => ({ seed: o.seed, invariant: o.invariant, atMs: o.atMs, message: o.message, mode: o.mode, workload: o.workload, epochPolicy: o.epochPolicy }));
      const total = (pick: (o: (typeof outcomes)[number]) => number) => outcomes.reduce((a, o) => a + pick(o), 0);
      const summary = { seeds: outcomes.length, from: flags.from, epochPolicy: flags.epochPolicy, adaptiveSeeds: total((o) => (o.epochPolicy === 'adaptive' ? 1 : 0)), failovers: total((o) => o.failovers), reprotections: total((o) => o.reprotections), vmLost: total((o) => (o.vmLost ? 1 : 0)), failures };
      if (flags.format === 'json') process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
      else {
        process.stdout.write(`${summary.seeds} seeds from ${flags.from} (${summary.adaptiveSeeds} with adaptive epochs): ${failures.length} failing, ${summary.failovers} failovers and ${summary.reprotections} re-protections exercised, ${summary.vmLost} runs lost the VM to a double failure (safety checked, liveness not owed)\n`);
        for (const f of failures) process.stdout.write(`  seed ${f.seed}: ${f.invariant} at ${f.atMs} ms (${f.mode}, ${f.workload}, ${f.epochPolicy} epochs): ${f.message}\n    replay: specula vopr --replay ${f.seed}${replayPolicy(flags.epochPolicy)}\n`);
      }
      process.exitCode = failures.length === 0 ? EXIT_OK : EXIT_FAILED;
    });
}

async function runSeeds(flags: VoprFlags): Promise<VoprOutcome[]> {
  const seeds = Array.from({ length: flags.seeds }, (_, i) => flags.from + i);
  const batches: number[][] = [];
  for (let i = 0; i < seeds.length; i += BATCH_SEEDS) batches.push(seeds.slice(i, i + BATCH_SEEDS));
  const threads = Math.max(1, Math.min(flags.workers, batches.length));
  const pool = new Piscina({ filename: workerUrl().href, minThreads: threads, maxThreads: threads });
  const tty = process.stderr.isTTY === true;
  const bar = tty ? new cliProgress.SingleBar({ format: 'vopr [{bar}] {value}/{total} seeds | {failing} failing | eta {eta_formatted}', stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
  bar?.start(seeds.length, 0, { failing: 0 });
  let done = 0;
  let failing = 0;
  let lastLine = 0;
  try {
    const results = await Promise.all(
      batches.map(async (batch) => {
        const outcomes = (await pool.run({ seeds: batch, epochPolicy: flags.epochPolicy, ...(flags.plantBug ? { plantedBug: flags.plantBug } : {}) })) as VoprOutcome[];
        done += outcomes.length;
        const failed = outcomes.filter((o) => !o.ok);
        failing += failed.length;
        bar?.update(done, { failing });
        // A failing seed is named as soon as it is known: a long run need not finish to be replayed.
        if (!tty) for (const f of failed) process.stderr.write(`vopr: seed ${f.seed} failed: ${f.invariant} at ${f.atMs} ms (replay: specula vopr --replay ${f.seed}${replayPolicy(flags.epochPolicy)})\n`);
        if (!tty && (done - lastLine >= Math.max(100, seeds.length / 10) || done === seeds.length)) {
          lastLine = done;
          process.stderr.write(`vopr: ${done}/${seeds.length} seeds, ${failing} failing\n`);
        }
        return outcomes;
      }),
    );
    return results.flat();
  } finally {
    bar?.stop();
    await pool.destroy();
  }
}

function parseEventTypes(value: string): EventType[] {
  if (value === 'none') return [];
  const types = value.split(',').map((t) => t.trim());
  for (const t of types) if (!(EVENT_TYPES as readonly string[]).includes(t)) throw new ConfigError(`--events: unknown message type "${t}" (known: ${EVENT_TYPES.join(', ')}, or none)`);
  return types as EventType[];
}

/** Payloads print as their length: the log is for following messages, not for their bytes. */
const withoutPayloads = (_key: string, value: unknown): unknown => (value instanceof Uint8Array ? { bytes: value.length } : value);

/** The flag a replay needs to run a seed as this run did. */
const replayPolicy = (policy: VoprEpochPolicy): string => (policy === 'drawn' ? '' : ` --epoch-policy ${policy}`);

function replay(seed: number, eventTypes: readonly EventType[], epochPolicy: VoprEpochPolicy, plantedBug?: PlantedBug): void {
  const { config, faults } = voprScenario(seed, epochPolicy);
  const logged = new Set<string>(eventTypes);
  const events: unknown[] = [];
  let eventsOmitted = 0;
  const outcome = runVoprSeed(
    seed,
    plantedBug,
    (subject, msg, nowUs) => {
    if (!logged.has(msg.type)) return;
      if (events.length < MAX_LOGGED_EVENTS) events.push({ atMs: nowUs / 1000, subject, ...msg });
      else eventsOmitted++;
    },
    epochPolicy,
  );
  const timeline = faultSteps(faults).map((s) => ({ atMs: s.atUs / 1000, phase: s.phase, fault: s.fault }));
  const scenario = { mode: config.mode, workload: config.workload, epochMs: config.epochMs, epochPolicy: config.epochPolicy, link: config.link, durationS: config.durationS };
  process.stdout.write(JSON.stringify({ seed, scenario, timeline, events, ...(eventsOmitted > 0 ? { eventsOmitted } : {}), outcome }, withoutPayloads, 2) + '\n');
  process.exitCode = outcome.ok ? EXIT_OK : EXIT_FAILED;
}
