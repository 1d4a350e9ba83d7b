import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { runOnNats } from '../cli/launcher/nats-run.js';
import { startOwnNatsServer } from '../cli/launcher/nats-server.js';
import { runConfigSchema } from '../lib/config/run-config.js';
import { OtlpReceiver } from './support/otlp-receiver.js';
import { median, withTarget, type BenchRecord } from './measure.js';

/** Pairs of runs, untraced then traced: interleaved, so a drift of the machine's speed hits both alike. */
const PAIRS = 6;

const CLOCK_TICKS_PER_S = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** CPU seconds a process has used so far (user + system), from /proc; 0 once it is gone. */
function cpuSecondsOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command's closing parenthesis start at field 3; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return 0;
  }
}

/**
 * What tracing costs over NATS: spec mode, every service its own process,
 * 100 Mbit/s and 25 ms epochs for 5 s, without tracing and with every
 * process exporting 1% of packets and every epoch to an OTLP receiver of its
 * own, in interleaved pairs. Target: 1% sampling costs at most 10% of the
 * median goodput. Beside it, the service processes' CPU seconds over the
 * client's run: on 2 cores the fleet saturates both at any link rate, so
 * goodput, not CPU, shows a cost there, and two identical runs differ by up
 * to 2x (docs/tracing.md has the spread).
 */
export async function natsTracingCost(): Promise<BenchRecord> {
  const own = process.env.NATS_URL ? null : await startOwnNatsServer();
  const url = own?.url ?? process.env.NATS_URL!;
  const receiver = new OtlpReceiver();
  await receiver.start();
  const config = runConfigSchema.parse({ mode: 'spec', seed: 1, durationS: 5, epochMs: 25, link: { bandwidthBitsPerSec: 100e6, rttMs: 2 } });
  const saved = { ...process.env };
  const samples = { off: { mbps: [] as number[], cpuSPerGbit: [] as number[] }, on: { mbps: [] as number[], cpuSPerGbit: [] as number[] } };
  const run = async (traced: boolean) => {
    if (traced) Object.assign(process.env, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, SPECULA_TRACE_SAMPLE: '0.01' });
    let windowCpuS = 0;
    let windowS = 0;
    try {
      const [r] = await runOnNats(config, {
        natsUrl: url,
        onRunning: (fleet) => {
          // The service processes' CPU over most of the client's run, not their start-up (module loading, the OTel SDK's included).
          const pids = fleet.children.map((c) => c.child.pid);
          const cpu = () => pids.reduce<number>((n, pid) => n + cpuSecondsOf(pid), 0);
          const before = cpu();
          const t0 = performance.now();
          setTimeout(() => {
            windowCpuS = cpu() - before;
            windowS = (performance.now() - t0) / 1000;
          }, config.durationS * 900);
        },
      });
      if (r === undefined || !r.streamVerified) throw new Error('spec over NATS: stream not verified');
      const kind = traced ? samples.on : samples.off;
      kind.mbps.push(r.goodputBitsPerSec / 1e6);
      kind.cpuSPerGbit.push(windowCpuS / ((r.goodputBitsPerSec * windowS) / 1e9));
      process.stderr.write(`  nats-tracing: ${traced ? '1%' : 'off'} ${(r.goodputBitsPerSec / 1e6).toFixed(1)} Mbit/s, ${windowCpuS.toFixed(1)} CPU s in ${windowS.toFixed(1)} s\n`);
    } finally {
      for (const k of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'SPECULA_TRACE_SAMPLE']) {
        if (saved[k] === undefined) delete process.env[k];
        else process.env[k] = saved[k];
      }
    }
  };
  try {
    for (let i = 0; i < PAIRS; i++) {
      await run(false);
      await run(true);
    }
    const off = { mbps: median(samples.off.mbps), cpu: median(samples.off.cpuSPerGbit) };
    const on = { mbps: median(samples.on.mbps), cpu: median(samples.on.cpuSPerGbit) };
    return withTarget(
      {
        name: 'nats.tracing-cost-spec-100mbit',
        metrics: {
          offMbps: Number(off.mbps.toFixed(1)),
          onePercentMbps: Number(on.mbps.toFixed(1)),
          offCpuSecondsPerGbit: Number(off.cpu.toFixed(2)),
          onePercentCpuSecondsPerGbit: Number(on.cpu.toFixed(2)),
          spansReceived: receiver.spans.length,
          offMbpsMin: Number(Math.min(...samples.off.mbps).toFixed(1)),
          offMbpsMax: Number(Math.max(...samples.off.mbps).toFixed(1)),
          onePercentCpuPerGbitShare: Number((on.cpu / off.cpu - 1).toFixed(3)),
          onePercentCostShare: Number((1 - on.mbps / off.mbps).toFixed(3)),
        },
      },
      'onePercentCostShare',
      '<=',
      0.1,
    );
  } finally {
    await receiver.stop();
    await own?.stop();
  }
}
