import { Command, Option } from 'commander';
import { jetstream, jetstreamManager, JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { ConfigError } from '../../lib/errors.js';
import { kvLeaseStoreOptionsSchema, LEASE_BUCKET, mapKvError } from '../../lib/lease/kv-store.js';
import { assertLeaseKey, leaseRecordSchema } from '../../lib/lease/types.js';
import { connectNats } from '../../lib/runtime/nats/connect.js';
import { DEFAULT_NATS_URL } from '../../lib/runtime/nats/options.js';

interface ForgetFlags {
  natsUrl: string;
  leaseBucket: string;
}

/**
 * `specula lease forget VM…`: deletes each VM's lease, so that its hosts
 * create the VM anew. A lease outlives the processes (JetStream keeps it),
 * and an agent that starts again runs no VM on the lease its earlier
 * process held (docs/failover.md): after a whole deployment went down, this
 * is how it starts over. `specula up` does the same for the VMs it creates.
 * A bucket that does not exist holds no lease: nothing to do. Never create
 * one here: a deployment's bucket has its own replicas.
 */
export function leaseCommand(): Command {
  const forget = new Command('forget')
    .description("delete each VM's lease, so that its hosts create it anew (a deployment that went down: docs/deployment.md)")
    .argument('<vm...>', 'the VM ids (keys of the lease bucket)')
    .addOption(new Option('--nats-url <url>', 'NATS server(s)').env('NATS_URL').default(DEFAULT_NATS_URL))
    .addOption(new Option('--lease-bucket <name>', 'the JetStream KV bucket of the leases').default(LEASE_BUCKET))
    .action(async (vms: string[], flags: ForgetFlags) => {
      for (const vm of vms) assertLeaseKey(vm);
      if (!kvLeaseStoreOptionsSchema.shape.bucket.safeParse(flags.leaseBucket).success) throw new ConfigError(`--lease-bucket '${flags.leaseBucket}': letters, digits, - and _ only`);
      const nc = await connectNats({ servers: flags.natsUrl, name: 'specula-lease' });
      try {
        // Stream info, not a listing: a deployment's users may ask about their bucket alone (deploy/k8s/base/nats/auth.conf).
        const exists = await (await jetstreamManager(nc)).streams.info(`KV_${flags.leaseBucket}`).then(
          () => true,
          (err: unknown) => {
            if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound) return false;
            throw err;
          },
        );
        if (!exists) {
          process.stdout.write(`no lease bucket ${flags.leaseBucket} on ${flags.natsUrl}: no lease to forget\n`);
          return;
        }
        const kv = await new Kvm(jetstream(nc)).open(flags.leaseBucket);
        for (const vm of vms) {
          try {
            const entry = await kv.get(vm);
            const held = entry !== null && entry.operation === 'PUT' ? leaseRecordSchema.safeParse(entry.json()) : null;
            await kv.purge(vm);
            process.stdout.write(held?.success ? `${vm}: forgot the lease of ${held.data.primaryHost}, term ${held.data.term}\n` : `${vm}: no lease held\n`);
          } catch (err) {
            throw mapKvError(err, `forget lease ${vm}`);
          }
        }
      } finally {
        await nc.close();
      }
    })
    .exitOverride();
  return new Command('lease').description("the VMs' leases (JetStream KV)").addCommand(forget);
}
