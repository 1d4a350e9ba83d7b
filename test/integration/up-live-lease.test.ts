/**
 * `specula up` on a real nats-server refuses to create a VM that is running
 * already: a live holder renews its lease in the bucket (another `up`, a
 * deployment), and forgetting that lease would run a second copy of the VM
 * beside it. It starts no process, and says whose lease it is.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_VM_RUNNING } from '../../cli/exit-codes.js';
import { forgetLease, KvLeaseStore, LEASE_BUCKET } from '../../lib/lease/kv-store.js';
import { liveLease } from '../../lib/lease/live-lease.js';
import { withNats } from './support/nats.js';

const nats = await withNats();
const CLI = fileURLToPath(new URL('../../dist/cli/specula.js', import.meta.url));
/** A VM of this run alone: the server may be shared (NATS_URL). */
const VM = `live-${process.pid}`;
const LEASE_MS = 500;
const RENEW_MS = 50;

function up(configPath: string): Promise<{ status: number | null; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, 'up', '--config', configPath, '--nats-url', nats!.url, '--exit-after-s', '30'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), 40_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stderr, stdout });
    });
  });
}

describe.skipIf(nats === null)('specula up and a VM running already', () => {
  let nc: NatsConnection;
  let store: KvLeaseStore;
  const dir = mkdtempSync(join(tmpdir(), 'specula-up-live-'));

  beforeAll(async () => {
    nc = await connect({ servers: nats!.url });
    store = await KvLeaseStore.open(nc, { bucket: LEASE_BUCKET });
  });
  afterAll(async () => {
    await forgetLease(store, VM).catch(() => undefined);
    await nc.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses while a holder renews the lease, naming it, and starts nothing; once the holder stops, the lease is found stale', async () => {
    const configPath = join(dir, 'vm.json');
    writeFileSync(configPath, JSON.stringify({ vmId: VM, mode: 'remus' }));
    // A holder as a primary's agent is: a record it renews every interval by compare-and-set.
    let revision = await store.create(VM, { primaryHost: 'host-x', term: 3, expiresAtMs: Date.now() + LEASE_MS });
    let renewals = 0;
    const holder = setInterval(() => {
      void store.update(VM, { primaryHost: 'host-x', term: 3, expiresAtMs: Date.now() + LEASE_MS }, revision).then((r) => {
        revision = r;
        renewals++;
      });
    }, RENEW_MS);
    try {
      const r = await up(configPath);
      expect(r.status, r.stderr).toBe(EXIT_VM_RUNNING);
      expect(r.stderr).toContain(`${VM} is running on ${nats!.url}: host-x holds its lease under term 3 and renews it`);
      expect(r.stdout).not.toContain('"kind":"up"'); // no fleet started
      expect(renewals).toBeGreaterThan(0);
      // The lease is the holder's still.
      expect((await store.get(VM))?.record.primaryHost).toBe('host-x');
    } finally {
      clearInterval(holder);
    }
    // Stopped: its record expires unrenewed, and may be forgotten.
    const timing = { nowMs: () => Date.now(), sleepMs: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)), renewIntervalMs: RENEW_MS, clockSkewMs: 10 };
    expect(await liveLease(store, VM, timing)).toBeNull();
  });
});
