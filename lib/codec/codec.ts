import { DecodeError } from '../errors.js';
import './protobuf-numbers.js';
import { MAX_SEGMENT_PAYLOAD_BYTES, MAX_STREAM_POSITION } from '../tcp/header.js';
import { CHECKSUM_BYTES } from '../checkpoint/checksum.js';
import { specula } from './gen/specula.js';
import { encodeSegment } from './segment-encoder.js';
import { ASSIGNED_ROLES, MAX_CONNECTIONS, NO_SACK_BLOCKS, ChunkSource, FAILOVER_STATES, HOST_ROLES, HOST_SERVICES, REPORTING_SERVICES, TCP_FLAGS_MASK, type AssignedRole, type CheckpointChunk, type FailoverStateName, type HostRole, type HostService, type ReportingService, type Segment, type WireMessage, type WireMessageType } from './messages.js';

const pb = specula.v1;
const EMPTY = new Uint8Array(0);
/** SACK blocks a segment may carry: four, as without the timestamp option (RFC 2018 §3). */
const MAX_SACK_BLOCKS = 4;
export const MAX_WINDOW_FIELD = 0xffff;
export const MAX_WSCALE = 14;
const CHUNK_SOURCES = new Set<number>(Object.values(ChunkSource));

function decodeWith<T>(codec: { decode(bytes: Uint8Array): T }, name: string, bytes: Uint8Array): T {
  try {
    return codec.decode(bytes);
  } catch (cause) {
    throw new DecodeError(`malformed ${name} (${bytes.length} bytes): ${String(cause)}`, { cause });
  }
}

/** Every 64-bit field must survive as a JS number. */
function requireSafe(name: string, fields: Record<string, number>): void {
  for (const [field, value] of Object.entries(fields)) {
    if (!isSafeCount(value)) throw new DecodeError(`${name}.${field} ${value} is not a safe non-negative integer`);
  }
}

const isSafeCount = (value: number): boolean => Number.isSafeInteger(value) && value >= 0;

/**
 * The highest term or sequence number of the control plane a message may
 * carry: its receivers number the next one above it (a take-over's term, a
 * restarted failover service's next role change), so a counter at 2^53 - 1
 * would leave them none, and a failover service that learned one from a
 * heartbeat asserted on every role change after it. No deployment numbers
 * 2^52 role changes.
 */
export const MAX_CONTROL_COUNTER = 2 ** 52;

function requireCounters(name: string, fields: Record<string, number>): void {
  for (const [field, value] of Object.entries(fields)) {
    if (value > MAX_CONTROL_COUNTER) throw new DecodeError(`${name}.${field} ${value} is past any control counter (${MAX_CONTROL_COUNTER})`);
  }
}

/** Per-connection sequence numbers: one per connection a guest may have, each a safe integer. */
function requireSeqs(name: string, values: readonly number[]): number[] {
  if (values.length > MAX_CONNECTIONS) throw new DecodeError(`${name}.txEndSeqs names ${values.length} connections, at most ${MAX_CONNECTIONS} exist`);
  values.forEach((value, i) => requireSafe(name, { [`txEndSeqs[${i}]`]: value }));
  return [...values];
}

export { encodeSegment };

export { MAX_SEGMENT_PAYLOAD_BYTES };

