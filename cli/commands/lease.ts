import { Command, Option } from 'commander';
import { jetstreamManager, JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import { jserrors } from '@nats-io/jetstream/internal';
import { LeaseStoreUnavailableError } from '../../lib/lease/errors.js';
import { ConfigError, VmRunningError } from '../../lib/errors.js';
import { forgetLease, KvLeaseStore, kvLeaseStoreOptionsSchema, LEASE_BUCKET } from '../../lib/lease/kv-store.js';
import { liveLease } from '../../lib/lease/live-lease.js';
import { wallClockLiveLease } from '../live-lease-clock.js';
import { checkVmId } from '../validate.js';
import { connectNats } from '../../lib/runtime/nats/connect.js';
import { DEFAULT_NATS_URL } from '../../lib/runtime/nats/options.js';

interface ForgetFlags {
  natsUrl: string;
  leaseBucket: string;
  force: boolean;
}

/**
 * How `forget` tells a live holder: it reads the record again this often
 * (a holder renews every heartbeat, 50 ms in the NATS profile), until the
 * record's expiry plus this allowance for the holder's clock (generous: it
 * only makes the command wait longer), MAX_LIVE_LEASE_WAIT_MS at most.
 */
const FORGET_READ_INTERVAL_MS = 50;
const FORGET_CLOCK_SKEW_MS = 1_000;

/**
 * `specula lease forget VM…`: deletes each VM's lease, so that its hosts
 * create the VM anew. A lease outlives the processes (JetStream keeps it),
 * and an agent that starts again runs no VM on the lease its earlier
 * process held (docs/failover.md): after a whole deployment went down, this
 * is how it starts over. `specula up` does the same for the VMs it creates.
 * A lease whose holder still renews it is refused (exit 75), as `up` refuses
 * it, unless --force. A bucket that does not exist holds no lease: nothing
 * to do. Never create one here: a deployment's bucket has its own replicas.
 */
export function leaseCommand(): Command {
  const forget = new Command('forget')
    .description("delete each VM's lease, so that its hosts create it anew (a deployment that went down: docs/deployment.md)")
    .argument('<vm...>', 'the VM ids (keys of the lease bucket)')
    .addOption(new Option('--nats-url <url>', 'NATS server(s)').env('NATS_URL').default(DEFAULT_NATS_URL))
    .addOption(new Option('--lease-bucket <name>', 'the JetStream KV bucket of the leases').default(LEASE_BUCKET))
    .addOption(new Option('--force', 'forget a lease even while its holder renews it (a second copy of the VM may then run beside it)').default(false))
    .action(async (vms: string[], flags: ForgetFlags) => {
      for (const vm of vms) checkVmId('lease forget', vm);
      if (!kvLeaseStoreOptionsSchema.shape.bucket.safeParse(flags.leaseBucket).success) throw new ConfigError(`--lease-bucket '${flags.leaseBucket}': letters, digits, - and _ only`);
      const nc = await connectNats({ servers: flags.natsUrl, name: 'specula-lease' });
      try {
        // Stream info, not a listing: a deployment's users may ask about their bucket alone (deploy/k8s/base/nats/auth.conf).
        const noJetStream = (err: unknown): never => {
          if (err instanceof jserrors.JetStreamNotEnabled) throw new LeaseStoreUnavailableError(`the NATS server at ${flags.natsUrl} does not run JetStream (start nats-server with -js): it holds no lease bucket`, { cause: err });
          throw err;
        };
        const jsm = await jetstreamManager(nc).catch(noJetStream);
        const exists = await jsm.streams.info(`KV_${flags.leaseBucket}`).then(
          () => true,
          (err: unknown) => (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound ? false : noJetStream(err)),
        );
        if (!exists) {
          process.stdout.write(`no lease bucket ${flags.leaseBucket} on ${flags.natsUrl}: no lease to forget\n`);
          return;
        }
        const store = await KvLeaseStore.openExisting(nc, { bucket: flags.leaseBucket });
        const timing = wallClockLiveLease(FORGET_READ_INTERVAL_MS, FORGET_CLOCK_SKEW_MS);
        for (const vm of vms) {
          // A holder that still renews runs the VM: forgotten, its hosts would create a second copy beside it.
          const live = flags.force ? null : await liveLease(store, vm, timing);
          if (live !== null) throw new VmRunningError(`${vm} is running: ${live.primaryHost} holds its lease under term ${live.term} and renews it. Stop the deployment (or specula up) that runs it first; --force forgets it anyway.`);
          const held = await store.get(vm);
          await forgetLease(store, vm);
          process.stdout.write(held !== null ? `${vm}: forgot the lease of ${held.record.primaryHost}, term ${held.record.term}\n` : `${vm}: no lease held\n`);
        }
      } finally {
        await nc.close();
      }
    })
    .exitOverride();
  return new Command('lease').description("the VMs' leases (JetStream KV)").addCommand(forget);
}
