import { z } from 'zod';
import { SnapshotError } from '../errors.js';
import { rangesInOrder } from './sack-scoreboard.js';

/** SACK blocks a receiver remembers (Linux TCP_NUM_SACKS). */
export const MAX_SACK_BLOCKS = 4;

/**
 * Checkpointed TCP state. A failover restores the guest on the backup from its
 * last checkpoint, so everything that influences an endpoint's future
 * behaviour is here, as plain JSON: numbers, booleans, strings, null, arrays.
 * What comes from the endpoint's options (buffer sizes, RTO bounds, the
 * congestion-control algorithm, timer names) is not: the restoring endpoint is
 * constructed with the same options, and the snapshot names the few it must
 * agree with so a mismatch is refused rather than misread. The send buffer's
 * bytes live in guest memory, restored as pages; the snapshot holds its indices.
 *
 * Restore validates before it changes anything: a snapshot of another version,
 * with a missing field, a field of the wrong type or broken invariants throws
 * SnapshotError and leaves the endpoint as it was.
 *
 * Left out on purpose, as they shape nothing to come: the sender's stats
 * (they count per endpoint instance; a run's summary adds up the guests a
 * failover replaced), the endpoint's count of emitted segments (compared only
 * within one call), the sender's SWS override (true only inside onPersist)
 * and the send buffer's payload slab (allocation only).
 */
/**
 * 2: SACK (the sender's scoreboard and PRR state, the receiver's blocks). 3: a timeout that may yet prove spurious
 * (the sender's `timeoutUndo`). 4: the send buffer's limit while it grows with the window (`sndBufLimitBytes`, present only then).
 * 5: the loss episode a timeout began (`lossEpisode`, present only during one); the RTT estimator as Linux's (`rtt`'s
 * `mdevUs`, `mdevMaxUs`, `rttSeq`).
 */
export const TCP_SNAPSHOT_VERSION = 5;

export const TCP_STATES = ['closed', 'listen', 'syn-sent', 'syn-received', 'established'] as const;
export type TcpState = (typeof TCP_STATES)[number];

/** RttEstimator (Linux's tcp_rtt_estimator). */
export interface RttSnapshot {
  readonly srttUs: number;
  /** The smoothed mean deviation (4·RTTVAR of RFC 6298). */
  readonly mdevUs: number;
  /** The largest mean deviation of the current round. */
  readonly mdevMaxUs: number;
  /** What the RTO adds to SRTT. */
  readonly rttvarUs: number;
  /** The current round ends when snd.una passes it. */
  readonly rttSeq: number;
  /** RTO before backoff. */
  readonly baseRtoUs: number;
  /** The RTO is baseRtoUs · 2^backoffShift (capped). */
  readonly backoffShift: number;
  readonly samples: number;
}

export interface NewRenoSnapshot {
  readonly name: 'newreno';
  readonly cwndBytes: number;
  readonly ssthreshBytes: number;
  readonly bytesAckedInCa: number;
}

export interface CubicSnapshot {
  readonly name: 'cubic';
  readonly cwndBytes: number;
  readonly ssthreshBytes: number;
  readonly wMaxSeg: number;
  readonly kS: number;
  readonly originSeg: number;
  /** Start of the current congestion-avoidance epoch; null outside one. */
  readonly epochStartUs: number | null;
  readonly wEstSeg: number;
  readonly hystart: HystartSnapshot;
}

/** HyStart's state (Linux tcp_cubic): the round it watches and what it has seen. */
export interface HystartSnapshot {
  /** The smallest RTT seen; 0 before any. */
  readonly delayMinUs: number;
  /** It ended slow start; cleared by a timeout. */
  readonly found: boolean;
  readonly roundStartUs: number;
  readonly lastAckUs: number;
  /** snd.nxt when the round began; null before the first ACK. */
  readonly endSeq: number | null;
  /** The smallest RTT of the round's first samples; null before any. */
  readonly currRttUs: number | null;
  readonly sampleCount: number;
}

export interface RaccSnapshot {
  readonly name: 'racc';
  readonly cwndBytes: number;
  readonly ssthreshBytes: number;
}

/** One congestion controller's state, tagged with its algorithm. */
export type CongestionSnapshot = NewRenoSnapshot | CubicSnapshot | RaccSnapshot;

/** TcpSender: sequence space, windows, loss recovery, timers (as deadlines), its controller and estimator. */
/**
 * What the first timeout of a loss episode took away, kept until the episode
 * ends so that a spurious timeout can be undone (Linux's tcp_try_undo_loss
 * with timestamps, the Eifel detection of RFC 3522).
 */