/** Decodes and validates; anything malformed (a payload no sender builds: over MAX_SEGMENT_PAYLOAD_BYTES) throws DecodeError. */
export function decodeSegment(bytes: Uint8Array): Segment {
  const m = decodeWith(pb.Segment, 'Segment', bytes);
  if (m.payload.length > MAX_SEGMENT_PAYLOAD_BYTES) throw new DecodeError(`Segment.payload has ${m.payload.length} bytes, more than any segment's ${MAX_SEGMENT_PAYLOAD_BYTES}`);
  if (m.window > MAX_WINDOW_FIELD) throw new DecodeError(`Segment.window ${m.window} exceeds 16 bits`);
  if ((m.flags & ~TCP_FLAGS_MASK) !== 0) throw new DecodeError(`Segment.flags ${m.flags} has unknown bits`);
  const wscale = m.wscale ?? undefined;
  if (wscale !== undefined && wscale > MAX_WSCALE) throw new DecodeError(`Segment.wscale ${wscale} exceeds ${MAX_WSCALE}`);
  // Checked without building the record first (one per segment); requireSafe names the field that fails.
  if (!(isSafeCount(m.seq) && isSafeCount(m.ack) && isSafeCount(m.term) && isSafeCount(m.epoch) && isSafeCount(m.tsValUs) && isSafeCount(m.tsEcrUs))) {
    requireSafe('Segment', { seq: m.seq, ack: m.ack, term: m.term, epoch: m.epoch, tsValUs: m.tsValUs, tsEcrUs: m.tsEcrUs });
  }
  if (m.seq > MAX_STREAM_POSITION || m.ack > MAX_STREAM_POSITION) throw new DecodeError(`Segment seq ${m.seq} or ack ${m.ack} is past any stream's positions (${MAX_STREAM_POSITION})`);
  const sackBlocks = m.sackBlocks.length === 0 ? NO_SACK_BLOCKS : m.sackBlocks;
  if (sackBlocks.length % 2 !== 0 || sackBlocks.length > 2 * MAX_SACK_BLOCKS) throw new DecodeError(`Segment.sackBlocks has ${sackBlocks.length} numbers, not up to ${MAX_SACK_BLOCKS} pairs`);
  for (let i = 0; i < sackBlocks.length; i += 2) {
    if (!(isSafeCount(sackBlocks[i]!) && isSafeCount(sackBlocks[i + 1]!))) requireSafe('Segment', { sackStart: sackBlocks[i]!, sackEnd: sackBlocks[i + 1]! });
    if (sackBlocks[i + 1]! <= sackBlocks[i]!) throw new DecodeError(`Segment SACK block [${sackBlocks[i]}, ${sackBlocks[i + 1]}) is empty or reversed`);
    if (sackBlocks[i + 1]! > MAX_STREAM_POSITION) throw new DecodeError(`Segment SACK block [${sackBlocks[i]}, ${sackBlocks[i + 1]}) is past any stream's positions`);
  }
  return {
    type: 'segment',
    vmId: m.vmId,
    term: m.term,
    epoch: m.epoch,
    connId: m.connId,
    seq: m.seq,
    ack: m.ack,
    window: m.window,
    flags: m.flags,
    payload: m.payload.length === 0 ? EMPTY : m.payload,
    mss: m.mss,
    wscale,
    sackPermitted: m.sackPermitted,
    sackBlocks,
    tsValUs: m.tsValUs,
    tsEcrUs: m.tsEcrUs,
    speculative: m.speculative,
  };
}

function decodeChunk(bytes: Uint8Array): CheckpointChunk {
  const m = decodeWith(pb.CheckpointChunk, 'CheckpointChunk', bytes);
  requireSafe('CheckpointChunk', { term: m.term, epoch: m.epoch, rawBytes: m.rawBytes, joinSeq: m.joinSeq, primaryIncarnation: m.primaryIncarnation, primaryAgentIncarnation: m.primaryAgentIncarnation });
  if (!CHUNK_SOURCES.has(m.source)) throw new DecodeError(`CheckpointChunk.source ${m.source} is unknown`);
  if (m.count === 0 || m.index >= m.count) throw new DecodeError(`CheckpointChunk index ${m.index} of ${m.count} is out of range`);
  if (m.hash.length !== CHECKSUM_BYTES) throw new DecodeError(`CheckpointChunk.hash has ${m.hash.length} bytes, not ${CHECKSUM_BYTES}`);
  return { type: 'checkpointChunk', vmId: m.vmId, term: m.term, epoch: m.epoch, source: m.source as ChunkSource, index: m.index, count: m.count, data: m.data, hash: m.hash, rawBytes: m.rawBytes, base: m.base, joinSeq: m.joinSeq, primaryIncarnation: m.primaryIncarnation, primaryAgentIncarnation: m.primaryAgentIncarnation };
}

/**
 * Encoded checkpoint chunks, by the message object: a chunk sent again (a
 * repeated barrier, a NACK) is the same object, and its encoding is a copy
 * of up to `chunkBytes` that need not be made twice. Weak: a chunk nobody
 * holds takes its encoding with it.
 */
const encodedChunks = new WeakMap<WireMessage, Uint8Array>();

