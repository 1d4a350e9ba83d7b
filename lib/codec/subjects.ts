import { UnknownSubjectError } from '../errors.js';
import type { HostService, WireMessageType } from './messages.js';

/**
 * The subjects of one host's services. They are the host's own: a deposed
 * primary that runs on, cut off, publishes here and nowhere near its
 * successor's pipeline, and a NATS account can grant each host its prefix.
 */
export const hostSubjects = (vmId: string, host: string) => {
  const p = `specula.${vmId}.h.${host}`;
  return {
    /** guest → netbuffer, acker: the guest's segments (speculative modes: those without data) */
    tx: `${p}.tx`,
    /** guest → acker, speculative modes: the guest's segments that carry data (the acker alone owns them) */
    txData: `${p}.tx.data`,
    /** guest → acker: end of an epoch's segments */
    txEpoch: `${p}.tx.epoch`,
    /** acker → guest: speculative ACKs and the client's segments */
    rx: `${p}.rx`,
    /** checkpointer → guest: pause / resume */
    epoch: `${p}.epoch`,
    /** guest, acker → checkpointer: the parts of a checkpoint */
    ckptStage: `${p}.ckpt.stage`,
    /** checkpointer → netbuffer, acker */
    commit: `${p}.commit`,
    /** netbuffer, acker → checkpointer: held output whose connection went quiet (adaptive epochs) */
    outputIdle: `${p}.output.idle`,
    /** host agent → one service: what to run as */
    assign: (service: HostService) => `${p}.assign.${service}`,
    /** services → host agent */
    status: `${p}.status`,
    /** host agent → netbuffer, acker: output may leave until a deadline */
    permit: `${p}.permit`,
    /** guest → acker, at promotion: the speculative buffer of the backup image */
    handover: `${p}.handover`,
    /** acker → guest, at promotion: send the handover (again) */
    handoverRequest: `${p}.handover.req`,
  };
};
export type HostSubjects = ReturnType<typeof hostSubjects>;

/** Subjects are per protected VM so that many VMs shard across a cluster. */
export const subjects = (vmId: string) => ({
  /** host → link → client */
  wireOut: `specula.${vmId}.wire.out`,
  /** client → link → host */
  wireIn: `specula.${vmId}.wire.in`,
  /** primary checkpointer → the backup host's guest, over the replication link */
  ckptData: (backupHost: string) => `specula.${vmId}.ckpt.data.${backupHost}`,
  /** backup → primary checkpointer, over the replication link */
  ckptAck: `specula.${vmId}.ckpt.ack`,
  /** host agent → failover: liveness */
  heartbeat: (host: string) => `specula.${vmId}.hb.${host}`,
  /** failover → a host agent: role changes */
  control: (host: string) => `specula.${vmId}.ctl.${host}`,
  /** failover → anyone watching: its view of the VM, on every change */
  failover: `specula.${vmId}.failover`,
  /** service processes → anyone watching: periodic and final reports */
  report: `specula.${vmId}.report`,
  /** The subjects inside one host. */
  host: (host: string) => hostSubjects(vmId, host),
});
export type Subjects = ReturnType<typeof subjects>;

const T = '[A-Za-z0-9_-]+';
const H = `^specula\\.${T}\\.h\\.${T}\\.`;
const V = `^specula\\.${T}\\.`;
const SUBJECT_TYPES: ReadonlyArray<[RegExp, WireMessageType]> = [
  [new RegExp(`${V}wire\\.(out|in)$`), 'segment'],
  [new RegExp(`${H}(tx|tx\\.data|rx)$`), 'segment'],
  [new RegExp(`${H}tx\\.epoch$`), 'epochEnd'],
  [new RegExp(`${H}epoch$`), 'epochBarrier'],
  [new RegExp(`${H}(ckpt\\.stage|handover)$`), 'checkpointChunk'],
  [new RegExp(`${V}ckpt\\.data\\.${T}$`), 'checkpointChunk'],
  [new RegExp(`${V}ckpt\\.ack$`), 'checkpointAck'],
  [new RegExp(`${H}commit$`), 'epochCommit'],
  [new RegExp(`${H}output\\.idle$`), 'outputIdle'],
  [new RegExp(`${H}assign\\.${T}$`), 'assignment'],
  [new RegExp(`${H}status$`), 'serviceStatus'],
  [new RegExp(`${H}permit$`), 'releasePermit'],
  [new RegExp(`${H}handover\\.req$`), 'handoverRequest'],
  [new RegExp(`${V}hb\\.${T}$`), 'heartbeat'],
  [new RegExp(`${V}ctl\\.${T}$`), 'roleChange'],
  [new RegExp(`${V}failover$`), 'failoverStatus'],
  [new RegExp(`${V}report$`), 'serviceReport'],
];

const HOST_SUBJECT = /^specula\.[A-Za-z0-9_-]+\.h\.([A-Za-z0-9_-]+)\.(.+)$/;

/** The host and kind (tx, commit, assign.guest, …) of a host's subject; null for the VM's other subjects. */
export function parseHostSubject(subject: string): { readonly host: string; readonly kind: string } | null {
  const m = HOST_SUBJECT.exec(subject);
  return m === null ? null : { host: m[1]!, kind: m[2]! };
}

/**
 * Message types of the control plane: small, a few per heartbeat interval,
 * and read by deadlines (a service is dead after missing its status reports,
 * a host after missing its heartbeats, output stops when its permit lapses).
 * Over NATS they travel on a connection of their own, so they never wait
 * behind megabytes of checkpoint data queued on the data connection (in the
 * client's buffer, or in the server, which stalls a producer whose
 * subscribers fall behind). The protocol already takes them reordered
 * against other subjects (docs/failover.md, Bus faults).
 */
const CONTROL_TYPES: ReadonlySet<WireMessageType> = new Set<WireMessageType>(['assignment', 'serviceStatus', 'releasePermit', 'heartbeat', 'roleChange', 'failoverStatus']);

/** Whether `subject` belongs to the control plane (throws UnknownSubjectError for an unknown one). */
export function isControlSubject(subject: string): boolean {
  return CONTROL_TYPES.has(messageTypeOf(subject));
}

/** The message type a subject carries; unknown subjects are a counted error. */
export function messageTypeOf(subject: string): WireMessageType {
  for (const [pattern, type] of SUBJECT_TYPES) if (pattern.test(subject)) return type;
  throw new UnknownSubjectError(`no message type for subject ${subject}`);
}
