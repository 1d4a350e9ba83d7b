/**
 * The first NATS shell: guest and client cores as real processes over a real
 * nats-server, wall clock, protobuf on the wire, the link emulated in each
 * receiving process. Needs `npm run build` first (npm test does it).
 */
import { spawn, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { EXIT_UNAVAILABLE } from '../../cli/exit-codes.js';
import { InvariantError } from '../../lib/errors.js';
import { histogramPercentile } from '../../lib/results/histogram.js';
import { decodeBatch, encodeBatch } from '../../lib/codec/batch.js';
import { decode, encode } from '../../lib/codec/codec.js';
import type { Segment } from '../../lib/codec/messages.js';
import { subjects } from '../../lib/codec/subjects.js';
import { CHUNK_ENVELOPE_BYTES, runConfigSchema } from '../../lib/config/run-config.js';
import type { RunResult } from '../../lib/results/run-result.js';
import { connectNats, emulatedLink, NatsShell, type Logger } from '../../lib/runtime/nats/index.js';
import { HEADER_BATCH, HEADER_CLOCK_US, HEADER_HOST, SLOW_INPUT_US } from '../../lib/runtime/nats/shell.js';
import { wallClock } from '../../lib/runtime/nats/clock.js';
import type { Core, Effect, Input } from '../../lib/runtime/types.js';
import { buildClient } from '../../services/client/main.js';
import { buildGuest } from '../../services/guest/main.js';
import { freePort, skipWithoutNatsBinary, startNatsServer, withNats } from './support/nats.js';

const SEGMENT: Segment = { type: 'segment', vmId: 'x', term: 0, epoch: 0, connId: 1, seq: 0, ack: 0, window: 0, flags: 0, payload: Uint8Array.of(1), mss: 0, wscale: undefined, sackPermitted: false, sackBlocks: [], tsValUs: 0, tsEcrUs: 0, speculative: false };
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/cli/specula.js', import.meta.url));
/** Bound on one CLI run (the runs themselves take 1-3 s). */
const CLI_TIMEOUT_MS = 60_000;

const nats = await withNats();
afterAll(async () => {
  await nats?.stop();
});

interface CliOutcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runCli(args: readonly string[]): Promise<CliOutcome> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build before the integration tests (npm test does)`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NATS_URL: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function parseResult(out: CliOutcome): RunResult {
  expect(out.code, `specula exited ${out.code}; stderr:\n${out.stderr}`).toBe(0);
  return JSON.parse(out.stdout) as RunResult;
}

/** A logger whose lines the test can read. */
function memoryLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

describe.skipIf(nats === null)('native mode over NATS (guest and client as processes)', () => {
  const url = nats?.url ?? '';

  it('a SIGTERM to `specula run` alone (not to its group) stops every process it started, and it exits 128 + 15', async () => {
    const child = spawn(process.execPath, [CLI, 'run', '--runtime', 'nats', '--nats-url', url, '--mode', 'native', '--duration-s', '60'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const closed = new Promise<number | null>((resolve) => child.once('close', resolve));
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    const children = (): number[] => {
      const out = spawnSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' }).stdout;
      return out.split('\n').map((l) => Number(l.trim())).filter((pid) => pid > 0);
    };
    // The guest, then the client: both started (bounded wait).
    const deadline = performance.now() + 30_000;
    while (children().length < 2 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const started = children();
    expect(started.length, `services started by the run; stderr:\n${stderr}`).toBeGreaterThanOrEqual(2);
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), CLI_TIMEOUT_MS);
    const code = await closed;
    clearTimeout(killer);
    expect(code).toBe(128 + 15);
    expect(stderr).toContain('interrupted by SIGTERM');
    expect(started.filter(alive), 'services still running after the run exited').toEqual([]);
  });

  it('delivers a 2 MB bulk transfer over an emulated 100 Mbit/s, 2 ms link, byte for byte', async () => {
    const r = parseResult(await runCli(['run', '--runtime', 'nats', '--nats-url', url, '--mode', 'native', '--workload', 'bulk', '--bulk-bytes', '2000000', '--bandwidth-mbps', '100', '--rtt-ms', '2', '--duration-s', '20']));
    expect(r.runtime).toBe('nats');
    expect(r.streamVerified).toBe(true);
    expect(r.bytesDelivered).toBe(2_000_000);
    // The emulated link caps goodput (payload only, so below the line rate); how close NATS comes is a benchmark's (bench/).
    expect(r.goodputBitsPerSec).toBeLessThanOrEqual(100e6);
    expect(r.goodputBitsPerSec).toBeGreaterThan(0);
    // Ended on the FIN: the whole run, the start of its processes included, took less than the 20 s duration.
    expect(r.wallMs).toBeLessThan(20_000);
  });

  it('serves request/response with every latency at least one RTT', async () => {
    const r = parseResult(await runCli(['run', '--runtime', 'nats', '--nats-url', url, '--workload', 'rr', '--request-bytes', '64', '--response-bytes', '16384', '--bandwidth-mbps', '100', '--rtt-ms', '2', '--duration-s', '1.5']));
    expect(r.runtime).toBe('nats');
    expect(r.streamVerified).toBe(true);
    expect(r.requestsCompleted).toBeGreaterThanOrEqual(3);
    // One RTT plus the response's 1.3 ms on a 100 Mbit/s wire is the floor the link model sets.
    expect(r.latencyMsP50!).toBeGreaterThanOrEqual(2);
    expect(r.latencyMsP99!).toBeGreaterThanOrEqual(r.latencyMsP50!);
    expect(r.latencyMsP50!).toBeLessThan(100);
  });

  it('counts malformed payloads on the guest subject, logs them once, and the run completes', async () => {
    const config = runConfigSchema.parse({ vmId: `malformed-${process.pid}`, durationS: 10, link: { bandwidthBitsPerSec: 100e6, rttMs: 2 }, workload: { kind: 'bulk', totalBytes: 300_000 } });
    const s = subjects(config.vmId);
    const guestLog = memoryLogger();
    const guest = buildGuest(config);
    const client = buildClient(config);
    const injector = await connectNats({ servers: url, name: 'test-injector' });
    const garbage = [Uint8Array.of(0xff, 0xff, 0xff, 0xff), Uint8Array.of(0x0a, 0x7f, 0x01)];
    let injected = false;
    let finished!: () => void;
    const complete = new Promise<void>((resolve) => (finished = resolve));
    const guestShell = new NatsShell(guest, await connectNats({ servers: url }), { logger: guestLog.logger, inboundLinks: [{ subject: s.wireIn, hop: emulatedLink(config, 'up') }] });
    const clientShell = new NatsShell(client, await connectNats({ servers: url }), {
      logger: memoryLogger().logger,
      inboundLinks: [{ subject: s.wireOut, hop: emulatedLink(config, 'down') }],
      afterInput: () => {
        // Mid-transfer: the connection is up and data flows.
        if (!injected && client.stats.bytesDelivered > 0) {
          injected = true;
          for (const bytes of garbage) injector.publish(s.wireIn, bytes);
        }
        if (client.stats.peerClosedAtUs !== null) finished();
      },
    });
    try {
      await guestShell.start();
      await clientShell.start();
      await Promise.race([complete, new Promise((_, reject) => setTimeout(() => reject(new Error('transfer did not complete in 10 s')), 10_000))]);
      expect(injected).toBe(true);
      expect(guestShell.counters.decodeErrors).toBe(garbage.length);
      expect(guestShell.state).toBe('running');
      expect(guestLog.lines.filter((l) => l.event === 'shell.decode')).toHaveLength(1);
      expect(client.stats.bytesDelivered).toBe(300_000);
      expect(client.stats.streamVerified).toBe(true);
      expect(clientShell.counters.decodeErrors).toBe(0);
      expect(guestShell.counters.messagesIn).toBeGreaterThan(garbage.length);
      // Only decodable messages reach the link; the others never touch the core.
      const link = guestShell.linksCounters[s.wireIn]!;
      expect(link.accepted + link.hopDrops + link.overflowDrops).toBe(guestShell.counters.messagesIn - garbage.length);
    } finally {
      await clientShell.stop();
      await guestShell.stop();
      await injector.close();
    }
  });

  it('counts and drops a message on a subject with no message type', async () => {
    const subject = `specula.unknown-${process.pid}.nonsense`;
    const inputs: Input[] = [];
    const core: Core = { name: 'probe', subscriptions: [subject], handle: (input) => (inputs.push(input), []) };
    const log = memoryLogger();
    const shell = new NatsShell(core, await connectNats({ servers: url }), { logger: log.logger });
    const publisher = await connectNats({ servers: url });
    try {
      await shell.start();
      // Even a well-formed segment is dropped when its subject has no message type.
      publisher.publish(subject, encode(SEGMENT));
      publisher.publish(subject, Uint8Array.of(1, 2, 3));
      await publisher.flush();
      await waitFor(() => shell.counters.unknownSubjects === 2);
      expect(inputs.map((i) => i.kind)).toEqual(['start']);
      expect(log.lines.filter((l) => l.event === 'shell.unknownSubject')).toHaveLength(1);
      expect(shell.state).toBe('running');
    } finally {
      await shell.stop();
      await publisher.close();
    }
  });

  it('counts and drops a message whose headers do not decode, and goes on reading', async () => {
    const subject = subjects(`badheader-${process.pid}`).wireIn;
    const inputs: Input[] = [];
    const core: Core = { name: 'probe', subscriptions: [subject], handle: (input) => (inputs.push(input), []) };
    const log = memoryLogger();
    const shell = new NatsShell(core, await connectNats({ servers: url }), { logger: log.logger });
    const publisher = await connectNats({ servers: url });
    // nats.js refuses to send a header key with a space; the server passes one on, and the receiver's nats.js throws on reading it.
    const raw = connect(Number(new URL(url).port), new URL(url).hostname);
    raw.on('data', () => undefined);
    try {
      await shell.start();
      const hdr = 'NATS/1.0\r\nbad key: x\r\n\r\n';
      const payload = Buffer.from(encode(SEGMENT));
      raw.write('CONNECT {"verbose":false,"headers":true}\r\n');
      raw.write(Buffer.concat([Buffer.from(`HPUB ${subject} ${hdr.length} ${hdr.length + payload.length}\r\n${hdr}`), payload, Buffer.from('\r\nPING\r\n')]));
      await waitFor(() => shell.counters.decodeErrors === 1);
      publisher.publish(subject, encode(SEGMENT));
      await publisher.flush();
      await waitFor(() => inputs.length === 2);
      expect(inputs.map((i) => i.kind)).toEqual(['start', 'message']);
      expect(log.lines.filter((l) => l.event === 'shell.decode')).toHaveLength(1);
      expect(shell.state).toBe('running');
    } finally {
      raw.destroy();
      await shell.stop();
      await publisher.close();
    }
  });

  it('drops what an emulated link hands on after the core dropped its subject, as the simulator does', async () => {
    const config = runConfigSchema.parse({ vmId: `unsub-${process.pid}`, link: { bandwidthBitsPerSec: 100e6, rttMs: 400 } });
    const s = subjects(config.vmId);
    const commit = s.host('h').commit;
    const inputs: Input[] = [];
    // On a message on another subject the core stops listening to the linked one, as a guest leaving a role does.
    let subscriptions: readonly string[] = [s.wireIn, commit];
    const core: Core = {
      name: 'probe',
      get subscriptions() {
        return subscriptions;
      },
      handle(input) {
        inputs.push(input);
        if (input.kind === 'message' && input.subject === commit) subscriptions = [commit];
        return [];
      },
    };
    const shell = new NatsShell(core, await connectNats({ servers: url }), { logger: memoryLogger().logger, inboundLinks: [{ subject: s.wireIn, hop: emulatedLink(config, 'up') }] });
    const publisher = await connectNats({ servers: url });
    try {
      await shell.start();
      publisher.publish(s.wireIn, encode(SEGMENT)); // 200 ms on the link
      await publisher.flush();
      await waitFor(() => shell.counters.messagesIn === 1);
      publisher.publish(commit, encode({ type: 'epochCommit', vmId: config.vmId, term: 0, epoch: 1 }));
      await publisher.flush();
      await waitFor(() => shell.counters.linkDeliveriesUnsubscribed === 1);
      expect(inputs.map((i) => (i.kind === 'message' ? i.subject : i.kind))).toEqual(['start', commit]);
      expect(shell.state).toBe('running');
    } finally {
      await shell.stop();
      await publisher.close();
    }
  });

  it('fails, rather than go deaf, when what a message leads to throws after the core handled it', async () => {
    const subject = subjects(`deaf-${process.pid}`).wireIn;
    // A lease effect with no lease store is an invariant broken in the wiring: it throws while the effects are applied.
    const core: Core = { name: 'probe', subscriptions: [subject], handle: (input) => (input.kind === 'message' ? [{ kind: 'lease', requestId: 1, op: { type: 'read', vmId: 'x' } } satisfies Effect] : []) };
    const shell = new NatsShell(core, await connectNats({ servers: url }), { logger: memoryLogger().logger });
    const publisher = await connectNats({ servers: url });
    try {
      await shell.start();
      const failed = shell.done.then(
        () => null,
        (err: unknown) => err,
      );
      publisher.publish(subject, encode(SEGMENT));
      await publisher.flush();
      await waitFor(() => shell.state === 'failed');
      expect(await failed).toBeInstanceOf(InvariantError);
    } finally {
      await shell.stop();
      await publisher.close();
    }
  });

  it('logs and counts an input that kept the core busy past SLOW_INPUT_US, naming it', async () => {
    const subject = `specula.slow-${process.pid}.h.host-a.epoch`;
    // The shell's clock, moved on by the core while it handles the barrier: a slow input without a slow test.
    let clockUs = 0;
    const clock = { nowUs: () => clockUs, toUnixUs: (us: number) => us };
    const core: Core = {
      name: 'slow-probe',
      subscriptions: [subject],
      handle: (input) => {
        if (input.kind === 'message') clockUs += SLOW_INPUT_US + 1;
        return [];
      },
    };
    const log = memoryLogger();
    const shell = new NatsShell(core, await connectNats({ servers: url }), { logger: log.logger, clock });
    const publisher = await connectNats({ servers: url });
    try {
      await shell.start();
      publisher.publish(subject, encode({ type: 'epochBarrier', vmId: 'vm1', term: 1, epoch: 3, base: true, stagedSources: 0, joinSeq: 1, local: false }));
      await publisher.flush();
      await waitFor(() => shell.counters.inputsHandled === 2);
      expect(shell.counters.slowInputs).toBe(1);
      expect(shell.counters.handleUsMax).toBe(SLOW_INPUT_US + 1);
      const slow = log.lines.filter((l) => l.event === 'shell.slow_input');
      expect(slow).toHaveLength(1);
      expect(slow[0]!.input).toBe(`message epochBarrier on ${subject}`);
    } finally {
      await shell.stop();
      await publisher.close();
    }
  });

  it('sends what one task produced as one bus message per run of a subject, in order, stamped with the latest step', async () => {
    const s = subjects(`batching-${process.pid}`);
    const h = s.host('host-a');
    let step = 0;
    // Each input (three from one batched bus message: one task) sends to wire.out; the last also to tx, then wire.out again.
    const core: Core = {
      name: 'batcher',
      subscriptions: [s.wireIn],
      handle: (input): Effect[] => {
        if (input.kind !== 'message') return [];
        step++;
        const seg = (seq: number): Effect => ({ kind: 'send', subject: s.wireOut, msg: { ...SEGMENT, seq } });
        return step < 3 ? [seg(step)] : [seg(3), { kind: 'send', subject: h.tx, msg: { ...SEGMENT, seq: 100 } }, seg(4), seg(5)];
      },
    };
    const shell = new NatsShell(core, await connectNats({ servers: url }), { logger: memoryLogger().logger, stamp: { host: 'host-a', subjects: new Set([s.wireOut]) } });
    const observer = await connectNats({ servers: url });
    const seen: Array<{ subject: string; seqs: number[]; clockUs: number }> = [];
    for (const subject of [s.wireOut, h.tx]) {
      observer.subscribe(subject, {
        callback: (_err, m) => {
          const parts = m.headers?.get(HEADER_BATCH) ? decodeBatch(m.data) : [m.data];
          seen.push({ subject, seqs: parts.map((p) => (decode('segment', p) as Segment).seq), clockUs: Number(m.headers?.get(HEADER_CLOCK_US) ?? NaN) });
        },
      });
    }
    await observer.flush();
    try {
      await shell.start();
      const batch = natsHeaders();
      batch.set(HEADER_BATCH, '3');
      observer.publish(s.wireIn, encodeBatch([1, 2, 3].map((seq) => encode({ ...SEGMENT, seq }))), { headers: batch });
      await waitFor(() => seen.length === 3);
      expect(seen.map((m) => [m.subject, m.seqs])).toEqual([
        [s.wireOut, [1, 2, 3]],
        [h.tx, [100]],
        [s.wireOut, [4, 5]],
      ]);
      expect(shell.counters.messagesOut).toBe(6);
      expect(shell.counters.batchesOut).toBe(2);
      expect(seen[0]!.clockUs).toBeGreaterThan(0);
      expect(Number.isNaN(seen[1]!.clockUs)).toBe(true); // tx is not a stamped subject
    } finally {
      await shell.stop();
      await observer.close();
    }
  });

  it('measures the bus\'s delay of each stamped message it receives, from the sender\'s clock, and of no other', async () => {
    const s = subjects(`hops-${process.pid}`);
    const core: Core = { name: 'receiver', subscriptions: [s.wireOut], handle: () => [] };
    const shell = new NatsShell(core, await connectNats({ servers: url }), { logger: memoryLogger().logger });
    const publisher = await connectNats({ servers: url });
    const sentDelayMs = 30;
    try {
      await shell.start();
      // Stamped as a host service stamps, 30 ms in the past: the hop reads at least that.
      const stamped = natsHeaders();
      stamped.set(HEADER_CLOCK_US, String(wallClock().nowUs() - sentDelayMs * 1000));
      publisher.publish(s.wireOut, encode(SEGMENT), { headers: stamped });
      publisher.publish(s.wireOut, encode(SEGMENT));
      await publisher.flush();
      await waitFor(() => shell.counters.messagesIn === 2);
      const hops = Object.values(shell.busHopUs).reduce((n, c) => n + c, 0);
      expect(hops).toBe(1);
      const p50Us = histogramPercentile(shell.busHopUs, 50)!;
      expect(p50Us).toBeGreaterThanOrEqual(sentDelayMs * 1000);
      expect(p50Us).toBeLessThan((sentDelayMs + 5_000) * 1000);
    } finally {
      await shell.stop();
      await publisher.close();
    }
  });

  it("starts a stamped message's emulated link at its send, so the bus's delay is part of the link's; an unstamped one at its receipt", async () => {
    const s = subjects(`entry-${process.pid}`);
    const linkDelayUs = 40_000;
    const deliveredAtMs = new Map<number, number>();
    const core: Core = {
      name: 'receiver',
      subscriptions: [s.wireIn],
      handle: (input) => {
        if (input.kind === 'message') deliveredAtMs.set((input.msg as Segment).seq, performance.now());
        return [];
      },
    };
    const shell = new NatsShell(core, await connectNats({ servers: url }), { logger: memoryLogger().logger, clock: wallClock(), inboundLinks: [{ subject: s.wireIn, hop: { transit: (_msg, atUs) => atUs + linkDelayUs } }] });
    const publisher = await connectNats({ servers: url });
    try {
      await shell.start();
      const stamped = natsHeaders();
      stamped.set(HEADER_CLOCK_US, String(wallClock().nowUs() - 30_000)); // sent 30 ms ago
      const publishedAtMs = performance.now();
      publisher.publish(s.wireIn, encode({ ...SEGMENT, seq: 1 }), { headers: stamped });
      publisher.publish(s.wireIn, encode({ ...SEGMENT, seq: 2 }));
      await publisher.flush();
      await waitFor(() => deliveredAtMs.size === 2);
      // 40 ms of link from 30 ms ago: due 10 ms after the publish; the unstamped one 40 ms after its receipt (FIFO keeps it second).
      expect(deliveredAtMs.get(1)! - publishedAtMs).toBeLessThan(30);
      expect(deliveredAtMs.get(2)! - publishedAtMs).toBeGreaterThanOrEqual(39);
    } finally {
      await shell.stop();
      await publisher.close();
    }
  });

  it('stamps the client\'s wire without a host, with its clock as Unix µs whatever clock its core runs on', async () => {
    const s = subjects(`client-stamp-${process.pid}`);
    const core: Core = { name: 'client', subscriptions: [], handle: (input) => (input.kind === 'start' ? [{ kind: 'send', subject: s.wireIn, msg: SEGMENT }] : []) };
    const observer = await connectNats({ servers: url });
    let headers: { host: string | undefined; clockUs: number } | null = null;
    observer.subscribe(s.wireIn, { callback: (_err, m) => void (headers = { host: m.headers?.get(HEADER_HOST) || undefined, clockUs: Number(m.headers?.get(HEADER_CLOCK_US) ?? NaN) }) });
    await observer.flush();
    const shell = new NatsShell(core, await connectNats({ servers: url }), { logger: memoryLogger().logger, stamp: { host: null, subjects: new Set([s.wireIn]) } });
    try {
      const beforeUs = wallClock().nowUs();
      await shell.start();
      await waitFor(() => headers !== null);
      const got = headers as unknown as { host: string | undefined; clockUs: number };
      expect(got.host).toBeUndefined();
      // The core's monotonic clock reads near 0; the stamp is on the Unix time line.
      expect(got.clockUs).toBeGreaterThanOrEqual(beforeUs - 1_000);
      expect(got.clockUs).toBeLessThan(beforeUs + 5_000_000);
    } finally {
      await shell.stop();
      await observer.close();
    }
  });

  it('timers: a name holds one deadline (set replaces it, cancel clears it), never fired early', async () => {
    const fired: Array<{ name: string; atUs: number }> = [];
    const core: Core = {
      name: 'timers',
      subscriptions: [],
      handle: (input, nowUs): Effect[] => {
        if (input.kind === 'timer') {
          fired.push({ name: input.name, atUs: nowUs });
          return [];
        }
        return [
          { kind: 'setTimer', name: 'late-then-early', atUs: nowUs + 80_000 },
          { kind: 'setTimer', name: 'late-then-early', atUs: nowUs + 20_000 },
          { kind: 'setTimer', name: 'early-then-late', atUs: nowUs + 10_000 },
          { kind: 'setTimer', name: 'early-then-late', atUs: nowUs + 40_000 },
          { kind: 'setTimer', name: 'cancelled', atUs: nowUs + 5_000 },
          { kind: 'cancelTimer', name: 'cancelled' },
        ];
      },
    };
    const shell = new NatsShell(core, await connectNats({ servers: url }), { logger: memoryLogger().logger });
    try {
      await shell.start();
      await waitFor(() => fired.length >= 2);
      // Past the replaced 80 ms deadline, so that a timer that kept it would have fired a second time by now.
      await new Promise((r) => setTimeout(r, 100));
      expect(fired.map((f) => f.name)).toEqual(['late-then-early', 'early-then-late']);
      expect(fired[0]!.atUs).toBeGreaterThanOrEqual(20_000);
      expect(fired[1]!.atUs).toBeGreaterThanOrEqual(40_000);
      expect(shell.counters.timersFired).toBe(2);
    } finally {
      await shell.stop();
    }
  });

  it('timers: a deadline beyond setTimeout\'s range (30 days) waits, instead of firing after 1 ms and spinning', async () => {
    const fired: string[] = [];
    const core: Core = {
      name: 'far-timer',
      subscriptions: [],
      handle: (input, nowUs): Effect[] => {
        if (input.kind === 'timer') fired.push(input.name);
        return input.kind === 'start' ? [{ kind: 'setTimer', name: 'far', atUs: nowUs + 30 * 24 * 3_600 * 1_000_000 }] : [];
      },
    };
    const overflows: Error[] = [];
    const onWarning = (w: Error) => void (w.name === 'TimeoutOverflowWarning' && overflows.push(w));
    process.on('warning', onWarning);
    const shell = new NatsShell(core, await connectNats({ servers: url }), { logger: memoryLogger().logger });
    try {
      await shell.start();
      await new Promise((r) => setTimeout(r, 100));
      expect(fired).toEqual([]);
      expect(shell.counters.timersFired).toBe(0);
      expect(overflows).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      await shell.stop();
    }
  });
});

describe('an unreachable NATS server', () => {
  it('fails `specula run --runtime nats` with a clear error and the exit code of an unavailable bus', async () => {
    const port = await freePort();
    const out = await runCli(['run', '--runtime', 'nats', '--nats-url', `nats://127.0.0.1:${port}`, '--workload', 'bulk', '--bulk-bytes', '1000', '--duration-s', '2']);
    expect(out.code).toBe(EXIT_UNAVAILABLE);
    expect(out.stdout).toBe('');
    expect(out.stderr).toContain(`cannot connect to NATS at nats://127.0.0.1:${port}`);
  });

  it('fails `specula service client` with the same message and no stack trace', async () => {
    const port = await freePort();
    const out = await runCli(['service', 'client', '--nats-url', `nats://127.0.0.1:${port}`, '--config-json', '{"durationS":1}']);
    expect(out.code).toBe(EXIT_UNAVAILABLE);
    expect(out.stderr.trim()).toMatch(new RegExp(`^specula service client: cannot connect to NATS at nats://127\\.0\\.0\\.1:${port} \\(connection refused\\)`));
    expect(out.stderr).not.toContain('    at ');
  });
});

