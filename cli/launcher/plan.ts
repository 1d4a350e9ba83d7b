import type { RunConfig } from '../../lib/config/run-config.js';
import { HOST_PROCESSES, topologyOf } from '../../lib/topology/index.js';
import type { ServiceName } from '../commands/service.js';

/**
 * How a host's services map to processes. `service`: each its own (as the
 * Compose file and the Kubernetes manifests deploy them). `host`: the
 * guest, checkpointer, netbuffer and acker of a host in one process, still
 * talking over NATS, and its agent in one of its own, so that a busy guest
 * cannot silence the heartbeats that say the host is alive.
 */
export const LAYOUTS = ['service', 'host'] as const;
export type Layout = (typeof LAYOUTS)[number];

/** One process to launch: one service or several (`specula service a b …`), on a host or once for the VMs. */
export interface PlannedProcess {
  readonly services: readonly ServiceName[];
  /** null: outside the hosts (failover, client, and the guest of a native VM). */
  readonly host: string | null;
}

/** The services a `host` layout puts in one process: a host's data path, without its agent. */
const HOST_DATA_SERVICES = HOST_PROCESSES.filter((s) => s !== 'host-agent');

/**
 * The processes of a VM's topology (each serves every VM launched with it):
 * each host's services, its agent last, then the failover service. Native
 * mode has no hosts: its guest alone. The client is the launcher's to add.
 */
export function plannedProcesses(config: RunConfig, layout: Layout = 'service'): PlannedProcess[] {
  const t = topologyOf(config);
  if (!t.replicated) return [{ services: ['guest'], host: null }];
  const perHost = (host: string): PlannedProcess[] => (layout === 'host' ? [{ services: HOST_DATA_SERVICES, host }, { services: ['host-agent'], host }] : HOST_PROCESSES.map((service) => ({ services: [service], host })));
  return [...t.hosts.flatMap(perHost), { services: ['failover'], host: null }];
}

/** How a process is named in logs: "host-a guest", "host-a guest+checkpointer+netbuffer+acker", "failover". */
export const labelOf = (p: PlannedProcess): string => {
  const services = p.services.join('+');
  return p.host === null ? services : `${p.host} ${services}`;
};
