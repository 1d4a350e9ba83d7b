import { readFileSync } from 'node:fs';
import { Argument, Command, Option } from 'commander';
import { ConfigError } from '../../lib/errors.js';
import type { CollectedSpan } from '../../lib/tracing/collector.js';
import { groupBy } from '../../lib/tracing/group.js';
import { readTraceFile } from '../../lib/tracing/read.js';
import { wholeNum } from '../run-options.js';
import { waterfall } from '../trace/waterfall.js';

interface TraceFlags {
  seq?: number;
  epoch?: number;
}

/** The traces of a file, each as its spans, by trace id. */
function byTrace(spans: readonly CollectedSpan[]): Map<string, CollectedSpan[]> {
  return groupBy(spans, (s) => s.traceId);
}

const attr = (spans: readonly CollectedSpan[], key: string) => spans.find((s) => s.attributes[key] !== undefined)?.attributes[key];

/** The sampled packet whose guest segment carries `seq`, else the first one at or after it. */
function segmentTrace(traces: Map<string, CollectedSpan[]>, seq: number): { spans: CollectedSpan[]; exact: boolean } | null {
  const segments = [...traces.values()].filter((t) => attr(t, 'specula.trace') === 'segment');
  const range = (t: CollectedSpan[]) => {
    const emit = t.find((s) => s.name === 'emit');
    const offset = Number(attr(t, 'specula.offset'));
    return emit === undefined ? { start: offset + 1, end: offset + 2 } : { start: Number(emit.attributes.seq), end: Number(emit.attributes.seq) + Number(emit.attributes.bytes) };
  };
  const exact = segments.find((t) => range(t).start <= seq && seq < range(t).end);
  if (exact !== undefined) return { spans: exact, exact: true };
  const after = segments.map((t) => ({ t, start: range(t).start })).filter((x) => x.start >= seq).sort((a, b) => a.start - b.start)[0];
  return after === undefined ? null : { spans: after.t, exact: false };
}

/** `specula trace FILE`: one packet's or one epoch's path as a waterfall, or what the file holds. */
export function traceCommand(): Command {
  return new Command('trace')
    .description('print one sampled packet\'s path (--seq) or one epoch (--epoch) from a trace file (specula run --trace-out) as a waterfall; without either, what the file holds')
    .addArgument(new Argument('<file>', 'Jaeger JSON or OTLP/JSON'))
    .addOption(new Option('--seq <n>', 'the sampled packet whose segment carries this TCP sequence number (or the next sampled one)').argParser(wholeNum).conflicts('epoch'))
    .addOption(new Option('--epoch <n>', 'the epoch\'s trace: pause, copy, transfer, apply, commit').argParser(wholeNum))
    .action((file: string, flags: TraceFlags) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (cause) {
        throw new ConfigError(`${file}: ${cause instanceof Error ? cause.message : String(cause)}`);
      }
      const traces = byTrace(readTraceFile(text, file));
      if (flags.epoch !== undefined) {
        const t = [...traces.values()].find((spans) => attr(spans, 'specula.trace') === 'epoch' && attr(spans, 'specula.epoch') === flags.epoch);
        if (t === undefined) throw new ConfigError(`--epoch ${flags.epoch}: no such epoch in ${file} (was the run traced with epochs?)`);
        process.stdout.write(`epoch ${flags.epoch} (trace ${t[0]!.traceId})\n${waterfall(t)}\n`);
        return;
      }
      if (flags.seq !== undefined) {
        const found = segmentTrace(traces, flags.seq);
        if (found === null) throw new ConfigError(`--seq ${flags.seq}: no sampled packet at or after it in ${file}`);
        const seq = found.spans.find((s) => s.name === 'emit')?.attributes.seq ?? Number(attr(found.spans, 'specula.offset')) + 1;
        const note = found.exact ? '' : ` (no sampled packet carries seq ${flags.seq}; the next one)`;
        process.stdout.write(`packet at seq ${String(seq)}${note} (trace ${found.spans[0]!.traceId})\n${waterfall(found.spans)}\n`);
        return;
      }
      const all = [...traces.values()];
      const epochs = all.filter((t) => attr(t, 'specula.trace') === 'epoch').map((t) => Number(attr(t, 'specula.epoch'))).sort((a, b) => a - b);
      const seqs = all.filter((t) => attr(t, 'specula.trace') === 'segment').map((t) => Number(t.find((s) => s.name === 'emit')?.attributes.seq ?? Number(attr(t, 'specula.offset')) + 1)).sort((a, b) => a - b);
      const sample = (xs: number[]) => (xs.length <= 6 ? xs.join(', ') : `${xs.slice(0, 3).join(', ')} … ${xs.slice(-2).join(', ')}`);
      process.stdout.write(`${file}: ${all.length} traces, ${all.reduce((n, t) => n + t.length, 0)} spans\n  epochs: ${epochs.length}${epochs.length > 0 ? ` (${sample(epochs)})` : ''}\n  sampled packets: ${seqs.length}${seqs.length > 0 ? ` (seq ${sample(seqs)})` : ''}\nshow one with --epoch N or --seq N\n`);
    });
}