export function encode(msg: WireMessage): Uint8Array {
  switch (msg.type) {
    case 'segment':
      return encodeSegment(msg);
    case 'epochBarrier': {
      const { type: _t, ...fields } = msg;
      return pb.EpochBarrier.encode(fields).finish();
    }
    case 'epochEnd': {
      const { type: _t, txEndSeqs, ...fields } = msg;
      return pb.EpochEnd.encode({ ...fields, txEndSeqs: [...txEndSeqs] }).finish();
    }
    case 'checkpointChunk': {
      const known = encodedChunks.get(msg);
      if (known !== undefined) return known;
      const { type: _t, ...fields } = msg;
      const bytes = pb.CheckpointChunk.encode(fields).finish();
      encodedChunks.set(msg, bytes);
      return bytes;
    }
    case 'checkpointAck': {
      const { type: _t, ...fields } = msg;
      return pb.CheckpointAck.encode(fields).finish();
    }
    case 'epochCommit': {
      const { type: _t, ...fields } = msg;
      return pb.EpochCommit.encode(fields).finish();
    }
    case 'outputIdle': {
      const { type: _t, ...fields } = msg;
      return pb.OutputIdle.encode(fields).finish();
    }
    case 'heartbeat': {
      const { type: _t, ...fields } = msg;
      return pb.Heartbeat.encode(fields).finish();
    }
    case 'roleChange': {
      const { type: _t, ...fields } = msg;
      return pb.RoleChange.encode(fields).finish();
    }
    case 'assignment': {
      const { type: _t, ...fields } = msg;
      return pb.Assignment.encode(fields).finish();
    }
    case 'serviceStatus': {
      const { type: _t, txEndSeqs, ...fields } = msg;
      return pb.ServiceStatus.encode({ ...fields, txEndSeqs: [...txEndSeqs] }).finish();
    }
    case 'releasePermit': {
      const { type: _t, ...fields } = msg;
      return pb.ReleasePermit.encode(fields).finish();
    }
    case 'handoverRequest': {
      const { type: _t, ...fields } = msg;
      return pb.HandoverRequest.encode(fields).finish();
    }
    case 'failoverStatus': {
      const { type: _t, ...fields } = msg;
      return pb.FailoverStatus.encode(fields).finish();
    }
    case 'serviceReport': {
      const { type: _t, ...fields } = msg;
      return pb.ServiceReport.encode(fields).finish();
    }
  }
}

function requireRole<R extends string>(name: string, role: string, allowed: readonly R[]): R {
  if (!(allowed as readonly string[]).includes(role)) throw new DecodeError(`${name}.role '${role}' is not one of ${allowed.join(', ')}`);
  return role as R;
}

