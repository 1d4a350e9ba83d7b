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

/** A partial run replaces its own records in latest.json and keeps the others' (each record says when it was measured). */
function merged(fresh: BenchRecord[]): BenchRecord[] {
  const earlier: BenchRecord[] = existsSync(LATEST) ? ((JSON.parse(readFileSync(LATEST, 'utf8')) as { records?: BenchRecord[] }).records ?? []) : [];
  const byName = new Map(fresh.map((r) => [r.name, r]));
  const kept = earlier.map((r) => byName.get(r.name) ?? r);
  return [...kept, ...fresh.filter((r) => !earlier.some((e) => e.name === r.name))];
}
const records: BenchRecord[] = [];
for (const [name, bench] of Object.entries(benches)) {
  if (only.length > 0 && !only.includes(name)) continue;
  const record = { ...(await bench()), measuredAt: new Date().toISOString() };
  records.push(record);
  const t = record.target;
  const verdict = t ? `${t.met ? 'MET' : 'MISSED'} target ${t.metric} ${t.op} ${t.value}` : '';
  process.stdout.write(`${record.name}  ${JSON.stringify(record.metrics)}  ${verdict}\n`);
}
mkdirSync('bench/results', { recursive: true });
const machine = { node: process.version, cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length };
writeFileSync(LATEST, JSON.stringify({ machine, records: merged(records) }, null, 2) + '\n');
process.exitCode = records.every((r) => r.target?.met !== false) ? 0 : 1;
