import { runOnNats } from '../cli/launcher/nats-run.js';
import { startOwnNatsServer } from '../cli/launcher/nats-server.js';
import { runConfigSchema } from '../lib/config/run-config.js';
import { OtlpReceiver } from './support/otlp-receiver.js';
import { withTarget, type BenchRecord } from './measure.js';

/** Runs of each kind: the goodput of one NATS run on 2 cores varies by more than the target, so medians. */
const RUNS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * What tracing costs over NATS: spec mode, every service its own process,
 * 100 Mbit/s and 25 ms epochs for 5 s, without tracing and with every
 * process exporting 1% of packets and every epoch to an OTLP receiver of its
 * own. Target: 1% sampling costs at most 10% of the median goodput.
 */
export async function natsTracingCost(): Promise<BenchRecord> {
  const own = process.env.NATS_URL ? null : await startOwnNatsServer();
  const url = own?.url ?? process.env.NATS_URL!;
  const receiver = new OtlpReceiver();
  await receiver.start();
  const config = runConfigSchema.parse({ mode: 'spec', seed: 1, durationS: 5, epochMs: 25, link: { bandwidthBitsPerSec: 100e6, rttMs: 2 } });
  const saved = { ...process.env };
  const goodput = async (traced: boolean) => {
    const runs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      if (traced) Object.assign(process.env, { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, SPECULA_TRACE_SAMPLE: '0.01' });
      try {
        const [r] = await runOnNats(config, { natsUrl: url });
        if (r === undefined || !r.streamVerified) throw new Error('spec over NATS: stream not verified');
        runs.push(r.goodputBitsPerSec);
      } finally {
        for (const k of ['OTEL_EXPORTER_OTLP_ENDPOINT', 'SPECULA_TRACE_SAMPLE']) {
          if (saved[k] === undefined) delete process.env[k];
          else process.env[k] = saved[k];
        }
      }
    }
    return median(runs);
  };
  try {
    const off = await goodput(false);
    const on = await goodput(true);
    return withTarget(
      {
        name: 'nats.tracing-cost-spec-100mbit',
        metrics: { offMbps: Number((off / 1e6).toFixed(1)), onePercentMbps: Number((on / 1e6).toFixed(1)), spansReceived: receiver.spans.length, onePercentCostShare: Number((1 - on / off).toFixed(3)) },
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
