/**
 * docker-compose.yml as it ships, run as local processes (this machine has
 * no Docker engine): the file's commands, environment, mounts and
 * healthchecks, a real nats-server on the shipped config (users and
 * permissions), and the services from the Dockerfile's image, built here
 * step by step (production dependencies only). A spec-mode transfer from the client, the primary
 * host's services SIGKILLed in the middle of it; then the permissions.
 */
import { fileURLToPath } from 'node:url';
import { errors, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode } from '../../lib/codec/codec.js';
import type { ServiceReport } from '../../lib/codec/messages.js';
import { subjects } from '../../lib/codec/subjects.js';
import { connectNats } from '../../lib/runtime/nats/connect.js';
import { isFinalLine } from '../../lib/runtime/nats/service-process.js';
import { loadCompose, type ComposeFile } from './support/compose-file.js';
import { ComposeRunner } from './support/compose-runner.js';
import { dockerBuild, type BuiltImage } from './support/docker-build.js';
import { skipWithoutNatsBinary } from '../integration/support/nats.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const IMAGE = 'specula:local';
const PRIMARY_SERVICES = ['host-a-guest', 'host-a-checkpointer', 'host-a-netbuffer', 'host-a-acker', 'host-a-agent'];
/** Into the client's transfer (durationS 10 in deploy/compose/run.json) when the primary dies. */
const CRASH_AFTER_MS = 4_000;
/** The backup's first full image: 64 MiB in seed steps of 4 MiB per epoch, over a bus that 16 processes on 2 cores share. */
const PROTECTION_WAIT_MS = 60_000;
/** The new primary's first commit after the failover, at most (the spare's whole base image first; see the metrics step). */
const FIRST_COMMIT_WAIT_MS = 200_000;
/** How long a refused publish or subscription takes to come back from the server, at most. */
const PERMISSION_ANSWER_MS = 3_000;

const skip = skipWithoutNatsBinary('docker-compose.yml as local processes');

/** The password the Compose file gives the NATS server for a user (its default, as no .env sets it here). */
function passwordOf(compose: ComposeFile, user: string): string {
  const key = `SPECULA_NATS_${user.toUpperCase().replace('-', '_')}_PASSWORD`;
  const value = compose.services.get('nats')!.environment[key];
  if (value === undefined) throw new Error(`the nats service has no ${key}`);
  return value;
}

/** Resolves with the first permission violation the server reports to `nc` for `subject`, or null after a while. */
async function refusal(nc: NatsConnection, subject: string): Promise<InstanceType<typeof errors.PermissionViolationError> | null> {
  const timeout = new Promise<null>((resolve) => setTimeout(() => resolve(null), PERMISSION_ANSWER_MS));
  const seen = (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'error' && s.error instanceof errors.PermissionViolationError && s.error.subject === subject) return s.error;
    }
    return null;
  })();
  return Promise.race([seen, timeout]);
}

