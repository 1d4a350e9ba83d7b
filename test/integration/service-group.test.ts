/**
 * Several services in one process (`specula service a b …`, the launcher's
 * `--layout host`): each serves as it would alone, with its own ready,
 * report and final lines, their reports carry one CPU reading of the one
 * process, and one that fails takes the others down with it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { decode } from '../../lib/codec/codec.js';
import type { ServiceReport } from '../../lib/codec/messages.js';
import { subjects } from '../../lib/codec/subjects.js';
import { runConfigSchema } from '../../lib/config/run-config.js';
import { ConfigError } from '../../lib/errors.js';
import { connectNats } from '../../lib/runtime/nats/connect.js';
import { createLogger } from '../../lib/runtime/nats/logger.js';
import { PROCESS_ID } from '../../lib/runtime/nats/process-stats.js';
import { runServiceGroup } from '../../lib/runtime/nats/service-group.js';
import { isFinalLine, isReadyLine, type ServiceDefinition } from '../../lib/runtime/nats/service-process.js';
import type { Core } from '../../lib/runtime/types.js';
import { freePort, withNats } from './support/nats.js';

const nats = await withNats();
afterAll(async () => {
  await nats?.stop();
});

const probe = (name: 'checkpointer' | 'netbuffer', fail = false): ServiceDefinition => ({
  name,
  placement: 'vm',
  clock: 'monotonic',
  leases: false,
  build: () => {
    if (fail) throw new Error(`${name} cannot start`);
    const core: Core = { name, subscriptions: [], handle: () => [] };
    return { core, report: () => ({ probe: name }) };
  },
});

const config = (vmId: string) => runConfigSchema.parse({ vmId, mode: 'spec' });
const quiet = createLogger({ role: 'test', host: null, vms: ['group'] }, 'silent');
const GROUP_TIMEOUT_MS = 20_000;

describe('a group of services refused before it connects', () => {
  const options = { natsUrl: 'nats://127.0.0.1:1', host: null, configs: [config('refused')], logger: quiet };

  it('names a service twice, the client with others, or none: a ConfigError each', async () => {
    await expect(runServiceGroup([probe('checkpointer'), probe('checkpointer')], options)).rejects.toThrow(ConfigError);
    await expect(runServiceGroup([probe('checkpointer'), { ...probe('netbuffer'), name: 'client' }], options)).rejects.toThrow(ConfigError);
    await expect(runServiceGroup([], options)).rejects.toThrow(ConfigError);
  });

  it('a host name that is no subject token (a space, a dot, a wildcard): a ConfigError, alone or grouped, before it connects', async () => {
    for (const host of ['a b', 'a.b', '*', '>', '']) {
      await expect(runServiceGroup([probe('checkpointer')], { ...options, host })).rejects.toThrow(ConfigError);
      const grouped = runServiceGroup([probe('checkpointer'), probe('netbuffer')], { ...options, host });
      await expect(grouped).rejects.toThrow(ConfigError);
      await expect(grouped).rejects.toThrow(/--host/);
    }
  });
});

describe.skipIf(nats === null)('services in one process over NATS', () => {
  const url = nats?.url ?? '';

  it('each says it is ready, reports under its own name with the one process\'s CPU reading, and writes its final line when stopped', { timeout: GROUP_TIMEOUT_MS }, async () => {
    const vmId = `group-${process.pid}`;
    const watcher = await connectNats({ servers: url });
    const reports: ServiceReport[] = [];
    watcher.subscribe(subjects(vmId).report, { callback: (err, m) => void (err === null && reports.push(decode('serviceReport', m.data) as ServiceReport)) });
    await watcher.flush();
    const lines: unknown[] = [];
    const stop = new AbortController();
    try {
      const running = runServiceGroup([probe('checkpointer'), probe('netbuffer')], { natsUrl: url, host: null, configs: [config(vmId)], logger: quiet, reportIntervalMs: 50, signal: stop.signal, write: (line) => lines.push(JSON.parse(line)) });
      await waitFor(() => lines.filter(isReadyLine).length === 2 && new Set(reports.map((r) => r.service)).size === 2, 'both services ready and reporting');
      expect(lines.filter(isReadyLine).map((l) => l.service).sort()).toEqual(['checkpointer', 'netbuffer']);
      for (const r of reports) {
        const reading = (JSON.parse(r.statsJson) as { process: { processId: string; services: string[]; cpuUs: number } }).process;
        expect(reading.processId).toBe(PROCESS_ID);
        expect(reading.services).toEqual(['checkpointer', 'netbuffer']);
        expect(reading.cpuUs).toBeGreaterThan(0);
      }
      stop.abort();
      const finals = await running;
      expect(finals.map((f) => f.service)).toEqual(['checkpointer', 'netbuffer']);
      expect(lines.filter(isFinalLine)).toHaveLength(2);
    } finally {
      stop.abort();
      await watcher.close();
    }
  });

  it('serves one health port for the process: ready once every service serves, and metrics labelled by service', { timeout: GROUP_TIMEOUT_MS }, async () => {
    const port = await freePort();
    const stop = new AbortController();
    const lines: unknown[] = [];
    const vmId = `group-health-${process.pid}`;
    const running = runServiceGroup([probe('checkpointer'), probe('netbuffer')], { natsUrl: url, host: null, configs: [config(vmId)], logger: quiet, healthPort: port, signal: stop.signal, write: (line) => lines.push(JSON.parse(line)) });
    try {
      await waitFor(() => lines.filter(isReadyLine).length === 2, 'both services ready');
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready', services: ['checkpointer', 'netbuffer'], vms: [vmId] });
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      for (const service of ['checkpointer', 'netbuffer']) expect(metrics).toMatch(new RegExp(`specula_bus_messages_out(_total)?\\{[^}]*service="${service}"[^}]*\\}`));
    } finally {
      stop.abort();
      await running;
    }
    // Closed with the process's services.
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('stops every service when one of them fails, and rejects with that failure', { timeout: GROUP_TIMEOUT_MS }, async () => {
    const lines: unknown[] = [];
    const group = runServiceGroup([probe('checkpointer'), probe('netbuffer', true)], { natsUrl: url, host: null, configs: [config(`group-fail-${process.pid}`)], logger: quiet, write: (line) => lines.push(JSON.parse(line)) });
    await expect(group).rejects.toThrow('netbuffer cannot start');
    // The checkpointer was stopped (not left serving): its final line says why.
    const finals = lines.filter(isFinalLine);
    expect(finals.map((f) => [f.service, f.reason])).toEqual([['checkpointer', 'abort']]);
  });
});

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