export interface TimeoutUndo {
  readonly priorCwndBytes: number;
  /** Linux's tcp_current_ssthresh: max(ssthresh, 3/4 cwnd). */
  readonly priorSsthreshBytes: number;
  /** When the timeout's first retransmission left: an ACK echoing an earlier send answers an original. */
  readonly retransmittedAtUs: number;
}

export interface TcpSenderSnapshot {
  readonly version: typeof TCP_SNAPSHOT_VERSION;
  readonly sndUna: number;
  readonly sndNxt: number;
  readonly sndMax: number;
  readonly sndWnd: number;
  readonly maxSndWnd: number;
  readonly sndWl1: number;
  readonly sndWl2: number;
  /** Negotiated; at most the option. */
  readonly mssBytes: number;
  readonly finSeq: number | null;
  readonly closeRequested: boolean;
  readonly dupAcks: number;
  readonly inRecovery: boolean;
  readonly partialAckSeen: boolean;
  /** RFC 6582 `recover`. */
  readonly recover: number;
  /** Deadline of the armed retransmission timer; null when it is not armed. */
  readonly rtoAtUs: number | null;
  /** A tail loss probe: the retransmission timer armed as one, and the probe outstanding (absent: neither). */
  readonly tlp?: { readonly probeArmed: boolean; readonly rtoBehindProbeAtUs: number; readonly probeDueAtUs: number; readonly highSeq: number | null; readonly retrans: boolean; readonly sentAtUs: number };
  /** Deadline of the armed persist timer; null when it is not armed. */
  readonly persistAtUs: number | null;
  readonly persistBackoff: number;
  /** −1 before the first transmission. */
  readonly lastSendUs: number;
  readonly cwndLimited: boolean;
  /** SACK was negotiated: loss recovery is RFC 6675's with PRR. */
  readonly sackEnabled: boolean;
  /** The SACK scoreboard: sorted, non-touching [start, end) pairs, flat. */
  readonly sacked: readonly number[];
  /** RFC 6675 HighRxt: one past the highest byte retransmitted by SACK recovery (kept across recoveries, reset by a timeout). */
  readonly highRxt: number;
  /** RFC 6937 PRR state of the current recovery: bytes delivered and sent since it began, and the flight when it began. */
  readonly prrDeliveredBytes: number;
  readonly prrOutBytes: number;
  readonly recoverFsBytes: number;
  /** What PRR lets out before the next ACK. */
  readonly prrBudgetBytes: number;
  /** A timeout that may yet prove spurious; absent when none is pending (most checkpoints: their state stays as long as before). */
  readonly timeoutUndo?: TimeoutUndo;
  /** From a timeout until the ACK reaches `recover`: whether an ACK advanced since the latest timeout (absent outside one). */
  readonly lossEpisode?: { readonly progressed: boolean };
  readonly cc: CongestionSnapshot;
  readonly rtt: RttSnapshot;
}

/** Out-of-order bytes held for reassembly: [seq, seq + length of data). */
export interface ReassemblyPieceSnapshot {
  readonly seq: number;
  /** The bytes, base64. */
  readonly data: string;
}

/** TcpReceiver, with the out-of-order data it holds. */
export interface TcpReceiverSnapshot {
  /** From the options; must match the restoring endpoint's. */
  readonly rcvBufBytes: number;
  readonly rcvWscale: number;
  readonly rcvNxt: number;
  readonly tsRecentUs: number;
  readonly lastAckSent: number;
  readonly finReceived: boolean;
  readonly finSeq: number | null;
  readonly rightEdge: number;
  readonly unackedSegments: number;
  /** Segments still to acknowledge at once (Linux's quick-ack mode). */
  readonly quickAcks: number;
  readonly dupSegments: number;
  readonly outOfOrderSegments: number;
  /** Sorted by seq, non-overlapping, each piece non-empty. */
  readonly outOfOrder: readonly ReassemblyPieceSnapshot[];
  readonly sackEnabled: boolean;
  /** The blocks to SACK, most recent first: flat [start, end) pairs above rcvNxt. */
  readonly sackBlocks: readonly number[];
}

/** SendBuffer indices; its bytes are in the send ring (guest memory). */
export interface SendBufferSnapshot {
  /** From the options; must match the restoring endpoint's (ring offsets depend on it). */
  readonly capacityBytes: number;
  readonly startSeq: number;
  readonly endSeq: number;
}

/** A whole TcpEndpoint. */
export interface TcpEndpointSnapshot {
  readonly version: typeof TCP_SNAPSHOT_VERSION;
  readonly state: TcpState;
  readonly term: number;
  readonly epoch: number;
  /** Shift applied to windows the peer advertises. */
  readonly sndWscale: number;
  /** Deadline of the armed delayed-ACK timer; null when it is not armed. */
  readonly delackAtUs: number | null;
  /** What the application may have written and not had acknowledged (≤ the send buffer's capacity); absent: all of it (no growth). */
  readonly sndBufLimitBytes?: number;
  readonly sendBuffer: SendBufferSnapshot;
  readonly sender: TcpSenderSnapshot;
  readonly receiver: TcpReceiverSnapshot;
}