export function decode(type: WireMessageType, bytes: Uint8Array): WireMessage {
  switch (type) {
    case 'segment':
      return decodeSegment(bytes);
    case 'epochBarrier': {
      const m = decodeWith(pb.EpochBarrier, 'EpochBarrier', bytes);
      requireSafe('EpochBarrier', { term: m.term, epoch: m.epoch, joinSeq: m.joinSeq });
      return { type, vmId: m.vmId, term: m.term, epoch: m.epoch, base: m.base, stagedSources: m.stagedSources, joinSeq: m.joinSeq, local: m.local };
    }
    case 'epochEnd': {
      const m = decodeWith(pb.EpochEnd, 'EpochEnd', bytes);
      requireSafe('EpochEnd', { term: m.term, epoch: m.epoch });
      return { type, vmId: m.vmId, term: m.term, epoch: m.epoch, txEndSeqs: requireSeqs('EpochEnd', m.txEndSeqs), base: m.base, specStaged: m.specStaged, local: m.local };
    }
    case 'checkpointChunk':
      return decodeChunk(bytes);
    case 'checkpointAck': {
      const m = decodeWith(pb.CheckpointAck, 'CheckpointAck', bytes);
      requireSafe('CheckpointAck', { term: m.term, epoch: m.epoch });
      return { type, vmId: m.vmId, term: m.term, epoch: m.epoch, ok: m.ok, reason: m.reason, host: m.host, needsBase: m.needsBase };
    }
    case 'epochCommit': {
      const m = decodeWith(pb.EpochCommit, 'EpochCommit', bytes);
      requireSafe('EpochCommit', { term: m.term, epoch: m.epoch });
      return { type, vmId: m.vmId, term: m.term, epoch: m.epoch };
    }
    case 'outputIdle': {
      const m = decodeWith(pb.OutputIdle, 'OutputIdle', bytes);
      requireSafe('OutputIdle', { term: m.term, epoch: m.epoch, heldBytes: m.heldBytes });
      return { type, vmId: m.vmId, term: m.term, epoch: m.epoch, connId: m.connId, heldBytes: m.heldBytes };
    }
    case 'heartbeat': {
      const m = decodeWith(pb.Heartbeat, 'Heartbeat', bytes);
      requireSafe('Heartbeat', { term: m.term, epoch: m.epoch, controlSeq: m.controlSeq, incarnation: m.incarnation, chunksStaged: m.chunksStaged, followedAgentIncarnation: m.followedAgentIncarnation });
      requireCounters('Heartbeat', { term: m.term, controlSeq: m.controlSeq });
      return { type, vmId: m.vmId, term: m.term, host: m.host, role: requireRole<HostRole>('Heartbeat', m.role, HOST_ROLES), epoch: m.epoch, synced: m.synced, controlSeq: m.controlSeq, incarnation: m.incarnation, chunksStaged: m.chunksStaged, followedAgentIncarnation: m.followedAgentIncarnation };
    }
    case 'roleChange': {
      const m = decodeWith(pb.RoleChange, 'RoleChange', bytes);
      requireSafe('RoleChange', { term: m.term, seq: m.seq, committedEpoch: m.committedEpoch, joinSeq: m.joinSeq });
      requireCounters('RoleChange', { term: m.term, seq: m.seq, joinSeq: m.joinSeq });
      return { type, vmId: m.vmId, term: m.term, host: m.host, role: requireRole('RoleChange', m.role, ['primary', 'backup'] as const), peerHost: m.peerHost, seq: m.seq, committedEpoch: m.committedEpoch, joinSeq: m.joinSeq };
    }
    case 'assignment': {
      const m = decodeWith(pb.Assignment, 'Assignment', bytes);
      requireSafe('Assignment', { term: m.term, seq: m.seq, incarnation: m.incarnation, firstEpoch: m.firstEpoch, joinSeq: m.joinSeq });
      requireCounters('Assignment', { term: m.term, seq: m.seq, joinSeq: m.joinSeq });
      return { type, vmId: m.vmId, term: m.term, host: m.host, role: requireRole<AssignedRole>('Assignment', m.role, ASSIGNED_ROLES), peerHost: m.peerHost, seq: m.seq, incarnation: m.incarnation, joining: m.joining, firstEpoch: m.firstEpoch, joinSeq: m.joinSeq };
    }
    case 'serviceStatus': {
      const m = decodeWith(pb.ServiceStatus, 'ServiceStatus', bytes);
      requireSafe('ServiceStatus', { term: m.term, incarnation: m.incarnation, assignmentSeq: m.assignmentSeq, agentIncarnation: m.agentIncarnation, epoch: m.epoch, chunksStaged: m.chunksStaged, reportSeq: m.reportSeq, followedAgentIncarnation: m.followedAgentIncarnation });
      if (m.reportSeq < 1) throw new DecodeError('ServiceStatus.report_seq is 0: reports are numbered from 1');
      if (!(HOST_SERVICES as readonly string[]).includes(m.service)) throw new DecodeError(`ServiceStatus.service '${m.service}' is not one of ${HOST_SERVICES.join(', ')}`);
      return {
        type,
        vmId: m.vmId,
        term: m.term,
        host: m.host,
        service: m.service as HostService,
        incarnation: m.incarnation,
        assignmentSeq: m.assignmentSeq,
        agentIncarnation: m.agentIncarnation,
        role: requireRole<AssignedRole>('ServiceStatus', m.role, ASSIGNED_ROLES),
        epoch: m.epoch,
        synced: m.synced,
        ready: m.ready,
        txEndSeqs: requireSeqs('ServiceStatus', m.txEndSeqs),
        chunksStaged: m.chunksStaged,
        reportSeq: m.reportSeq,
        followedAgentIncarnation: m.followedAgentIncarnation,
      };
    }
    case 'releasePermit': {
      const m = decodeWith(pb.ReleasePermit, 'ReleasePermit', bytes);
      requireSafe('ReleasePermit', { term: m.term, fromUs: m.fromUs, untilUs: m.untilUs, seq: m.seq });
      if (m.seq < 1) throw new DecodeError('ReleasePermit.seq is 0: permits are numbered from 1');
      if (m.fromUs >= m.untilUs) throw new DecodeError(`ReleasePermit from ${m.fromUs} µs until ${m.untilUs} µs allows nothing`);
      return { type, vmId: m.vmId, term: m.term, host: m.host, fromUs: m.fromUs, untilUs: m.untilUs, seq: m.seq };
    }
    case 'handoverRequest': {
      const m = decodeWith(pb.HandoverRequest, 'HandoverRequest', bytes);
      requireSafe('HandoverRequest', { term: m.term });
      return { type, vmId: m.vmId, term: m.term, host: m.host };
    }
    case 'failoverStatus': {
      const m = decodeWith(pb.FailoverStatus, 'FailoverStatus', bytes);
      requireSafe('FailoverStatus', { term: m.term });
      if (!(FAILOVER_STATES as readonly string[]).includes(m.state)) throw new DecodeError(`FailoverStatus.state '${m.state}' is not one of ${FAILOVER_STATES.join(', ')}`);
      return { type, vmId: m.vmId, term: m.term, state: m.state as FailoverStateName, primaryHost: m.primaryHost, backupHost: m.backupHost, recovering: m.recovering };
    }
    case 'serviceReport': {
      const m = decodeWith(pb.ServiceReport, 'ServiceReport', bytes);
      requireSafe('ServiceReport', { incarnation: m.incarnation, atUs: m.atUs });
      if (!(REPORTING_SERVICES as readonly string[]).includes(m.service)) throw new DecodeError(`ServiceReport.service '${m.service}' is not one of ${REPORTING_SERVICES.join(', ')}`);
      return { type, vmId: m.vmId, host: m.host, service: m.service as ReportingService, incarnation: m.incarnation, atUs: m.atUs, final: m.final, statsJson: m.statsJson };
    }
  }
}
