import { subjects } from '../../lib/codec/subjects.js';
import type { RunConfig } from '../../lib/config/run-config.js';
import { connectNats, createLogger, drainOnSignals, emulatedLink, NatsShell, type ShellCounters } from '../../lib/runtime/nats/index.js';
import type { LinkStats } from '../../lib/link/index.js';
import type { TcpStats } from '../../lib/tcp/index.js';
import { GuestCore } from './core.js';
import { guestOptionsFromConfig } from './options-from-config.js';
import type { GuestStats } from './vm.js';

export interface GuestServiceOptions {
  readonly natsUrl: string;
  /** Stop on its own after this many wall seconds (a bound for spawned runs); none by default. */
  readonly exitAfterS?: number;
  /** Where the JSON lines go (stdout by default). */
  readonly write?: (line: string) => void;
}

/** First line on stdout: the guest's subscriptions are live, a client may connect. */
export interface GuestReadyLine {
  readonly kind: 'guest-ready';
  readonly vmId: string;
}

/** Last line on stdout, when the guest stops: what only the guest can tell. */
export interface GuestReport {
  readonly kind: 'guest-report';
  readonly vmId: string;
  readonly guest: GuestStats;
  readonly tcp: TcpStats;
  /** The upstream link (client → guest), emulated in this process. */
  readonly linkUp: LinkStats;
  readonly shell: ShellCounters;
  readonly reason: string;
}

/** Builds the guest as sim/world.ts does (in native mode: segments out on wire.out, in on wire.in). */
export function buildGuest(config: RunConfig): GuestCore {
  return new GuestCore(guestOptionsFromConfig(config, null));
}

/**
 * The guest process: its core on NATS behind the upstream half of the
 * emulated link. Runs until SIGTERM/SIGINT (or `exitAfterS`), then drains and
 * writes its report.
 */
export async function runGuestService(config: RunConfig, options: GuestServiceOptions): Promise<GuestReport> {
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const logger = createLogger({ role: 'guest', vm: config.vmId });
  const nc = await connectNats({ servers: options.natsUrl, name: `specula-guest-${config.vmId}` });
  const guest = buildGuest(config);
  const linkUp = emulatedLink(config, 'up');
  const shell = new NatsShell(guest, nc, { logger, inboundLinks: [{ subject: subjects(config.vmId).wireIn, hop: linkUp }] });
  let reason = 'closed';
  const stop = (why: string) => {
    reason = why;
    return shell.stop(why);
  };
  const removeSignals = drainOnSignals((signal) => stop(signal));
  const lifetime = options.exitAfterS === undefined ? null : setTimeout(() => void stop('lifetime'), options.exitAfterS * 1000);
  try {
    await shell.start();
    write(JSON.stringify({ kind: 'guest-ready', vmId: config.vmId } satisfies GuestReadyLine));
    await shell.done;
  } finally {
    removeSignals();
    if (lifetime) clearTimeout(lifetime);
  }
  const vm = guest.vm!;
  const report: GuestReport = { kind: 'guest-report', vmId: config.vmId, guest: vm.stats, tcp: vm.tcp.stats, linkUp: linkUp.stats, shell: shell.counters, reason };
  write(JSON.stringify(report));
  return report;
}