// ── validation ───────────────────────────────────────────────────────────

const int = z.number().int();
const count = int.min(0);
const finite = z.number();
const timeUs = int;
const version = z.literal(TCP_SNAPSHOT_VERSION);

export const rttSnapshotSchema: z.ZodType<RttSnapshot> = z.strictObject({
  srttUs: finite.min(0),
  mdevUs: finite.min(0),
  mdevMaxUs: finite.min(0),
  rttvarUs: finite.min(0),
  rttSeq: int,
  baseRtoUs: int.min(1),
  backoffShift: count,
  samples: count,
});

export const congestionSnapshotSchema: z.ZodType<CongestionSnapshot> = z.discriminatedUnion('name', [
  z.strictObject({ name: z.literal('newreno'), cwndBytes: finite.positive(), ssthreshBytes: finite.positive(), bytesAckedInCa: finite.min(0) }),
  z.strictObject({
    name: z.literal('cubic'),
    cwndBytes: finite.positive(),
    ssthreshBytes: finite.positive(),
    wMaxSeg: finite.min(0),
    kS: finite.min(0),
    originSeg: finite.min(0),
    epochStartUs: timeUs.nullable(),
    wEstSeg: finite.min(0),
    hystart: z.strictObject({ delayMinUs: finite.min(0), found: z.boolean(), roundStartUs: timeUs, lastAckUs: timeUs, endSeq: int.nullable(), currRttUs: finite.min(0).nullable(), sampleCount: count }),
  }),
  z.strictObject({ name: z.literal('racc'), cwndBytes: finite.positive(), ssthreshBytes: finite.positive() }),
]);

export const tcpSenderSnapshotSchema: z.ZodType<TcpSenderSnapshot> = z
  .strictObject({
    version,
    sndUna: int,
    sndNxt: int,
    sndMax: int,
    sndWnd: count,
    maxSndWnd: count,
    sndWl1: int,
    sndWl2: int,
    mssBytes: int.min(1),
    finSeq: int.nullable(),
    closeRequested: z.boolean(),
    dupAcks: count,
    inRecovery: z.boolean(),
    partialAckSeen: z.boolean(),
    recover: int,
    rtoAtUs: timeUs.nullable(),
    tlp: z.strictObject({ probeArmed: z.boolean(), rtoBehindProbeAtUs: timeUs, probeDueAtUs: timeUs, highSeq: int.nullable(), retrans: z.boolean(), sentAtUs: timeUs }).optional(),
    persistAtUs: timeUs.nullable(),
    persistBackoff: count,
    lastSendUs: timeUs.min(-1),
    cwndLimited: z.boolean(),
    sackEnabled: z.boolean(),
    sacked: z.array(int),
    highRxt: int,
    prrDeliveredBytes: count,
    prrOutBytes: count,
    recoverFsBytes: count,
    prrBudgetBytes: int,
    timeoutUndo: z.strictObject({ priorCwndBytes: finite.positive(), priorSsthreshBytes: finite.positive(), retransmittedAtUs: timeUs }).optional(),
    lossEpisode: z.strictObject({ progressed: z.boolean() }).optional(),
    cc: congestionSnapshotSchema,
    rtt: rttSnapshotSchema,
  })
  .refine((s) => s.sndUna <= s.sndNxt && s.sndNxt <= s.sndMax, { message: 'needs sndUna ≤ sndNxt ≤ sndMax', path: ['sndNxt'] })
  .refine((s) => s.finSeq === null || s.closeRequested, { message: 'a FIN needs closeRequested', path: ['finSeq'] })
  .refine((s) => s.persistAtUs === null || s.sndUna === s.sndMax, { message: 'a persist timer needs nothing in flight', path: ['persistAtUs'] })
  .refine((s) => s.lossEpisode === undefined || !s.inRecovery, { message: 'a fast recovery cannot begin inside a timeout\'s loss episode', path: ['lossEpisode'] })
  .refine((s) => rangesInOrder(s.sacked, s.sndUna) && (s.sacked.length === 0 || s.sacked[s.sacked.length - 1]! <= s.sndMax), { message: 'SACKed ranges must be sorted, non-touching and within [sndUna, sndMax]', path: ['sacked'] });

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

const pieceSchema: z.ZodType<ReassemblyPieceSnapshot> = z.strictObject({
  seq: int,
  data: z.string().min(1).regex(BASE64, 'not base64'),
});

