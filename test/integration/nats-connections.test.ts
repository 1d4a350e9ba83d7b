/**
 * A service process has two connections (data, and the control plane's:
 * heartbeats, assignments, role changes); its core is told it is cut off
 * when either is lost, and connected again only when both are back. Two
 * nats-servers of the test's own, one per connection, so that one can die
 * alone, as two servers of a cluster can.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { connectNats, NatsShell } from '../../lib/runtime/nats/index.js';
import { pino } from 'pino';
import type { Core, Effect, Input } from '../../lib/runtime/types.js';
import type { Heartbeat, Segment } from '../../lib/codec/messages.js';
import { subjects } from '../../lib/codec/subjects.js';
import { skipWithoutNatsBinary, startNatsServer, type NatsServerProcess } from './support/nats.js';
import { runServiceProcess, type ServiceDefinition } from '../../lib/runtime/nats/service-process.js';
import { runConfigSchema } from '../../lib/config/run-config.js';
import { decode } from '../../lib/codec/codec.js';
import type { ServiceReport } from '../../lib/codec/messages.js';

const servers: NatsServerProcess[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

/** Bound on a client noticing a dead server, and on reconnecting to a restarted one (its reconnect wait is 50 ms here). */
const NOTICE_TIMEOUT_MS = 10_000;

describe.skipIf(skipWithoutNatsBinary('the two-connection status test'))('a shell with a control connection', () => {
  it('tells its core it is cut off when only the control connection is lost, drops (counted) what it sends there meanwhile, and is connected once it is back', { timeout: 40_000 }, async () => {
    const data = await startNatsServer();
    const control = await startNatsServer();
    servers.push(data, control);
    const connections: boolean[] = [];
    const s = subjects('conn');
    const heartbeat: Heartbeat = { type: 'heartbeat', vmId: 'conn', term: 1, host: 'h', role: 'primary', epoch: 0, synced: false, controlSeq: 0, incarnation: 1, chunksStaged: 0, followedAgentIncarnation: 0 };
    const segment: Segment = { type: 'segment', vmId: 'conn', term: 0, epoch: 0, connId: 1, seq: 0, ack: 0, window: 0, flags: 0, payload: Uint8Array.of(1), mss: 0, wscale: undefined, sackPermitted: false, sackBlocks: [], tsValUs: 0, tsEcrUs: 0, speculative: false };
    // Cut off, it sends on both connections: what goes to the lost one is dropped and counted, the rest leaves.
    const core: Core = {
      name: 'probe',
      subscriptions: [],
      handle: (input: Input): Effect[] => {
        if (input.kind !== 'connection') return [];
        connections.push(input.connected);
        return input.connected ? [] : [{ kind: 'send', subject: s.heartbeat('h'), msg: heartbeat }, { kind: 'send', subject: s.wireOut, msg: segment }];
      },
    };
    const reconnect = { maxReconnectAttempts: -1, reconnectTimeWaitMs: 50 };
    const controlNc = await connectNats({ servers: control.url, ...reconnect });
    const shell = new NatsShell(core, await connectNats({ servers: data.url, ...reconnect }), { logger: pino({ level: 'silent' }), controlConnection: controlNc });
    try {
      await shell.start();
      expect(shell.serving).toBe(true);
      await control.kill();
      await waitFor(() => connections.length === 1, 'the control connection to be lost');
      expect(connections).toEqual([false]);
      expect(shell.serving).toBe(false);
      await waitFor(() => shell.counters.publishesWhileDisconnected + shell.counters.messagesOut === 2, 'the sends made while cut off');
      expect([shell.counters.publishesWhileDisconnected, shell.counters.messagesOut]).toEqual([1, 1]);
      const again = await startNatsServer({ port: control.port, storeDir: control.storeDir });
      servers.push(again);
      await waitFor(() => connections.length === 2, 'the control connection to come back');
      expect(connections).toEqual([false, true]);
      expect(shell.serving).toBe(true);
      expect(shell.counters.disconnects).toBe(1);
      expect(shell.counters.reconnects).toBe(1);
    } finally {
      await shell.stop();
      await controlNc.close();
    }
  });
});

describe.skipIf(skipWithoutNatsBinary('the report-while-disconnected test'))('a service process\'s reports', () => {
  it('are not sent while the data connection is down, counted, and sent again once it is back', { timeout: 40_000 }, async () => {
    const server = await startNatsServer();
    servers.push(server);
    const vmId = 'reports';
    const idle: Core = { name: 'idle', subscriptions: [], handle: () => [] };
    const def: ServiceDefinition = { name: 'failover', placement: 'vm', clock: 'monotonic', leases: false, build: () => ({ core: idle, report: () => ({}) }) };
    const abort = new AbortController();
    const lines: string[] = [];
    const run = runServiceProcess(def, { natsUrl: server.url, host: null, configs: [runConfigSchema.parse({ vmId })], reportIntervalMs: 20, signal: abort.signal, write: (l) => lines.push(l), logger: pino({ level: 'silent' }) });
    run.catch(() => undefined); // awaited below
    type Counters = { reportsPublished: number; reportsWhileDisconnected: number };
    /** The counters of the newest report a watcher on `url` gets. */
    const watch = async (url: string) => {
      const nc = await connectNats({ servers: url, reconnect: false });
      let counters: Counters | null = null;
      nc.subscribe(subjects(vmId).report, {
        callback: (_err, msg) => {
          const report = decode('serviceReport', msg.data) as ServiceReport;
          counters = (JSON.parse(report.statsJson) as { reports: Counters }).reports;
        },
      });
      return { nc, counters: (): Counters | null => counters };
    };
    try {
      await waitFor(() => lines.length > 0, 'the process to be ready');
      const before = await watch(server.url);
      await waitFor(() => (before.counters()?.reportsPublished ?? 0) > 0, 'a report counting one published before it');
      const publishedBefore = before.counters()!.reportsPublished;
      await before.nc.close();
      await server.kill();
      // Down for a while: several report intervals pass before the server is back.
      await new Promise((r) => setTimeout(r, 500));
      const again = await startNatsServer({ port: server.port, storeDir: server.storeDir });
      servers.push(again);
      const after = await watch(again.url);
      try {
        await waitFor(() => (after.counters()?.reportsWhileDisconnected ?? 0) > 0, 'a report after the reconnect counting those held back');
        const { reportsPublished, reportsWhileDisconnected } = after.counters()!;
        expect(reportsWhileDisconnected).toBeGreaterThan(0);
        // Not both: a report held back is not also counted as published (25 intervals of 20 ms went by while down).
        expect(reportsPublished - publishedBefore).toBeLessThan(500 / 20);
      } finally {
        await after.nc.close();
      }
    } finally {
      abort.abort('test');
      await run;
    }
  });
});

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + NOTICE_TIMEOUT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
