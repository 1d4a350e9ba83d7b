/**
 * One side of the raw NATS throughput measurement, as its own process:
 *   node nats-raw-peer.js sub <url> <subject> <messages>
 *   node nats-raw-peer.js pub <url> <subject> <messages> <bytes>
 * The subscriber prints `ready` once subscribed, then `{ "ms": … }` (first to
 * last message) once it has every message. The publisher sends as fast as
 * the connection takes it, flushing every FLUSH_EVERY_BYTES so its buffer
 * stays bounded.
 */
import { connect } from '@nats-io/transport-node';

const FLUSH_EVERY_BYTES = 4 * 1024 * 1024;
/** A peer that does not finish in this long is stuck (a lost message): it exits non-zero. */
const GIVE_UP_MS = 60_000;

const [role, url, subject, countArg, bytesArg] = process.argv.slice(2);
const count = Number(countArg);
if ((role !== 'sub' && role !== 'pub') || url === undefined || subject === undefined || !Number.isSafeInteger(count) || count <= 0) {
  process.stderr.write('usage: nats-raw-peer sub|pub <url> <subject> <messages> [bytes]\n');
  process.exit(2);
}
const giveUp = setTimeout(() => {
  process.stderr.write(`nats-raw-peer ${role}: not done in ${GIVE_UP_MS} ms\n`);
  process.exit(1);
}, GIVE_UP_MS);
const nc = await connect({ servers: url, name: `specula-bench-${role}` });

if (role === 'sub') {
  let received = 0;
  let firstMs = 0;
  const done = new Promise<number>((resolve) => {
    nc.subscribe(subject, {
      callback: () => {
        if (received === 0) firstMs = performance.now();
        if (++received === count) resolve(performance.now() - firstMs);
      },
    });
  });
  await nc.flush();
  process.stdout.write('ready\n');
  const ms = await done;
  process.stdout.write(JSON.stringify({ ms }) + '\n');
} else {
  const payload = new Uint8Array(Number(bytesArg ?? 1024)).fill(7);
  let sinceFlush = 0;
  for (let i = 0; i < count; i++) {
    nc.publish(subject, payload);
    sinceFlush += payload.length;
    if (sinceFlush >= FLUSH_EVERY_BYTES) {
      sinceFlush = 0;
      await nc.flush();
    }
  }
  await nc.flush();
}
clearTimeout(giveUp);
await nc.close();
