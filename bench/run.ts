import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import type { BenchRecord } from './measure.js';
import { baseCaptureCost } from './capture.bench.js';
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
const benches: Record<string, () => BenchRecord | Promise<BenchRecord>> = { simulator: simulatorSpeed, 'simulator-spec': speculativeSimulatorSpeed, experiment: defaultSweep, nats: natsNativeVersusRaw, 'nats-modes': natsModes, tracing: tracingCost, 'nats-tracing': natsTracingCost, 'base-capture': baseCaptureCost };
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

const earlier = only.length === 0 ? [] : earlierRecords();
const records: BenchRecord[] = [];
for (const [name, bench] of Object.entries(benches)) {
  if (only.length > 0 && !only.includes(name)) continue;
  const record = { ...(await bench()), measuredAt: new Date().toISOString(), machine };
  records.push(record);
  const t = record.target;
  const verdict = t ? `${t.met ? 'MET' : 'MISSED'} target ${t.metric} ${t.op} ${t.value}` : '';
  process.stdout.write(`${record.name}  ${JSON.stringify(record.metrics)}  ${verdict}\n`);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync(LATEST, JSON.stringify({ machine, records: merged(earlier, records) }, null, 2) + '\n');
process.exitCode = records.every((r) => r.target?.met !== false) ? 0 : 1;
