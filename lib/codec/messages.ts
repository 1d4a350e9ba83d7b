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
  /** SYN option: SACK-permitted (RFC 2018). */
  readonly sackPermitted: boolean;
  /** SACK option: blocks of received data above `ack`, as flat [start, end) pairs, most recent first; empty when absent. */
  readonly sackBlocks: readonly number[];
  readonly tsValUs: number;
  readonly tsEcrUs: number;
  /** An ACK made by the acker before the client has the data. */
  readonly speculative: boolean;
}

/** A segment without SACK blocks (shared: the empty list is never written to). */
export const NO_SACK_BLOCKS: readonly number[] = Object.freeze([]);

export interface EpochBarrier {
  readonly type: 'epochBarrier';
  readonly vmId: string;
  readonly term: number;
  readonly epoch: number;
  /** A new backup joins with this epoch: its checkpoint starts from an empty image (re-protection). */
  readonly base: boolean;
  /** A repeated pause barrier: the sources (bit 1 << ChunkSource) the checkpointer holds in full already; 0 at first. */
  readonly stagedSources: number;
  /** A base barrier: the join it serves (Assignment.joinSeq); 0 otherwise. */
  readonly joinSeq: number;
  /** No backup receives this epoch (unprotected): the guest stages only its state, and the epoch commits at once. Never on a base. */
  readonly local: boolean;
}

/** The most TCP connections a guest carries (its workload's); per-connection fields have one entry per connection, by id − 1. */
export const MAX_CONNECTIONS = 2;

/** Whether `connId` names a connection a guest can have: 1..MAX_CONNECTIONS. */
export const isConnectionId = (connId: unknown): connId is number => Number.isInteger(connId) && (connId as number) >= 1 && (connId as number) <= MAX_CONNECTIONS;

export interface EpochEnd {
  readonly type: 'epochEnd';
  readonly vmId: string;
  readonly term: number;
  readonly epoch: number;
  /** Per connection (by id − 1): the highest sequence number sent + 1 when the guest paused. */
  readonly txEndSeqs: readonly number[];
  /** From the barrier: the speculative part of this epoch is the whole buffer. */
  readonly base: boolean;
  /** A repeat whose barrier said the speculative part is staged already. */
  readonly specStaged: boolean;
  /** From the barrier: no backup receives this epoch; the acker stages no part for it. */
  readonly local: boolean;
}

export const ChunkSource = {
  PAGES: 1,
  STATE: 2,
  SPEC: 3,
  MANIFEST: 4,
} as const;
export type ChunkSource = (typeof ChunkSource)[keyof typeof ChunkSource];

/** `sources` (a bit set of ChunkSource, as EpochBarrier.stagedSources) holds `source`. */
export function hasSource(sources: number, source: ChunkSource): boolean {
  return (sources & (1 << source)) !== 0;
}

export interface CheckpointChunk {
  readonly type: 'checkpointChunk';
  readonly vmId: string;
  readonly term: number;
  readonly epoch: number;
  readonly source: ChunkSource;
  readonly index: number;
  readonly count: number;
  readonly data: Uint8Array;
  /** The checksum of the data and the header fields (lib/checkpoint/chunks.ts chunkChecksum). */
  readonly hash: Uint8Array;
  /** Bytes before page-delta encoding. */
  readonly rawBytes: number;
  /** Manifest only: the first epoch of a new backup, applied on an empty image. */
  readonly base: boolean;
  /** Base manifest only: the join it serves (EpochBarrier.joinSeq); a backup waiting for a later join's base drops it. 0 otherwise. */
  readonly joinSeq: number;  /**
   * Manifest of a primary's stream only: the incarnation of the checkpointer
   * process that sent it (its start, as ServiceStatus.incarnation). A backup
   * follows one stream from its creation or its base on and drops the
   * manifests of another: a primary host that restarted runs a VM made anew
   * under the same term (docs/failover.md). 0 on other chunks.
   */
  readonly primaryIncarnation: number;
  /**
   * Manifest of a primary's stream only: the incarnation of the host agent
   * that assigned that checkpointer (the one its lease renewals name). A
   * backup reports it for the stream it follows (Heartbeat.followedAgentIncarnation).
   * 0 on other chunks.
   */
  readonly primaryAgentIncarnation: number;
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
  /** A NACK from a backup with no image, waiting for a base epoch: the primary joins it again. */
  readonly needsBase: boolean;
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
  /** The supervisor's process start (µs + 1): a new value is a restarted supervisor, whose guest's image starts over. */
  readonly incarnation: number;
  /** Backup: the checkpoint chunks its guest took in (ServiceStatus.chunksStaged); a rise is a join's progress. */
  readonly chunksStaged: number;
  /**
   * Backup: the incarnation of the primary's agent whose stream its guest's
   * image follows (ServiceStatus.followedAgentIncarnation); 0 for none. A
   * restarted failover service tells by it whether the image is the VM the
   * lease's holder protected or one its restarted host made anew.
   */
  readonly followedAgentIncarnation: number;
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
  /** Role primary (a promotion or a peer change): the newest epoch the primary is known to have committed (0 for a backup's role); an epoch-0 image refuses to be promoted by it when above 0. */
  readonly committedEpoch: number;
  /** Names a join: a backup's own seq on its role change; on a primary's that names a peer, that peer's. 0: none. */
  readonly joinSeq: number;
}

/** The services a host agent supervises on its host (every host runs all of them). */
export const HOST_SERVICES = ['guest', 'checkpointer', 'netbuffer', 'acker'] as const;
export type HostService = (typeof HOST_SERVICES)[number];

