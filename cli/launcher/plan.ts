import type { RunConfig } from '../../lib/config/run-config.js';
import { HOST_PROCESSES, topologyOf } from '../../lib/topology/index.js';
import type { ServiceName } from '../commands/service.js';

/** One process to launch: a service, on a host or once for the VMs. */
export interface PlannedProcess {
  readonly service: ServiceName;
  /** null: outside the hosts (failover, client, and the guest of a native VM). */
  readonly host: string | null;
}

/**
 * The processes of a VM's topology (each serves every VM launched with it):
 * each host's services, its agent last, then the failover service. Native
 * mode has no hosts: its guest alone. The client is the launcher's to add.
 */
export function plannedProcesses(config: RunConfig): PlannedProcess[] {
  const t = topologyOf(config);
  if (!t.replicated) return [{ service: 'guest', host: null }];
  return [...t.hosts.flatMap((host) => HOST_PROCESSES.map((service) => ({ service, host }))), { service: 'failover', host: null }];
}

/** How a process is named in logs: "host-a guest", "failover". */
export const labelOf = (p: PlannedProcess): string => (p.host === null ? p.service : `${p.host} ${p.service}`);
