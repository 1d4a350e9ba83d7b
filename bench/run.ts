import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { BenchRecord } from './measure.js';
import { baseCaptureCost } from './capture.bench.js';
import { machineCalibration } from './machine.bench.js';
import { defaultSweep } from './experiment.bench.js';
import { natsModes } from './nats-modes.bench.js';
import { natsNativeVersusRaw } from './nats.bench.js';
import { simulatorSpeed, speculativeSimulatorSpeed } from './simulator.bench.js';
import { tracingCost } from './tracing.bench.js';
import { natsTracingCost } from './nats-tracing.bench.js';

/**
 * `npm run bench`: runs every benchmark, prints one line each with its target,
 * and writes bench/results/latest.json. Exit code 1 if a target is missed.
 */
const benches: Record<string, () => BenchRecord | Promise<BenchRecord>> = { machine: machineCalibration, simulator: simulatorSpeed, 'simulator-spec': speculativeSimulatorSpeed, experiment: defaultSweep, nats: natsNativeVersusRaw, 'nats-modes': () => natsModes('service'), 'nats-modes-host': () => natsModes('host'), tracing: tracingCost, 'nats-tracing': natsTracingCost, 'base-capture': baseCaptureCost };
/** Internal: `run.js --one NAME` runs one benchmark and prints its record as the last line of stdout. */
const ONE = '--one';
/** `npm run bench -- simulator` runs only the benchmarks named. */
const only = process.argv.slice(2);
const LATEST = 'bench/results/latest.json';
const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length };

/** The records of the last runs, read before this one starts: an unreadable file costs a partial run its older records, not its own. */
function earlierRecords(): BenchRecord[] {
  if (!existsSync(LATEST)) return [];
  try {
    return (JSON.parse(readFileSync(LATEST, 'utf8')) as { records?: BenchRecord[] }).records ?? [];
  } catch (err) {
    process.stderr.write(`bench: ${LATEST} unreadable (${String(err)}); this run's records replace it\n`);
    return [];
  }
}

/**
 * A partial run replaces its own records and keeps the others, each with
 * when and on what it was measured; a full run reads none, so it replaces
 * latest.json.
 */
function merged(earlier: BenchRecord[], fresh: BenchRecord[]): BenchRecord[] {
  const byName = new Map(fresh.map((r) => [r.name, r]));
  const kept = earlier.map((r) => byName.get(r.name) ?? r);
  return [...kept, ...fresh.filter((r) => !earlier.some((e) => e.name === r.name))];
}

/**
 * Each benchmark in a process of its own, with this one's node flags: in one
 * process what a benchmark leaves behind (the JIT's feedback, the heap)
 * slows the next (the speculative run took 8.2–8.9 s after the native one,
 * 5.5–6.4 s alone).
 */
function runIsolated(name: string): BenchRecord {
  const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ONE, name], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const last = out.trimEnd().split('\n').at(-1) ?? '';
  return JSON.parse(last) as BenchRecord;
}

if (process.argv[2] === ONE) {
  const bench = benches[process.argv[3] ?? ''];
  if (bench === undefined) throw new Error(`bench: no benchmark named ${process.argv[3]}`);
  process.stdout.write(JSON.stringify(await bench()) + '\n');
  process.exit(0);
}
const unknown = only.filter((n) => !(n in benches));
if (unknown.length > 0) {
  process.stderr.write(`bench: no benchmark named ${unknown.join(', ')} (there are ${Object.keys(benches).join(', ')})\n`);
  process.exit(2);
}
const earlier = only.length === 0 ? [] : earlierRecords();
const records: BenchRecord[] = [];
for (const name of Object.keys(benches)) {
  if (only.length > 0 && !only.includes(name)) continue;
  const record = { ...runIsolated(name), measuredAt: new Date().toISOString(), machine };
  records.push(record);
  const t = record.target;
  const verdict = t ? `${t.met ? 'MET' : 'MISSED'} target ${t.metric} ${t.op} ${t.value}` : '';
  process.stdout.write(`${record.name}  ${JSON.stringify(record.metrics)}  ${verdict}\n`);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync(LATEST, JSON.stringify({ machine, records: merged(earlier, records) }, null, 2) + '\n');
process.exitCode = records.every((r) => r.target?.met !== false) ? 0 : 1;