function blocksAbove(blocks: readonly number[], rcvNxt: number): boolean {
  if (blocks.length % 2 !== 0) return false;
  for (let i = 0; i < blocks.length; i += 2) if (blocks[i]! < rcvNxt || blocks[i + 1]! <= blocks[i]!) return false;
  return true;
}

/** Pieces sorted by seq, non-overlapping (they may touch) and non-empty, all above `rcvNxt`. */
function piecesInOrder(pieces: readonly ReassemblyPieceSnapshot[], rcvNxt: number): boolean {
  let end = rcvNxt + 1;
  for (const p of pieces) {
    if (p.seq < end) return false;
    end = p.seq + base64Length(p.data);
  }
  return true;
}

export const tcpReceiverSnapshotSchema: z.ZodType<TcpReceiverSnapshot> = z
  .strictObject({
    rcvBufBytes: int.min(1),
    rcvWscale: int.min(0).max(14),
    rcvNxt: int,
    tsRecentUs: timeUs.min(0),
    lastAckSent: int,
    finReceived: z.boolean(),
    finSeq: int.nullable(),
    rightEdge: int,
    unackedSegments: count,
    quickAcks: count,
    dupSegments: count,
    outOfOrderSegments: count,
    outOfOrder: z.array(pieceSchema),
    sackEnabled: z.boolean(),
    sackBlocks: z.array(int).max(2 * MAX_SACK_BLOCKS),
  })
  .refine((s) => blocksAbove(s.sackBlocks, s.rcvNxt), { message: 'SACK blocks must be non-empty [start, end) pairs above rcvNxt', path: ['sackBlocks'] })
  .refine((s) => piecesInOrder(s.outOfOrder, s.rcvNxt), { message: 'out-of-order pieces must lie above rcvNxt, sorted, without overlap', path: ['outOfOrder'] })
  .refine((s) => s.outOfOrder.reduce((n, p) => n + base64Length(p.data), 0) <= s.rcvBufBytes, { message: 'out-of-order bytes exceed the receive buffer', path: ['outOfOrder'] });

export const sendBufferSnapshotSchema: z.ZodType<SendBufferSnapshot> = z
  .strictObject({ capacityBytes: int.min(1), startSeq: int, endSeq: int })
  .refine((s) => s.startSeq <= s.endSeq && s.endSeq - s.startSeq <= s.capacityBytes, { message: 'needs startSeq ≤ endSeq ≤ startSeq + capacityBytes', path: ['endSeq'] });

export const tcpEndpointSnapshotSchema: z.ZodType<TcpEndpointSnapshot> = z
  .strictObject({
    version,
    state: z.enum(TCP_STATES),
    term: count,
    epoch: count,
    sndWscale: int.min(0).max(14),
    delackAtUs: timeUs.nullable(),
    sndBufLimitBytes: int.min(1).optional(),
    sendBuffer: sendBufferSnapshotSchema,
    sender: tcpSenderSnapshotSchema,
    receiver: tcpReceiverSnapshotSchema,
  })
  .refine((s) => (s.sndBufLimitBytes ?? s.sendBuffer.capacityBytes) <= s.sendBuffer.capacityBytes, { message: 'the send buffer limit exceeds its capacity', path: ['sndBufLimitBytes'] })
  .refine((s) => s.sendBuffer.endSeq - s.sendBuffer.startSeq <= (s.sndBufLimitBytes ?? s.sendBuffer.capacityBytes), { message: 'the send buffer holds more than its limit', path: ['sndBufLimitBytes'] })
  .refine((s) => s.sender.sndUna >= s.sendBuffer.startSeq || s.state !== 'established', { message: 'the send buffer released unacknowledged bytes', path: ['sendBuffer', 'startSeq'] });

/**
 * Checks `value` against `schema`; throws SnapshotError naming every bad field.
 * A wrong version is reported as such before anything else.
 */
export function parseSnapshot<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  if (typeof value === 'object' && value !== null && 'version' in value && value.version !== TCP_SNAPSHOT_VERSION) {
    throw new SnapshotError(`${what} snapshot has version ${JSON.stringify(value.version)}; this build restores version ${TCP_SNAPSHOT_VERSION}`);
  }
  const r = schema.safeParse(value);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`);
    throw new SnapshotError(`invalid ${what} snapshot: ${issues.join('; ')}`, { cause: r.error });
  }
  return r.data;
}

/** Throws SnapshotError unless `ok`. */
export function expectSnapshot(ok: boolean, message: string): asserts ok {
  if (!ok) throw new SnapshotError(message);
}

// ── bytes as base64 ──────────────────────────────────────────────────────

export function bytesToBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Decodes a string that matched BASE64. */
export function base64ToBytes(text: string): Uint8Array {
  const buf = Buffer.from(text, 'base64');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).slice();
}

function base64Length(text: string): number {
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  return (text.length / 4) * 3 - pad;
}
