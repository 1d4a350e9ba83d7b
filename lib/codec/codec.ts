import { DecodeError } from '../errors.js';
import './protobuf-numbers.js';
import { specula } from './gen/specula.js';
import { ChunkSource, HOST_ROLES, TCP_FLAGS_MASK, type CheckpointChunk, type HostRole, type Segment, type WireMessage, type WireMessageType } from './messages.js';

const pb = specula.v1;
const EMPTY = new Uint8Array(0);
export const MAX_WINDOW_FIELD = 0xffff;
export const MAX_WSCALE = 14;
const SHA256_BYTES = 32;
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
    if (!Number.isSafeInteger(value) || value < 0) throw new DecodeError(`${name}.${field} ${value} is not a safe non-negative integer`);
  }
}

export function encodeSegment(seg: Segment): Uint8Array {
  const { type: _type, wscale, ...fields } = seg;
  return pb.Segment.encode({ ...fields, ...(wscale === undefined ? {} : { wscale }) }).finish();
}

/** Decodes and validates; anything malformed throws DecodeError. */
export function decodeSegment(bytes: Uint8Array): Segment {
  const m = decodeWith(pb.Segment, 'Segment', bytes);
  if (m.window > MAX_WINDOW_FIELD) throw new DecodeError(`Segment.window ${m.window} exceeds 16 bits`);
  if ((m.flags & ~TCP_FLAGS_MASK) !== 0) throw new DecodeError(`Segment.flags ${m.flags} has unknown bits`);
  const wscale = m.wscale ?? undefined;
  if (wscale !== undefined && wscale > MAX_WSCALE) throw new DecodeError(`Segment.wscale ${wscale} exceeds ${MAX_WSCALE}`);
  requireSafe('Segment', { seq: m.seq, ack: m.ack, term: m.term, epoch: m.epoch, tsValUs: m.tsValUs, tsEcrUs: m.tsEcrUs });
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
    tsValUs: m.tsValUs,
    tsEcrUs: m.tsEcrUs,
    speculative: m.speculative,
  };
}

function decodeChunk(bytes: Uint8Array): CheckpointChunk {
  const m = decodeWith(pb.CheckpointChunk, 'CheckpointChunk', bytes);
  requireSafe('CheckpointChunk', { term: m.term, epoch: m.epoch, rawBytes: m.rawBytes });
  if (!CHUNK_SOURCES.has(m.source)) throw new DecodeError(`CheckpointChunk.source ${m.source} is unknown`);
  if (m.count === 0 || m.index >= m.count) throw new DecodeError(`CheckpointChunk index ${m.index} of ${m.count} is out of range`);
  if (m.hash.length !== SHA256_BYTES) throw new DecodeError(`CheckpointChunk.hash has ${m.hash.length} bytes, not ${SHA256_BYTES}`);
  return { type: 'checkpointChunk', vmId: m.vmId, term: m.term, epoch: m.epoch, source: m.source as ChunkSource, index: m.index, count: m.count, data: m.data, hash: m.hash, rawBytes: m.rawBytes, base: m.base };
}

export function encode(msg: WireMessage): Uint8Array {
  switch (msg.type) {
    case 'segment':
      return encodeSegment(msg);
    case 'epochBarrier': {
      const { type: _t, ...fields } = msg;
      return pb.EpochBarrier.encode(fields).finish();
    }
    case 'epochEnd': {
      const { type: _t, ...fields } = msg;
      return pb.EpochEnd.encode(fields).finish();
    }
    case 'checkpointChunk': {
      const { type: _t, ...fields } = msg;
      return pb.CheckpointChunk.encode(fields).finish();
    }
    case 'checkpointAck': {
      const { type: _t, ...fields } = msg;
      return pb.CheckpointAck.encode(fields).finish();
    }
    case 'epochCommit': {
      const { type: _t, ...fields } = msg;
      return pb.EpochCommit.encode(fields).finish();
    }
    case 'heartbeat': {
      const { type: _t, ...fields } = msg;
      return pb.Heartbeat.encode(fields).finish();
    }
    case 'roleChange': {
      const { type: _t, ...fields } = msg;
      return pb.RoleChange.encode(fields).finish();
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
      requireSafe('EpochBarrier', { term: m.term, epoch: m.epoch });
      return { type, vmId: m.vmId, term: m.term, epoch: m.epoch, resume: m.resume, base: m.base };
    }
    case 'epochEnd': {
      const m = decodeWith(pb.EpochEnd, 'EpochEnd', bytes);
      requireSafe('EpochEnd', { term: m.term, epoch: m.epoch, txEndSeq: m.txEndSeq });
      return { type, vmId: m.vmId, term: m.term, epoch: m.epoch, txEndSeq: m.txEndSeq, base: m.base };
    }
    case 'checkpointChunk':
      return decodeChunk(bytes);
    case 'checkpointAck': {
      const m = decodeWith(pb.CheckpointAck, 'CheckpointAck', bytes);
      requireSafe('CheckpointAck', { term: m.term, epoch: m.epoch });
      return { type, vmId: m.vmId, term: m.term, epoch: m.epoch, ok: m.ok, reason: m.reason, host: m.host };
    }
    case 'epochCommit': {
      const m = decodeWith(pb.EpochCommit, 'EpochCommit', bytes);
      requireSafe('EpochCommit', { term: m.term, epoch: m.epoch });
      return { type, vmId: m.vmId, term: m.term, epoch: m.epoch };
    }
    case 'heartbeat': {
      const m = decodeWith(pb.Heartbeat, 'Heartbeat', bytes);
      requireSafe('Heartbeat', { term: m.term, epoch: m.epoch, controlSeq: m.controlSeq });
      return { type, vmId: m.vmId, term: m.term, host: m.host, role: requireRole<HostRole>('Heartbeat', m.role, HOST_ROLES), epoch: m.epoch, synced: m.synced, controlSeq: m.controlSeq };
    }
    case 'roleChange': {
      const m = decodeWith(pb.RoleChange, 'RoleChange', bytes);
      requireSafe('RoleChange', { term: m.term, seq: m.seq });
      return { type, vmId: m.vmId, term: m.term, host: m.host, role: requireRole('RoleChange', m.role, ['primary', 'backup'] as const), peerHost: m.peerHost, seq: m.seq };
    }
  }
}
