import Table from 'cli-table3';
import type { RunResult } from '../lib/results/run-result.js';

export type OutputFormat = 'json' | 'table';

/** No colour codes: tables are read in logs and CI output as often as on terminals. */
const PLAIN = { head: [] as string[], border: [] as string[] };
const mbps = (bitsPerSec: number) => (bitsPerSec / 1e6).toFixed(1);
const ms = (v: number | null) => (v === null ? '-' : v.toFixed(2));

/** One result as a two-column table. */
export function formatResultTable(result: RunResult): string {
  const table = new Table({ head: ['field', 'value'], style: PLAIN });
  for (const [key, value] of Object.entries(result)) {
    if (key === 'config') continue; // the whole configuration is the JSON's
    table.push([key, value === null ? '-' : typeof value === 'object' ? JSON.stringify(value) : String(value)]);
  }
  return table.toString();
}

/** Many results as one row each. */
export function formatResultsTable(results: readonly RunResult[]): string {
  const table = new Table({
    style: PLAIN,
    head: ['mode', 'workload', 'epoch ms', 'rtt ms', 'link Mbit/s', 'loss', 'goodput Mbit/s', 'bulk Mbit/s', 'verified', 'retx', 'req', 'lat p50 ms', 'lat p99 ms'],
  });
  for (const r of results) {
    table.push([r.mode, r.workload, r.epochMs ?? '-', r.rttMs, mbps(r.bandwidthBitsPerSec), r.lossRate, mbps(r.goodputBitsPerSec), r.bulkGoodputBitsPerSec === null ? '-' : mbps(r.bulkGoodputBitsPerSec), r.streamVerified ? 'yes' : 'NO', r.retransmits, r.requestsCompleted, ms(r.latencyMsP50), ms(r.latencyMsP99)]);
  }
  return table.toString();
}

export function formatResult(result: RunResult, format: OutputFormat): string {
  return format === 'json' ? JSON.stringify(result, null, 2) : formatResultTable(result);
}