/**
 * What a host agent tells one of its services to be. `promoting`: the backup
 * image is final, restore it and wait; `stopped`: the host was taken down,
 * do nothing more for this agent.
 */
export const ASSIGNED_ROLES = ['primary', 'backup', 'promoting', 'spare', 'stopped'] as const;
export type AssignedRole = (typeof ASSIGNED_ROLES)[number];

export interface Assignment {
  readonly type: 'assignment';
  readonly vmId: string;
  readonly term: number;
  readonly host: string;
  readonly role: AssignedRole;
  /** primary: its backup ('' for none); backup: its primary. */
  readonly peerHost: string;
  /** Grows with every assignment of one agent incarnation. */
  readonly seq: number;
  /** The agent's start time on its host clock, µs (≥ 1): a restarted agent supersedes its predecessor. */
  readonly incarnation: number;
  /** backup: a new backup that waits for a base epoch. */
  readonly joining: boolean;
  /** primary: the first epoch the checkpointer runs. */
  readonly firstEpoch: number;
  /** The join this membership began with (RoleChange.joinSeq): primary, the one its base serves; backup, the one whose base it waits for. 0: none. */
  readonly joinSeq: number;
}

export interface ServiceStatus {
  readonly type: 'serviceStatus';
  readonly vmId: string;
  readonly term: number;
  readonly host: string;
  readonly service: HostService;
  /** The service's start time on its host clock, µs (≥ 1): a new value is a restart. */
  readonly incarnation: number;
  /** The assignment it runs under (0: none yet), and the agent incarnation that sent it. */
  readonly assignmentSeq: number;
  readonly agentIncarnation: number;
  readonly role: AssignedRole;
  /** guest as backup: applied epoch; checkpointer: committed epoch; guest promoting: the epoch restored from. */
  readonly epoch: number;
  /** guest as backup: the image is complete. */
  readonly synced: boolean;
  /** promoting: restored and ready to run. */
  readonly ready: boolean;
  /** guest promoting: per connection (by id − 1), the restored TCP's highest sequence sent + 1; empty otherwise. */
  readonly txEndSeqs: readonly number[];
  /** guest: checkpoint chunks it took in for an epoch as a backup, since it started (every image counted); 0 otherwise. */
  readonly chunksStaged: number;
  /** This report's number within the service's incarnation, from 1: a late copy of an earlier one is older than the newest taken. */
  readonly reportSeq: number;
  /** guest as backup: the incarnation of the primary's agent whose stream its image follows (CheckpointChunk.primaryAgentIncarnation); 0 otherwise. */
  readonly followedAgentIncarnation: number;
}

/**
 * Adaptive epochs: a connection's output of `epoch` waits for its commit and
 * the guest has been quiet on it since (the sender's quiet interval). A hint:
 * the checkpointer may end the epoch early; losing one costs latency only.
 */
export interface OutputIdle {
  readonly type: 'outputIdle';
  readonly vmId: string;
  readonly term: number;
  readonly epoch: number;
  readonly connId: number;
  /** What the sender holds, of this epoch and later ones (payload and headers). */
  readonly heldBytes: number;
}

export interface ReleasePermit {
  readonly type: 'releasePermit';
  readonly vmId: string;
  readonly term: number;
  readonly host: string;
  /**
   * When the lease renewal it comes from was sent, on the host's clock, µs:
   * nothing leaves under it before (it did not exist). Only the auditor
   * reads it: output released in a hole between permits is caught even when
   * the next permit reaches the auditor late.
   */
  readonly fromUs: number;
  /** Output may leave strictly before this instant of the host's clock, µs. */
  readonly untilUs: number;
  /**
   * Its number among the permits its host's agent sent under this term, from
   * 1, one more each: a gap tells a subscriber that it lost one (the auditor
   * over NATS, where a server that dies mid-delivery reaches some
   * subscribers and not others).
   */
  readonly seq: number;
}

export interface HandoverRequest {
  readonly type: 'handoverRequest';
  readonly vmId: string;
  readonly term: number;
  readonly host: string;
}

export const FAILOVER_STATES = ['protected', 'suspect', 'failingOver', 'promoting', 'unprotected', 'reprotecting'] as const;
export type FailoverStateName = (typeof FAILOVER_STATES)[number];

export interface FailoverStatus {
  readonly type: 'failoverStatus';
  readonly vmId: string;
  readonly term: number;
  readonly state: FailoverStateName;
  readonly primaryHost: string;
  /** The backup it would promote; '' for none. */
  readonly backupHost: string;
  /** Still learning the roles after a restart. */
  readonly recovering: boolean;
}

/** The processes that report on the bus. */
export const REPORTING_SERVICES = ['guest', 'checkpointer', 'netbuffer', 'acker', 'host-agent', 'failover', 'client'] as const;
export type ReportingService = (typeof REPORTING_SERVICES)[number];

export interface ServiceReport {
  readonly type: 'serviceReport';
  readonly vmId: string;
  /** '' for services outside the hosts. */
  readonly host: string;
  readonly service: ReportingService;
  /** The process's start, wall clock µs: a new value is a new process. */
  readonly incarnation: number;
  readonly atUs: number;
  /** The last report of this process. */
  readonly final: boolean;
  /** The service's counters and its shell's, as JSON. */
  readonly statsJson: string;
}

export type WireMessage = Segment | EpochBarrier | EpochEnd | CheckpointChunk | CheckpointAck | EpochCommit | OutputIdle | Heartbeat | RoleChange | Assignment | ServiceStatus | ReleasePermit | HandoverRequest | FailoverStatus | ServiceReport;
export type WireMessageType = WireMessage['type'];
