import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { encode } from '../lib/codec/codec.js';
import { TcpFlag, type Segment } from '../lib/codec/messages.js';
import { runConfigSchema } from '../lib/config/run-config.js';
import { connectNats } from '../lib/runtime/nats/connect.js';
import { startOwnNatsServer } from '../cli/launcher/nats-server.js';
import { runOnNats } from '../cli/launcher/nats-run.js';
import { withTarget, type BenchRecord } from './measure.js';

/** A data segment as the guest sends it in native mode (the payload is replaced by one MSS). */
const FULL_SEGMENT: Segment = { type: 'segment', vmId: 'vm1-0123abcd', term: 0, epoch: 0, connId: 1, seq: 4_000_000_000, ack: 1, window: 65_535, flags: TcpFlag.ACK, payload: new Uint8Array(0), mss: 0, wscale: undefined, sackPermitted: false, sackBlocks: [], tsValUs: 1_000_000_000, tsEcrUs: 1_000_000_000, speculative: false };
const PEER = fileURLToPath(new URL('./nats-raw-peer.js', import.meta.url));
/** The raw measurement moves this many bytes (at least 2000 messages). */
const RAW_BYTES = 256 * 1024 * 1024;
const RAW_MIN_MESSAGES = 2_000;

/**
 * Native mode over NATS at a 1 Gbit/s emulated link (guest and client as
 * processes) against raw core-NATS publish→subscribe between two processes,
 * on the same server in the same run, with the messages the guest sends:
 * segments (one MSS of payload as protobuf), and at the mean size of the
 * bus messages the run sent (the shells batch a turn's segments into one, as
 * GSO does). Target: goodput ≥ 50% of the narrower of raw NATS at segment
 * size and the emulated link: raw NATS between two processes on loopback
 * moves several Gbit/s, so the 1 Gbit/s link is what caps the goodput.
 * NATS_URL if set, else a nats-server of its own.
 */
export async function natsNativeVersusRaw(): Promise<BenchRecord> {
  const own = process.env.NATS_URL ? null : await startOwnNatsServer();
  const url = own?.url ?? process.env.NATS_URL!;
  try {
    const config = runConfigSchema.parse({ mode: 'native', durationS: 5, link: { bandwidthBitsPerSec: 1e9, rttMs: 1 } });
    const nc = await connectNats({ servers: url, name: 'specula-bench' });
    let wireMessages = 0;
    let wireBytes = 0;
    const sub = nc.subscribe('specula.*.wire.out', {
      callback: (_err, m) => {
        wireMessages++;
        wireBytes += m.data.length;
      },
    });
    await nc.flush();
    const [native] = await runOnNats(config, { natsUrl: url, audit: false });
    sub.unsubscribe();
    await nc.close();
    if (native === undefined || !native.streamVerified) throw new Error('native run over NATS did not deliver a verified stream');
    const batchBytes = Math.max(1, Math.round(wireBytes / Math.max(1, wireMessages)));
    const segmentBytes = encode({ ...FULL_SEGMENT, payload: new Uint8Array(config.tcp.mssBytes) }).length;
    const rawBitsPerSec = await rawThroughput(url, segmentBytes);
    const rawBatchBitsPerSec = await rawThroughput(url, batchBytes);
    const goodputToRaw = native.goodputBitsPerSec / rawBitsPerSec;
    const capacityBitsPerSec = Math.min(rawBitsPerSec, config.link.bandwidthBitsPerSec);
    return withTarget(
      {
        name: 'nats.native-1gbit-vs-raw',
        metrics: {
          goodputBitsPerSec: native.goodputBitsPerSec,
          rawBitsPerSec: Math.round(rawBitsPerSec),
          segmentBytes,
          rawBatchBitsPerSec: Math.round(rawBatchBitsPerSec),
          batchBytes,
          wireMessagesPerSec: Math.round(wireMessages / config.durationS),
          busBytesPerGoodputByte: native.busBytesPerGoodputByte ?? 0,
          goodputToRaw: Number(goodputToRaw.toFixed(3)),
          goodputToCapacity: Number((native.goodputBitsPerSec / capacityBitsPerSec).toFixed(3)),
        },
      },
      'goodputToCapacity',
      '>=',
      0.5,
    );
  } finally {
    await own?.stop();
  }
}

/** Publish→subscribe throughput between two fresh processes, messages of `bytes`, in bits/s of payload. */
async function rawThroughput(url: string, bytes: number): Promise<number> {
  const count = Math.max(RAW_MIN_MESSAGES, Math.ceil(RAW_BYTES / bytes));
  const subject = `specula-bench.raw.${process.pid}`;
  const sub = spawn(process.execPath, [PEER, 'sub', url, subject, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: sub.stdout })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.done === true || first.value !== 'ready') throw new Error('raw NATS subscriber did not start');
  const pub = spawn(process.execPath, [PEER, 'pub', url, subject, String(count), String(bytes)], { stdio: ['ignore', 'ignore', 'inherit'] });
  const result = await lines.next();
  await new Promise((resolve) => (pub.exitCode !== null ? resolve(undefined) : pub.once('exit', resolve)));
  if (result.done === true) throw new Error('raw NATS subscriber ended without a result');
  const { ms } = JSON.parse(result.value) as { ms: number };
  return (count * bytes * 8) / (ms / 1000);
}