// The tests are steps of one compose run, in the file's order (one run costs a minute and more): the metrics step
// reads the failover the transfer step caused, and the last step stops everything.
describe.skipIf(skip)('docker-compose.yml, its services as local processes', () => {
  // Compose's own environment: none of this machine's, so the file's defaults apply.
  const compose = loadCompose(`${REPO}/docker-compose.yml`, { SPECULA_LOG_LEVEL: 'warn' });
  let image: BuiltImage;
  let runner: ComposeRunner;
  const natsUrl = () => `nats://127.0.0.1:${runner.port('nats', 4222)}`;
  const as = (user: string, name: string) => connectNats({ servers: natsUrl(), name, reconnect: false }, { user, pass: passwordOf(compose, user), describe: `user ${user}` });

  beforeAll(async () => {
    image = dockerBuild(REPO);
    runner = await ComposeRunner.create({ compose, projectDir: REPO, speculaImage: IMAGE, image });
    await runner.up();
  }, 300_000);

  afterAll(async () => {
    await runner?.down();
    image?.remove();
  }, 30_000);

  it('starts every service of the file and passes each healthcheck; only Jaeger, an image not on this machine, is left out', () => {
    const specula = [...compose.services.values()].filter((s) => s.image === IMAGE && s.profiles.length === 0).map((s) => s.name);
    expect(specula).toEqual(expect.arrayContaining(['failover', ...PRIMARY_SERVICES, 'host-b-agent', 'host-c-agent']));
    for (const name of [...specula, 'nats']) expect(runner.child(name)?.running, runner.child(name)?.failure('is not running').message ?? `${name} was never started`).toBe(true);
    expect(runner.skipped).toEqual(['jaeger']);
  });

  it('a spec-mode transfer from the client is verified byte for byte while the primary host\'s services are SIGKILLed: the backup takes over and the spare joins', { timeout: 150_000 }, async () => {
    const observer = await as('observer', 'compose-test-observer');
    const failoverReports: Record<string, unknown>[] = [];
    // Each state the failover service reports, and when: what a failed wait prints.
    const startedMs = Date.now();
    const states: string[] = [];
    observer.subscribe(subjects('vm1').report, {
      callback: (_err, m) => {
        const r = decode('serviceReport', m.data) as ServiceReport;
        if (r.service !== 'failover') return;
        const stats = JSON.parse(r.statsJson) as Record<string, unknown>;
        if (stats.state !== failoverReports.at(-1)?.state) states.push(`${String(stats.state)} at ${Date.now() - startedMs} ms`);
        failoverReports.push(stats);
      },
    });
    // Killing the primary before its backup holds a whole image loses the VM (docs/failover.md): wait for protection,
    // as the failover service's periodic reports tell it.
    const deadline = Date.now() + PROTECTION_WAIT_MS;
    while (failoverReports.at(-1)?.state !== 'protected' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(failoverReports.at(-1)?.state, `the failover service reports vm1 protected within ${PROTECTION_WAIT_MS} ms (states: ${states.join(', ')}; its log: ${runner.child('failover')?.failure('').message})`).toBe('protected');
    const client = (await runner.start('client'))!;
    await new Promise((r) => setTimeout(r, CRASH_AFTER_MS));
    runner.kill(PRIMARY_SERVICES);
    const exit = await client.exited(60_000);
    const final = client.lastJson(isFinalLine);
    await new Promise((r) => setTimeout(r, 1_500)); // one more report from the failover service
    await observer.close();

    expect(exit.code, 'the client exits 0 when it connected and its bus never dropped').toBe(0);
    const stats = final!.vms[0]!.stats as { connected: boolean; streamVerified: boolean; bytesDelivered: number; deliveredPerBin: number[] };
    expect(stats.connected).toBe(true);
    expect(stats.streamVerified, 'every byte in order, none lost, none twice').toBe(true);
    expect(stats.bytesDelivered).toBeGreaterThan(0);
    // Bytes arrived after the crash as well: the transfer went on through the promoted backup.
    const bins = stats.deliveredPerBin;
    const crashBin = Math.floor((CRASH_AFTER_MS / 10_000) * bins.length);
    expect(bins.slice(crashBin + 2).reduce((a, b) => a + b, 0), 'bytes delivered after the failover').toBeGreaterThan(0);
    const last = failoverReports.at(-1)!;
    expect(last.failovers, 'promotions the failover service counted').toBe(1);
    expect(last.reprotections, 'the spare joined as the new backup').toBeGreaterThanOrEqual(1);
  });

  it('the shipped NATS permissions deny the client the commit and lease subjects, and a host\'s service another VM\'s subjects', { timeout: 30_000 }, async () => {
    const client = await as('client', 'compose-test-client');
    try {
      const commit = subjects('vm1').host('host-b').commit;
      const commitRefused = refusal(client, commit);
      client.publish(commit, new Uint8Array(8));
      expect((await commitRefused)?.operation, `client publishing on ${commit}`).toBe('publish');

      const lease = '$KV.specula_leases.vm1';
      const leaseRefused = refusal(client, lease);
      client.publish(lease, new TextEncoder().encode('{}'));
      expect((await leaseRefused)?.operation, `client publishing on ${lease}`).toBe('publish');

      const ckpt = subjects('vm1').ckptData('host-b');
      const subRefused = refusal(client, ckpt);
      client.subscribe(ckpt);
      expect((await subRefused)?.operation, `client subscribing to ${ckpt}`).toBe('subscription');

      // What the client is there for still works.
      const wireIn = subjects('vm1').wireIn;
      const allowed = refusal(client, wireIn);
      client.publish(wireIn, new Uint8Array(0));
      await client.flush();
      expect(await allowed, `client publishing on ${wireIn}`).toBeNull();
    } finally {
      await client.close();
    }

    const guest = await as('guest', 'compose-test-guest');
    try {
      const otherVm = subjects('vm2').wireOut;
      const refused = refusal(guest, otherVm);
      guest.publish(otherVm, new Uint8Array(8));
      expect((await refused)?.operation, `guest publishing on ${otherVm}`).toBe('publish');
    } finally {
      await guest.close();
    }
  });

  it('every service serves Prometheus metrics on its health port: the failover, the new primary\'s checkpoints and their commit latency', { timeout: FIRST_COMMIT_WAIT_MS + 30_000 }, async () => {
    const scrape = async (service: string) => {
      const res = await fetch(`http://127.0.0.1:${runner.healthPort(service)}/metrics`);
      expect(res.status, service).toBe(200);
      return res.text();
    };
    const value = (text: string, metric: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${metric}{`) || l.startsWith(`${metric} `));
      return line === undefined ? null : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    expect(value(await scrape('failover'), 'specula_failovers_total')).toBe(1);
    // The new primary commits every epoch; they count as checkpoints once the spare's image is complete, which on a
    // loaded machine may still be under way (nats-failover.test.ts holds re-protection to its time), so only reported here.
    // Its first commit may still be on the way on a machine that 16 processes (and, in a full test run, the other
    // test files) keep busy: the spare's base image is seeded 1 MiB an epoch (deploy/run.json), 64 epochs of a 64 MiB
    // guest, which took 39 s with the file alone on a slow day, over 60 s in a full run, and once over 120 s in a full
    // run that took a third longer than usual (it was there at once in most runs). Wait for it, bounded: a liveness
    // bound, not a speed target.
    await expect.poll(async () => value(await scrape('host-b-checkpointer'), 'specula_commit_latency_seconds_count') ?? 0, { timeout: FIRST_COMMIT_WAIT_MS, interval: 250 }).toBeGreaterThan(0);
    const checkpointer = await scrape('host-b-checkpointer');
    expect(value(checkpointer, 'specula_checkpoints_total')).not.toBeNull();
    expect(value(checkpointer, 'specula_commit_latency_seconds_count')).toBeGreaterThan(0);
    expect(value(checkpointer, 'specula_epoch_length_seconds_count')).toBeGreaterThan(0);
    expect(checkpointer).toContain('specula_commit_latency_seconds_bucket{vm="vm1",otel_scope_name="specula",le="0.01"}');
    expect(value(await scrape('host-b-acker'), 'specula_spec_buffer_bytes')).not.toBeNull();
    const promotedGuest = await scrape('host-b-guest');
    expect(value(promotedGuest, 'specula_pause_seconds_total')).toBeGreaterThan(0);
    // It was the backup until the failover: its image never reached the bound on staged bytes.
    expect(value(promotedGuest, 'specula_backup_staging_drops_total')).toBe(0);
  });

  it('stops every service cleanly, and none was refused a subject it needed', { timeout: 30_000 }, async () => {
    await runner.down();
    const survivors = [...compose.services.values()].filter((s) => s.image === IMAGE && s.profiles.length === 0 && !PRIMARY_SERVICES.includes(s.name));
    for (const s of survivors) {
      const final = runner.child(s.name)!.lastJson(isFinalLine);
      expect(final, `${s.name} drained and printed its final line`).not.toBeNull();
      expect(final!.vms[0]!.shell.permissionViolations, `${s.name}: subjects its NATS user may not use`).toBe(0);
    }
  });
});