describe.skipIf(skipWithoutNatsBinary('the max_payload check'))('a server whose max_payload is below a checkpoint chunk', () => {
  it('fails `specula service checkpointer` at start with what to change and the exit code of an unavailable bus', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'specula-payload-'));
    const configFile = join(dir, 'nats.conf');
    writeFileSync(configFile, 'max_payload: 65536\n');
    const server = await startNatsServer({ configFile });
    try {
      const out = await runCli(['service', 'checkpointer', '--host', 'host-a', '--nats-url', server.url, '--config-json', '{"vmId":"payload","mode":"spec"}']);
      expect(out.code).toBe(EXIT_UNAVAILABLE);
      const chunkBytes = runConfigSchema.parse({}).checkpoint.chunkBytes;
      expect(out.stderr).toContain(`takes messages of up to 65536 B (max_payload), and a checkpoint chunk needs ${chunkBytes + CHUNK_ENVELOPE_BYTES} B (checkpoint.chunkBytes ${chunkBytes}`);
      expect(out.stderr).not.toContain('    at ');
      // With chunks that fit, the same service starts (and is stopped at once).
      const fits = await runCli(['service', 'checkpointer', '--host', 'host-a', '--nats-url', server.url, '--exit-after-s', '0.5', '--config-json', '{"vmId":"payload","mode":"spec","checkpoint":{"chunkBytes":32768}}']);
      expect(fits.code, fits.stderr).toBe(0);
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(skipWithoutNatsBinary('the JetStream check'))('a server without JetStream', () => {
  it('fails `specula up`, `specula lease forget` and `specula run --runtime nats` with one clear line and the exit code of an unavailable bus', async () => {
    const server = await startNatsServer({ jetStream: false });
    try {
      const noJetStream = `the NATS server at ${server.url} does not run JetStream (start nats-server with -js)`;
      const t0 = performance.now();
      // up: its connection (and the rest) closed at the refusal; before, it stayed open and the process never ended.
      const up = await runCli(['up', '--nats-url', server.url, '--exit-after-s', '600']);
      expect(up.code, up.stderr).toBe(EXIT_UNAVAILABLE);
      expect(up.stderr).toContain(noJetStream);
      expect(performance.now() - t0).toBeLessThan(CLI_TIMEOUT_MS);
      const forget = await runCli(['lease', 'forget', 'vm1', '--nats-url', server.url]);
      expect(forget.code, forget.stderr).toBe(EXIT_UNAVAILABLE);
      expect(forget.stderr).toContain(noJetStream);
      // run: the host agent that cannot open the lease bucket exits 69, and the run ends with its code, not 1.
      const run = await runCli(['run', '--runtime', 'nats', '--mode', 'spec', '--duration-s', '1', '--nats-url', server.url]);
      expect(run.code, run.stderr).toBe(EXIT_UNAVAILABLE);
      expect(run.stderr).toContain(noJetStream);
      for (const out of [up, forget, run]) expect(out.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await server.stop();
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
