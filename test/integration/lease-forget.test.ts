/**
 * `specula lease forget` on a real nats-server: the lease a VM's earlier
 * processes held is gone afterwards, so its hosts create the VM anew; a
 * bucket that does not exist is left uncreated; a VM id that cannot be a key
 * is a usage error.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { KvLeaseStore } from '../../lib/lease/kv-store.js';
import { LeaseConflictError } from '../../lib/lease/errors.js';
import { EXIT_USAGE, EXIT_VM_RUNNING } from '../../cli/exit-codes.js';
import { withNats } from './support/nats.js';

const nats = await withNats();
const CLI = fileURLToPath(new URL('../../dist/cli/specula.js', import.meta.url));
/** A bucket of this run alone: the server may be shared (NATS_URL). */
const BUCKET = `leases_forget_${process.pid}`;

function specula(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'lease', 'forget', ...args, '--nats-url', nats!.url, '--lease-bucket', BUCKET], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** As specula(), without blocking this process's event loop (a lease holder renews in it meanwhile). */
function speculaAsync(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'lease', 'forget', ...args, '--nats-url', nats!.url, '--lease-bucket', BUCKET], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe.skipIf(nats === null)('specula lease forget', () => {
  let nc: NatsConnection;

  beforeAll(async () => {
    nc = await connect({ servers: nats!.url });
  });
  afterAll(async () => {
    await (await jetstreamManager(nc)).streams.delete(`KV_${BUCKET}`).catch(() => undefined);
    await nc.close();
    await nats?.stop();
  });

  it('says there is nothing to forget when the bucket does not exist, and does not create it', async () => {
    const r = specula('vm1');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`no lease bucket ${BUCKET}`);
    expect(await (await jetstreamManager(nc)).streams.names().next()).not.toContain(`KV_${BUCKET}`);
  });

  it("deletes each VM's lease, saying whose it was, and leaves the others", async () => {
    const store = await KvLeaseStore.open(nc, { bucket: BUCKET });
    await store.create('vm1', { primaryHost: 'host-a', term: 3, expiresAtMs: 1, committedEpoch: 40, holderIncarnation: 7 });
    await store.create('vm2', { primaryHost: 'host-b', term: 1, expiresAtMs: 1 });
    const r = specula('vm1', 'vm3');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('vm1: forgot the lease of host-a, term 3');
    expect(r.stdout).toContain('vm3: no lease held');
    expect(await store.get('vm1')).toBeNull();
    expect((await store.get('vm2'))?.record.primaryHost).toBe('host-b');
    // The VM's first primary can create it anew.
    await expect(store.create('vm1', { primaryHost: 'host-a', term: 1, expiresAtMs: 2 })).resolves.toBeGreaterThan(0);
  });

  it('refuses the lease of a holder that still renews it (a second copy of its VM would run), unless --force', async () => {
    const store = await KvLeaseStore.open(nc, { bucket: BUCKET });
    const lease = (expiresAtMs: number) => ({ primaryHost: 'host-a', term: 2, expiresAtMs, holderIncarnation: 9 });
    let revision = await store.create('live', lease(Date.now() + 500));
    // A holder renewing every 50 ms, as an agent of the NATS profile does; bounded by the test's own time.
    let renewing = true;
    const holder = (async () => {
      for (let i = 0; renewing && i < 600; i++) {
        await new Promise((r) => setTimeout(r, 50));
        try {
          revision = await store.update('live', lease(Date.now() + 500), revision);
        } catch (err) {
          if (err instanceof LeaseConflictError) return; // the forced purge: the record it renewed is gone
          throw err;
        }
      }
    })();
    try {
      const r = await speculaAsync('live');
      expect(r.status, r.stderr).toBe(EXIT_VM_RUNNING);
      expect(r.stderr).toContain('live is running: host-a holds its lease under term 2');
      expect((await store.get('live'))?.record.term).toBe(2);
      const forced = await speculaAsync('live', '--force');
      expect(forced.status, forced.stderr).toBe(0);
      expect(forced.stdout).toContain('live: forgot the lease of host-a, term 2');
    } finally {
      renewing = false;
      await holder;
    }
  });

  it('refuses what cannot be a VM id (a lease key with a dot included: no VM has it), as a usage error', () => {
    for (const id of ['not a key', 'a.b']) {
      const r = specula(id);
      expect(r.status).toBe(EXIT_USAGE);
      expect(r.stderr).toContain(`lease forget '${id}': vmId must be 1-64 characters of [A-Za-z0-9_-]`);
    }
  });
});
