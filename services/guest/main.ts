import { isReplicated, isSpeculative, type RunConfig } from '../../lib/config/run-config.js';
import { emulatedLink, replicationLink } from '../../lib/runtime/nats/emulated-link.js';
import { clientLinkGateBytesFor, replicationLinkGateBytesFor } from '../../lib/link/link-direction.js';
import type { ServiceDefinition } from '../../lib/runtime/nats/service-process.js';
import { topologyOf } from '../../lib/topology/index.js';
import { GuestCore } from './core.js';
import { guestOptionsFromConfig } from './options-from-config.js';

/** The guest alone, as in native mode (segments out on wire.out, in on wire.in). */
export function buildGuest(config: RunConfig): GuestCore {
  return new GuestCore(guestOptionsFromConfig(config, null));
}

/** What a guest reports: its role, and totals over every VM and image it ran. */
export function guestReport(guest: GuestCore): Record<string, unknown> {
  const vms = guest.history.vms;
  const sum = (pick: (vm: (typeof vms)[number]) => number) => vms.reduce((n, vm) => n + pick(vm), 0);
  const standby = guest.standby;
  return {
    role: guest.role,
    pausedUsTotal: sum((vm) => vm.stats.pausedUsTotal),
    checkpointPagesSent: sum((vm) => vm.capture?.stats.pagesSent ?? 0),
    retransmits: sum((vm) => vm.tcp.stats.retransmits),
    fastRetransmits: sum((vm) => vm.tcp.stats.fastRetransmits),
    timeouts: sum((vm) => vm.tcp.stats.timeouts),
    lossProbes: sum((vm) => vm.tcp.stats.lossProbes),
    timeoutsUndone: sum((vm) => vm.tcp.stats.timeoutsUndone),
    slowStartExits: sum((vm) => vm.tcp.stats.slowStartExits),
    slowStartExitCwndBytesTotal: sum((vm) => vm.tcp.stats.slowStartExitCwndBytesTotal),
    acksAboveSndMax: sum((vm) => vm.tcp.stats.acksAboveSndMax),
    localNicThrottles: guest.vm?.localNic?.stats.throttles ?? 0, // native only: its one VM never retires
    requestStreamVerified: vms.every((vm) => vm.stats.requestStreamVerified),
    bytesWritten: guest.vm?.stats.bytesWritten ?? 0,
    appliedEpoch: standby?.stats.appliedEpoch ?? null,
    synced: standby?.synced ?? null,
    chunksStaged: guest.chunksStaged,
    stagedBytes: standby?.stagedBytes ?? null,
    stagingDrops: guest.stagingDrops,
    staleAssignments: guest.staleAssignments,
    foreignAssignments: guest.foreignAssignments,
    ...guest.stats,
  };
}

/**
 * The guest service. Native: the VM alone, behind the upstream half of the
 * client link. Replicated: one host's guest, behind the downstream half of
 * the replication link (checkpoints reach it there while it is a backup);
 * in remus also behind the client link's upstream half, since the client's
 * segments come to it straight (the acker's in speculative modes).
 */
export const guestService: ServiceDefinition = {
  name: 'guest',
  placement: 'replicated',
  clock: 'wall',
  leases: false,
  build(config, host) {
    const guest = new GuestCore(guestOptionsFromConfig(config, host));
    const s = topologyOf(config).subjects;
    const replicated = isReplicated(config.mode);
    // The client's segments come to the guest itself, except in speculative modes (the acker's).
    const linkUp = isSpeculative(config.mode) ? null : emulatedLink(config, 'up');
    const inboundLinks = [
      ...(replicated ? [{ subject: s.ckptData(host!), hop: replicationLink(config, 'down'), maxPendingBytes: replicationLinkGateBytesFor(config.replicationLink) }] : []),
      ...(linkUp === null ? [] : [{ subject: s.wireIn, hop: linkUp, maxPendingBytes: clientLinkGateBytesFor(config, 'up') }]),
    ];
    const report = () => ({ ...guestReport(guest), ...(linkUp === null ? {} : { linkUp: linkUp.stats }) });
    return { core: guest, inboundLinks, report, ...(replicated ? { role: () => guest.role } : {}) };
  },
};
