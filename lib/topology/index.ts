import type { HostRole, HostService } from '../codec/messages.js';
import { subjects, type Subjects } from '../codec/subjects.js';
import { isReplicated, type Mode, type RunConfig } from '../config/run-config.js';

/** What runs on every host of a replicated VM: its agent and the services it supervises, in start order. */
export const HOST_PROCESSES = ['guest', 'checkpointer', 'netbuffer', 'acker', 'host-agent'] as const satisfies readonly (HostService | 'host-agent')[];
export type HostProcess = (typeof HOST_PROCESSES)[number];

/** Services that run once per VM, outside its hosts. */
export const VM_PROCESSES = ['failover', 'client'] as const;
export type VmProcess = (typeof VM_PROCESSES)[number];

/**
 * Where everything of one protected VM runs and how it is addressed: the
 * simulator builds its world from this, and the NATS launcher its processes.
 * Every host runs the same services; which of them work is decided at run
 * time by the host agents, not here.
 */
export interface Topology {
  readonly vmId: string;
  readonly mode: Mode;
  readonly replicated: boolean;
  readonly subjects: Subjects;
  readonly primaryHost: string;
  readonly backupHost: string;
  readonly spareHosts: readonly string[];
  /** Every host: the first primary, the first backup, then the spares. Empty in native mode. */
  readonly hosts: readonly string[];
}

export function topologyOf(config: RunConfig): Topology {
  const replicated = isReplicated(config.mode);
  const h = config.hosts;
  return {
    vmId: config.vmId,
    mode: config.mode,
    replicated,
    subjects: subjects(config.vmId),
    primaryHost: h.primary,
    backupHost: h.backup,
    spareHosts: h.spares,
    hosts: replicated ? [h.primary, h.backup, ...h.spares] : [],
  };
}

/** A host's role when the VM is created, and its peer then (the backup of the primary, the primary of the backup). */
export function initialRoleOf(t: Topology, host: string): { readonly role: HostRole; readonly peerHost: string } {
  if (host === t.primaryHost) return { role: 'primary', peerHost: t.backupHost };
  if (host === t.backupHost) return { role: 'backup', peerHost: t.primaryHost };
  return { role: 'spare', peerHost: '' };
}
