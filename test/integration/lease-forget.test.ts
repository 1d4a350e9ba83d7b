/**
 * `specula lease forget` on a real nats-server: the lease a VM's earlier
 * processes held is gone afterwards, so its hosts create the VM anew; a
 * bucket that does not exist is left uncreated; a VM id that cannot be a key
 * is a usage error.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { KvLeaseStore } from '../../lib/lease/kv-store.js';
import { EXIT_USAGE } from '../../cli/exit-codes.js';
import { withNats } from './support/nats.js';

const nats = await withNats();
const CLI = fileURLToPath(new URL('../../dist/cli/specula.js', import.meta.url));
/** A bucket of this run alone: the server may be shared (NATS_URL). */
const BUCKET = `leases_forget_${process.pid}`;

function specula(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'lease', 'forget', ...args, '--nats-url', nats!.url, '--lease-bucket', BUCKET], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
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

  it('refuses a VM id that cannot be a lease key, as a usage error', () => {
    const r = specula('not a key');
    expect(r.status).toBe(EXIT_USAGE);
    expect(r.stderr).toContain("vmId 'not a key' cannot be a lease key");
  });
});
