/**
 * Domain messages: what cores send and receive. The protobuf classes in gen/
 * are the wire form only; codec.ts converts and validates at the boundary.
 */

export const TcpFlag = {
  FIN: 1,
  SYN: 2,
  RST: 4,
  PSH: 8,
  ACK: 16,
} as const;
export const TCP_FLAGS_MASK = 31;

/** A TCP segment. `seq`/`ack` are absolute stream offsets (never wrap). */
export interface Segment {
  readonly type: 'segment';
  readonly vmId: string;
  readonly term: number;
  readonly epoch: number;
  readonly connId: number;
  readonly seq: number;
  readonly ack: number;
  /** Raw 16-bit window field; scaled by the shift the sender offered in its SYN. */
  readonly window: number;
  readonly flags: number;
  readonly payload: Uint8Array;
  /** SYN option; 0 when absent. */
  readonly mss: number;
  /** SYN option; undefined when not offered. */
  readonly wscale: number | undefined;
  readonly tsValUs: number;
  readonly tsEcrUs: number;
  /** An ACK made by the acker before the client has the data. */
  readonly speculative: boolean;
}

export interface EpochBarrier {
  readonly type: 'epochBarrier';
  readonly vmId: string;
  readonly term: number;
  readonly epoch: number;
  /** false: pause and checkpoint `epoch`; true: run epoch + 1. */
  readonly resume: boolean;
  /** A new backup joins with this epoch: its checkpoint starts from an empty image (re-protection). */
  readonly base: boolean;
}

export interface EpochEnd {
  readonly type: 'epochEnd';
  readonly vmId: string;
  readonly term: number;
  readonly epoch: number;
  readonly txEndSeq: number;
  /** From the barrier: the speculative part of this epoch is the whole buffer. */
  readonly base: boolean;
}

export const ChunkSource = {
  PAGES: 1,
  STATE: 2,
  SPEC: 3,
  MANIFEST: 4,
} as const;
export type ChunkSource = (typeof ChunkSource)[keyof typeof ChunkSource];

export interface CheckpointChunk {
  readonly type: 'checkpointChunk';
  readonly vmId: string;
  readonly term: number;
  readonly epoch: number;
  readonly source: ChunkSource;
  readonly index: number;
  readonly count: number;
  readonly data: Uint8Array;
  /** SHA-256 of data. */
  readonly hash: Uint8Array;
  /** Bytes before page-delta encoding. */
  readonly rawBytes: number;
  /** Manifest only: the first epoch of a new backup, applied on an empty image. */
  readonly base: boolean;
}

export interface CheckpointAck {
  readonly type: 'checkpointAck';
  readonly vmId: string;
  readonly term: number;
  readonly epoch: number;
  readonly ok: boolean;
  readonly reason: string;
  /** The backup host that sent it: a primary counts acknowledgements from its current peer only. */
  readonly host: string;
}

export interface EpochCommit {
  readonly type: 'epochCommit';
  readonly vmId: string;
  readonly term: number;
  readonly epoch: number;
}

export const HOST_ROLES = ['primary', 'backup', 'spare'] as const;
export type HostRole = (typeof HOST_ROLES)[number];

export interface Heartbeat {
  readonly type: 'heartbeat';
  readonly vmId: string;
  readonly term: number;
  readonly host: string;
  readonly role: HostRole;
  /** Primary: last committed epoch; backup: last applied epoch. */
  readonly epoch: number;
  /** Holds a complete image: a primary always, a backup once every page reached it. */
  readonly synced: boolean;
  /** The newest role change (its `seq`) this host's supervisor took: the failover service repeats it until then. */
  readonly controlSeq: number;
}

export interface RoleChange {
  readonly type: 'roleChange';
  readonly vmId: string;
  readonly term: number;
  readonly host: string;
  readonly role: 'primary' | 'backup';
  /** The host serving the other role; empty when none. */
  readonly peerHost: string;
  /** Grows with every role change the failover service sends: a receiver ignores one older than what it acted on. */
  readonly seq: number;
}

export type WireMessage = Segment | EpochBarrier | EpochEnd | CheckpointChunk | CheckpointAck | EpochCommit | Heartbeat | RoleChange;
export type WireMessageType = WireMessage['type'];
