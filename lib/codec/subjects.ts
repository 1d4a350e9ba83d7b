import { UnknownSubjectError } from '../errors.js';
import type { WireMessageType } from './messages.js';

/** Subjects are per protected VM so that many VMs shard across a cluster. */
export const subjects = (vmId: string) => ({
  /** host → link → client */
  wireOut: `specula.${vmId}.wire.out`,
  /** client → link → host */
  wireIn: `specula.${vmId}.wire.in`,
  /** guest → acker, netbuffer: the guest's segments */
  tx: `specula.${vmId}.tx`,
  /** guest → acker, netbuffer: end of an epoch's segments */
  txEpoch: `specula.${vmId}.tx.epoch`,
  /** acker → guest: speculative ACKs and the client's segments */
  rx: `specula.${vmId}.rx`,
  /** checkpointer → guest: pause / resume */
  epoch: `specula.${vmId}.epoch`,
  /** guest, acker → local checkpointer: the parts of a checkpoint */
  ckptStage: `specula.${vmId}.ckpt.stage`,
  /** primary → backup checkpointer, over the replication link */
  ckptData: `specula.${vmId}.ckpt.data`,
  /** backup → primary checkpointer, over the replication link */
  ckptAck: `specula.${vmId}.ckpt.ack`,
  /** checkpointer → netbuffer, acker */
  commit: `specula.${vmId}.commit`,
  /** host → failover: liveness */
  heartbeat: (host: string) => `specula.${vmId}.hb.${host}`,
  /** failover → a host's supervisor: role changes */
  control: (host: string) => `specula.${vmId}.ctl.${host}`,
});
export type Subjects = ReturnType<typeof subjects>;

const TOKEN = '[A-Za-z0-9_-]+';
const SUBJECT_TYPES: ReadonlyArray<[RegExp, WireMessageType]> = [
  [new RegExp(`^specula\\.${TOKEN}\\.(wire\\.out|wire\\.in|tx|rx)$`), 'segment'],
  [new RegExp(`^specula\\.${TOKEN}\\.tx\\.epoch$`), 'epochEnd'],
  [new RegExp(`^specula\\.${TOKEN}\\.epoch$`), 'epochBarrier'],
  [new RegExp(`^specula\\.${TOKEN}\\.ckpt\\.(stage|data)$`), 'checkpointChunk'],
  [new RegExp(`^specula\\.${TOKEN}\\.ckpt\\.ack$`), 'checkpointAck'],
  [new RegExp(`^specula\\.${TOKEN}\\.commit$`), 'epochCommit'],
  [new RegExp(`^specula\\.${TOKEN}\\.hb\\.${TOKEN}$`), 'heartbeat'],
  [new RegExp(`^specula\\.${TOKEN}\\.ctl\\.${TOKEN}$`), 'roleChange'],
];

/** The message type a subject carries; unknown subjects are a counted error. */
export function messageTypeOf(subject: string): WireMessageType {
  for (const [pattern, type] of SUBJECT_TYPES) if (pattern.test(subject)) return type;
  throw new UnknownSubjectError(`no message type for subject ${subject}`);
}
