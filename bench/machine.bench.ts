import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { median, type BenchRecord } from './measure.js';

const PAGE_BYTES = 4096;
/** Fresh memory touched per round: mapped anew each time, so every page is a first touch. */
const FAULT_BYTES = 64 * 1024 * 1024;
const FAULT_ROUNDS = 3;
/** One-byte round trips between two processes over loopback TCP, after a warm-up of a tenth of them. */
const ROUND_TRIPS = 2_000;
/** The peer process of the round trips: this file, started with this flag. */
const PEER_FLAG = '--loopback-echo-peer';

/** µs per first touch of a page of fresh memory: a page fault, the cost of every new buffer's first write. */
function pageFaultUs(): number {
  const perPage: number[] = [];
  for (let round = 0; round < FAULT_ROUNDS; round++) {
    const t0 = performance.now();
    const memory = new Uint8Array(FAULT_BYTES);
    for (let i = 0; i < FAULT_BYTES; i += PAGE_BYTES) memory[i] = 1;
    perPage.push(((performance.now() - t0) * 1000) / (FAULT_BYTES / PAGE_BYTES));
  }
  return median(perPage);
}

/** µs per round trip of one byte to another process and back over loopback TCP: two system calls each way and two wake-ups, a bus hop's floor. */
async function loopbackRoundTripUs(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const peer = fork(fileURLToPath(import.meta.url), [PEER_FLAG, String((server.address() as AddressInfo).port)], { stdio: 'ignore' });
  try {
    const [socket] = (await once(server, 'connection')) as [Socket];
    socket.setNoDelay(true);
    const warmUp = ROUND_TRIPS / 10;
    let t0 = 0;
    let done = 0;
    const finished = new Promise<number>((resolve) => {
      socket.on('data', () => {
        done++;
        if (done === warmUp) t0 = performance.now();
        if (done === warmUp + ROUND_TRIPS) resolve(((performance.now() - t0) * 1000) / ROUND_TRIPS);
        else socket.write('x');
      });
    });
    socket.write('x');
    const us = await finished;
    socket.destroy();
    return us;
  } finally {
    peer.kill();
    server.close();
  }
}

/**
 * What this machine charges for what the processes over NATS do most:
 * first touches of fresh memory and round trips between processes. No
 * target: a reference, so that figures of other benchmarks from machines of
 * the same kind can be set side by side (on one whose kernel took a third of
 * a busy service's CPU, in system calls and page faults, the replicated
 * modes over NATS ran at half their speed of the day before and the
 * simulator a tenth slower: docs/nats.md, Measured).
 */
export async function machineCalibration(): Promise<BenchRecord> {
  const faultUs = pageFaultUs();
  const roundTripUs = await loopbackRoundTripUs();
  return { name: 'machine.calibration', metrics: { pageFaultUs: Number(faultUs.toFixed(3)), loopbackRoundTripUs: Number(roundTripUs.toFixed(1)) } };
}

// The echo peer: connects, answers each byte with one.
if (process.argv[2] === PEER_FLAG) {
  const { connect } = await import('node:net');
  const socket = connect(Number(process.argv[3]), '127.0.0.1');
  socket.setNoDelay(true);
  socket.on('data', (d) => socket.write(d));
  socket.on('close', () => process.exit(0));
}
