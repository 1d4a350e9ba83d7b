import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chunkIntact, makeChunks, makeManifest, MAX_HANDOVER_CHUNKS, splitBytes } from '../../../lib/checkpoint/chunks.js';
import { bytesEqual } from '../../../lib/checkpoint/hash.js';
import { decodeSpecDeltas, encodeSpecDeltas, type AckerConnectionState } from '../../../lib/checkpoint/spec-delta.js';
import { ChunkSource, TcpFlag, type Assignment, type CheckpointChunk, type HandoverRequest, type Segment, type ServiceStatus, type WireMessage } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import type { Effect } from '../../../lib/runtime/types.js';
import { STATUS_TIMER } from '../../../lib/supervision/index.js';
import { TIMER_OUTPUT_IDLE } from '../../../lib/epoch-policy/index.js';
import { defaultTcpOptions } from '../../../lib/tcp/options.js';
import { ROLE_HISTORY_ENTRIES } from '../../../lib/results/role-history.js';
import { AckerCore, type AckerOptions } from '../../../services/acker/core.js';
import { activate, AGENT_INCARNATION, assignment, FOREVER_US, permit } from '../support/supervision.js';
import { chunksOn, concat, message, segment, segmentsOn, sentOn, streamBytes, timer, timersSet, VM } from './support.js';
import { joinRun, runLength } from '../../../lib/checkpoint/byte-run.js';

const HOST = 'host-a';
/** The term these ackers serve; not 0, so that a segment stamped with it is told from one that is not. */
const TERM = 3;
const v = subjects(VM);
const s = v.host(HOST);
const ASSIGN = s.assign('acker');
const MSS = 1000;
const CLIENT_ISN = 1000;
const GUEST_ISN = 5000;
/** First data byte of the guest's stream. */
const D = GUEST_ISN + 1;
const CLIENT_WSCALE = 7;
const CLIENT_WINDOW = 1000; // × 2^7 = 128000 bytes
const HANDOVER_RETRY_US = 2_000;
const HANDOVER_RETRY_MAX_US = 16_000;
const STATUS_INTERVAL_US = 50_000;
const TIMER_HANDOVER = 'acker.handover';

interface Setup {
  readonly specBufferBytes?: number;
  readonly specWindow?: AckerOptions['specWindow'];
  readonly chunkBytes?: number;
  readonly clientWscale?: number | undefined;
  readonly guestWscale?: number | undefined;
  readonly plantedBug?: AckerOptions['plantedBug'];
  readonly outputWatch?: AckerOptions['outputWatch'];
  readonly uncommittedEpochsMax?: number;
}

class Harness {
  readonly acker: AckerCore;
  nowUs = 0;
  /** The guest's highest sequence sent + 1, as its EpochEnd reports it. */
  txEndSeq = 0;

  constructor(readonly options: AckerOptions) {
    this.acker = new AckerCore(options);
  }

  run(subject: string, msg: WireMessage): Effect[] {
    this.nowUs += 10;
    return this.acker.handle(message(subject, msg), this.nowUs);
  }

  /** A guest data segment; its header (ack, window, timestamps) names its epoch. */
  guest(epoch: number, seq: number, len: number): Effect[] {
    this.txEndSeq = Math.max(this.txEndSeq, seq + len);
    return this.run(s.tx, guestSegment(epoch, seq, len));
  }

  epochEnd(epoch: number, base = false): Effect[] {
    // The guest, the acker and the checkpointer serve one term: the acker ignores any other.
    return this.run(s.txEpoch, { type: 'epochEnd', vmId: VM, term: this.acker.term, epoch, txEndSeqs: [this.txEndSeq], base, specStaged: false, local: false });
  }

  commit(epoch: number): Effect[] {
    return this.run(s.commit, { type: 'epochCommit', vmId: VM, term: this.acker.term, epoch });
  }

  clientAck(ack: number, extra: Partial<Segment> = {}): Effect[] {
    return this.run(v.wireIn, segment({ seq: CLIENT_ISN + 1, ack, window: CLIENT_WINDOW, flags: TcpFlag.ACK, ...extra }));
  }

  timer(name: string): Effect[] {
    this.nowUs += 10;
    return this.acker.handle(timer(name), this.nowUs);
  }

  /** An assignment from the host agent, at the next instant. */
  assign(a: Assignment): Effect[] {
    return this.run(ASSIGN, a);
  }

  permit(untilUs = FOREVER_US, term = TERM): Effect[] {
    return this.run(s.permit, permit(VM, HOST, term, untilUs));
  }
}

const guestSegment = (epoch: number, seq: number, len: number): Segment =>
  segment({ term: TERM, epoch, seq, ack: CLIENT_ISN + 1, window: 100 + epoch, tsValUs: 1000 * epoch + 1, tsEcrUs: 500 * epoch, flags: TcpFlag.ACK | TcpFlag.PSH, payload: streamBytes(seq, len) });

const ackerOptions = (setup: Setup = {}, mode: 'spec' | 'remus' = 'spec'): AckerOptions => ({
  vmId: VM,
  host: HOST,
  mode,
  subjects: s,
  wireInSubject: v.wireIn,
  wireOutSubject: v.wireOut,
  handoverRetryUs: HANDOVER_RETRY_US,
  handoverRetryMaxUs: HANDOVER_RETRY_MAX_US,
  partRepeatGapUs: 1_000,
  replicationBytesPerSec: 0,
  statusIntervalUs: STATUS_INTERVAL_US,
  tcp: defaultTcpOptions({ mssBytes: MSS }),
  specBufferBytes: setup.specBufferBytes ?? 64 * 1024,
  specWindow: setup.specWindow ?? 'buffer',
  chunkBytes: setup.chunkBytes ?? 4096,
  recordDigests: false,
  uncommittedEpochsMax: setup.uncommittedEpochsMax ?? 12,
  ...(setup.plantedBug === undefined ? {} : { plantedBug: setup.plantedBug }),
  ...(setup.outputWatch === undefined ? {} : { outputWatch: setup.outputWatch }),
});

/** An acker its host agent made primary of TERM; with a permit that outlasts the test unless `withPermit` is false. */
function primary(setup: Setup = {}, mode: 'spec' | 'remus' = 'spec', withPermit = true): Harness {
  const h = new Harness(ackerOptions(setup, mode));
  activate(h.acker, assignment(VM, HOST, 'primary', TERM), withPermit ? { assign: ASSIGN, permit: s.permit } : { assign: ASSIGN });
  return h;
}

/** The handshake as the acker sees it: client SYN in, guest SYN-ACK out, client ACK in. */
function handshake(h: Harness, setup: Setup = {}): Harness {
  const clientWscale = 'clientWscale' in setup ? setup.clientWscale : CLIENT_WSCALE;
  const guestWscale = 'guestWscale' in setup ? setup.guestWscale : 7;
  const syn = segment({ seq: CLIENT_ISN, flags: TcpFlag.SYN, window: 65535, wscale: clientWscale, mss: MSS });
  const fwd = h.run(v.wireIn, syn);
  expect(sentOn(fwd, s.rx)).toEqual([{ ...syn, term: TERM }]); // the guest's own handshake, unchanged but for the term it serves
  expect(fwd).toHaveLength(1);
  expect(h.run(s.tx, segment({ term: TERM, epoch: 1, seq: GUEST_ISN, ack: CLIENT_ISN + 1, flags: TcpFlag.SYN | TcpFlag.ACK, window: 500, wscale: guestWscale, mss: MSS }))).toEqual([]);
  h.clientAck(D);
  return h;
}

/** A primary acker, connected. */
const connected = (setup: Setup = {}): Harness => handshake(primary(setup), setup);

const specAcks = (effects: Effect[]) => segmentsOn(effects, s.rx);
const wireOut = (effects: Effect[]) => segmentsOn(effects, v.wireOut);
const specDelta = (effects: Effect[]) => decodeSpecDeltas(concat(chunksOn(effects, s.ckptStage).map((c) => c.data)))[0]!;
const statuses = (effects: Effect[]) => sentOn(effects, s.status) as ServiceStatus[];
const handoverRequests = (effects: Effect[]) => sentOn(effects, s.handoverRequest) as HandoverRequest[];
/** The counters of the one connection an acker served. */
const wire = (h: Harness) => {
  expect(h.acker.wireStats).toHaveLength(1);
  return h.acker.wireStats[0]!;
};

describe('AckerCore, spec mode', () => {
  it('subscribes to its assignments and permits, and as primary to the guest segments, epoch ends, client segments and commits', () => {
    expect(new AckerCore(ackerOptions()).subscriptions).toEqual([ASSIGN, s.permit]);
    expect(primary().acker.subscriptions).toEqual([ASSIGN, s.permit, s.tx, s.txData, s.txEpoch, v.wireIn, s.commit]);
  });

  it("passes on every client ACK while the guest has sent nothing past its SYN-ACK: the first may have been lost on the bus, and the guest waits in SYN-RECEIVED for it (vopr seed 2600)", () => {
    const h = connected(); // its client ACK went to the guest: say the bus lost it
    // The guest repeats its SYN-ACK, the client its ACK: nothing new in it, and the guest must still get it.
    expect(h.run(s.tx, segment({ term: TERM, epoch: 2, seq: GUEST_ISN, ack: CLIENT_ISN + 1, flags: TcpFlag.SYN | TcpFlag.ACK, window: 500, wscale: 7, mss: MSS }))).toEqual([]);
    const again = specAcks(h.clientAck(D));
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ ack: D, seq: CLIENT_ISN + 1, term: TERM, flags: TcpFlag.ACK });
    // Once the guest sends past its SYN-ACK, it is established: a repeated client ACK with nothing new stays here.
    h.guest(2, D, 1000);
    expect(specAcks(h.clientAck(D))).toEqual([]);
  });

  it("holds back the client's segments while the guest's SYN-ACK has not come here, and passes them once the guest sends it again (vopr seed 101858)", () => {
    const h = primary();
    const syn = segment({ seq: CLIENT_ISN, flags: TcpFlag.SYN, window: 65535, wscale: CLIENT_WSCALE, mss: MSS });
    expect(sentOn(h.run(v.wireIn, syn), s.rx)).toHaveLength(1);
    // The guest's SYN-ACK was lost on its way here; the netbuffer released it, and the client answers with its ACK and a request.
    expect(h.clientAck(D)).toEqual([]);
    expect(h.clientAck(D, { payload: new Uint8Array(100) })).toEqual([]);
    expect(h.acker.stats.clientSegmentsBeforeSynAck).toBe(2);
    // The guest, still in SYN-RECEIVED, sends its SYN-ACK again: the connection opens here, and the client's next copies pass.
    h.run(s.tx, segment({ term: TERM, epoch: 3, seq: GUEST_ISN, ack: CLIENT_ISN + 1, flags: TcpFlag.SYN | TcpFlag.ACK, window: 500, wscale: 7, mss: MSS }));
    expect(specAcks(h.clientAck(D, { payload: new Uint8Array(100) }))).toMatchObject([{ seq: CLIENT_ISN + 1, ack: D, term: TERM }]);
    expect(h.acker.stats.clientSegmentsBeforeSynAck).toBe(2);
    // The next epoch's part carries the connection, so a promoted acker takes it over.
    expect(specDelta(h.epochEnd(3)).connection).toMatchObject({ connId: 1, clientWscale: CLIENT_WSCALE, guestOfferedWscale: true });
  });

  it('acknowledges each guest data segment at once, speculatively, up to the highest contiguous byte held', () => {
    const h = connected();
    let expectedEnd = D;
    for (const len of [1000, 1000, 500]) {
      const effects = h.guest(1, expectedEnd, len);
      expectedEnd += len;
      const acks = specAcks(effects);
      expect(acks).toHaveLength(1);
      expect(acks[0]).toMatchObject({ ack: expectedEnd, speculative: true, flags: TcpFlag.ACK, seq: CLIENT_ISN + 1, connId: 1, payload: new Uint8Array(0) });
      // The guest's timestamp is echoed so it can measure its (short) RTT to the acker.
      expect(acks[0]!.tsEcrUs).toBe(1001);
      expect(wireOut(effects)).toEqual([]);
    }
    expect(h.acker.specBufferBytes).toBe(2500);
    expect(h.acker.stats.specAcksSent).toBe(3);
  });

  it("advertises the free speculative buffer as the window, scaled by the client's offered shift", () => {
    const h = connected({ specBufferBytes: 64 * 1024 });
    const [ack] = specAcks(h.guest(1, D, 1000));
    expect(ack!.window).toBe(Math.floor((64 * 1024 - 1000) / 2 ** CLIENT_WSCALE));
  });

  it('advertises an unscaled window (at most 65535) when the guest did not offer window scaling', () => {
    const h = connected({ specBufferBytes: 256 * 1024, guestWscale: undefined });
    const [ack] = specAcks(h.guest(1, D, 1000));
    expect(ack!.window).toBe(65535);
    const small = connected({ specBufferBytes: 8000, guestWscale: undefined });
    expect(specAcks(small.guest(1, D, 1000))[0]!.window).toBe(7000);
  });

  it('re-acknowledges a retransmitted segment it already holds without taking its bytes twice', () => {
    const h = connected();
    h.guest(1, D, 1000);
    const again = specAcks(h.guest(1, D, 1000));
    expect(again[0]!.ack).toBe(D + 1000);
    expect(h.acker.specBufferBytes).toBe(1000);
    // An overlapping segment contributes only its new bytes.
    expect(specAcks(h.guest(1, D + 500, 1000))[0]!.ack).toBe(D + 1500);
    expect(h.acker.specBufferBytes).toBe(1500);
  });

  it('refuses and counts a segment beyond the free space, and does not acknowledge it', () => {
    const h = connected({ specBufferBytes: 2500 });
    h.guest(1, D, 2000);
    const effects = h.guest(1, D + 2000, 1000);
    expect(h.acker.stats.segmentsRefused).toBe(1);
    expect(h.acker.specBufferBytes).toBe(2000);
    const [ack] = specAcks(effects);
    expect(ack!.ack).toBe(D + 2000); // a duplicate ACK, not covering the refused bytes
    expect(ack!.window).toBe(Math.floor(500 / 2 ** CLIENT_WSCALE));
    // What fits is taken.
    expect(specAcks(h.guest(1, D + 2000, 500))[0]!.ack).toBe(D + 2500);
    expect(h.acker.stats.specBufferBytesMax).toBe(2500);
  });

  it('drops and counts segments of a connection no guest has, from the guest or the client, and keeps serving the others', () => {
    const h = connected();
    for (const connId of [0, 3, 1_000]) {
      expect(h.run(s.tx, { ...guestSegment(1, D, 1000), connId })).toEqual([]);
      expect(h.run(v.wireIn, { ...segment({ seq: CLIENT_ISN + 1, ack: D, flags: TcpFlag.ACK, window: CLIENT_WINDOW }), connId })).toEqual([]);
    }
    expect(h.acker.stats.unknownConnections).toBe(6);
    expect(h.acker.specBufferBytes).toBe(0);
    expect(wire(h)).toBeDefined(); // still the one connection
    expect(specAcks(h.guest(1, D, 1000))[0]!.ack).toBe(D + 1000);
  });

  it("under the paper's window, advertises the client's window whatever the buffer holds", () => {
    const h = connected({ specBufferBytes: 8000, specWindow: 'client' });
    const [ack] = specAcks(h.guest(1, D, 6000));
    expect(ack!.window).toBe(CLIENT_WINDOW);
    expect(ack!.ack).toBe(D + 6000);
  });

  it("under the paper's window, drops a segment that does not fit without an ACK, and takes it once there is room", () => {
    const h = connected({ specBufferBytes: 2500, specWindow: 'client' });
    h.guest(1, D, 2000);
    expect(specAcks(h.guest(1, D + 2000, 1000))).toEqual([]);
    expect(specAcks(h.guest(1, D + 3000, 1000))).toEqual([]); // behind the dropped one: no duplicate ACK either
    expect(h.acker.stats.segmentsRefused).toBe(2);
    expect(h.acker.specBufferBytes).toBe(2000);
    h.epochEnd(1);
    h.commit(1);
    h.clientAck(D + 2000); // the client has the epoch: the buffer is free again
    expect(specAcks(h.guest(2, D + 2000, 1000))[0]!.ack).toBe(D + 3000);
  });

  it("keeps a connection's bytes out of an epoch whose end names no end for it (only a malformed guest sends one), counted, and commits them with the next", () => {
    const h = connected();
    h.guest(1, D, 1000);
    const part = specDelta(h.run(s.txEpoch, { type: 'epochEnd', vmId: VM, term: h.acker.term, epoch: 1, txEndSeqs: [], base: false, specStaged: false, local: false }));
    expect(part.bytes).toEqual(new Uint8Array(0));
    expect(h.acker.stats.epochEndsMissingConnections).toBe(1);
    expect(wireOut(h.commit(1))).toEqual([]);
    expect(runLength(specDelta(h.epochEnd(2)).bytes)).toBe(1000);
    expect(wireOut(h.commit(2)).map((x) => x.seq)).toEqual([D]);
  });

  it('refuses and counts a segment that leaves a gap (an earlier one was lost)', () => {
    const h = connected();
    h.guest(1, D, 1000);
    const [ack] = specAcks(h.guest(1, D + 2000, 1000));
    expect(h.acker.stats.segmentsRefused).toBe(1);
    expect(ack!.ack).toBe(D + 1000);
    expect(h.acker.specBufferBytes).toBe(1000);
  });

  it('sends nothing to the client before the commit of an epoch end covering the data', () => {
    const h = connected();
    const effects: Effect[] = [];
    effects.push(...h.guest(1, D, 1000), ...h.guest(1, D + 1000, 1000));
    effects.push(...h.epochEnd(1));
    effects.push(...h.guest(2, D + 2000, 1000));
    // Commit of a later epoch whose end the acker never saw releases nothing of it.
    expect(wireOut(effects)).toEqual([]);
    const out = wireOut(h.commit(1));
    expect(out.map((x) => [x.seq, x.payload.length])).toEqual([
      [D, 1000],
      [D + 1000, 1000],
    ]);
    expect(h.acker.stats.committedSeq).toBe(D + 2000);
    expect(wireOut(h.commit(2))).toEqual([]); // no epoch end for epoch 2 yet: its bytes stay
    expect(h.acker.stats.committedSeq).toBe(D + 2000);
  });

  it("drops and counts another VM's messages on its subjects: another VM's commit releases nothing, its bytes enter no buffer", () => {
    const h = connected();
    h.guest(1, D, 1000);
    h.epochEnd(1);
    const other = 'another-vm';
    expect(wireOut(h.run(s.commit, { type: 'epochCommit', vmId: other, term: h.acker.term, epoch: 1 }))).toEqual([]);
    expect(specAcks(h.run(s.tx, { ...guestSegment(1, D + 1000, 1000), vmId: other }))).toEqual([]);
    expect(h.acker.stats.otherVmMessages).toBe(2);
    expect(h.acker.stats.committedSeq).toBeLessThan(D + 1000);
    // Its own commit releases its own bytes.
    expect(wireOut(h.commit(1)).map((x) => x.seq)).toEqual([D]);
  });

  it("keeps an epoch's header that a later epoch's segment overtook on the bus, so its commit sends its data under it", () => {
    const h = connected();
    // Epoch 2's pure ACK (on tx) comes before epoch 1's data (on tx.data): no order between two subjects.
    h.run(s.tx, segment({ ...guestSegment(2, D + 1000, 0), ack: CLIENT_ISN + 9, window: 222 }));
    h.guest(1, D, 1000);
    h.epochEnd(1);
    const [first] = wireOut(h.commit(1));
    expect(first).toMatchObject({ seq: D, epoch: 1, ack: CLIENT_ISN + 1, window: 101 });
    // Epoch 2 commits under its own header: the client's view only moves forward.
    h.guest(2, D + 1000, 1000);
    h.epochEnd(2);
    expect(wireOut(h.commit(2)).map((x) => [x.seq, x.epoch, x.ack])).toEqual([[D + 1000, 2, CLIENT_ISN + 1]]);
  });

  it('survives a guest header of a far epoch (forged): real epochs still commit under their own headers', () => {
    const h = connected();
    h.run(s.tx, segment({ ...guestSegment(1_000_000_000, D, 0) }));
    h.guest(1, D, 1000);
    h.epochEnd(1);
    expect(wireOut(h.commit(1)).map((x) => [x.seq, x.epoch])).toEqual([[D, 1]]);
  });

  it("passes a late copy of the client's SYN to the guest without taking the connection's state back", () => {
    const h = connected();
    h.run(v.wireIn, segment({ seq: CLIENT_ISN + 1, ack: D, window: CLIENT_WINDOW, flags: TcpFlag.ACK, payload: Uint8Array.of(1, 2, 3) }));
    const before = h.acker.connectionState();
    const late = h.run(v.wireIn, segment({ seq: CLIENT_ISN, flags: TcpFlag.SYN, window: 1234, wscale: 3, mss: MSS }));
    expect(sentOn(late, s.rx)).toHaveLength(1);
    expect(h.acker.stats.duplicateClientSyns).toBe(1);
    expect(h.acker.connectionState()).toEqual(before);
    expect(before).toMatchObject({ clientNxt: CLIENT_ISN + 4, clientWscale: CLIENT_WSCALE, clientSynWindow: 65535 });
  });

  it('sends committed data with the header of the newest committed guest segment, never an uncommitted one', () => {
    const h = connected();
    h.guest(1, D, 1000);
    h.run(s.tx, segment({ ...guestSegment(1, D + 1000, 0), ack: CLIENT_ISN + 7, window: 111 })); // a pure ACK late in epoch 1
    h.epochEnd(1);
    h.guest(2, D + 1000, 1000); // header of epoch 2: ack CLIENT_ISN + 1, window 102
    h.run(s.tx, segment({ ...guestSegment(2, D + 2000, 0), ack: CLIENT_ISN + 50, window: 222 }));
    h.epochEnd(2);
    const [first] = wireOut(h.commit(1));
    expect(first).toMatchObject({ seq: D, ack: CLIENT_ISN + 7, window: 111, epoch: 1, speculative: false, tsValUs: 1001, tsEcrUs: 500 });
    expect(bytesEqual(first!.payload, streamBytes(D, 1000))).toBe(true);
    expect(first!.flags & TcpFlag.ACK).toBe(TcpFlag.ACK);
    expect(first!.flags & TcpFlag.PSH).toBe(TcpFlag.PSH); // last committed byte
    h.clientAck(D + 1000);
    const [second] = wireOut(h.commit(2));
    expect(second).toMatchObject({ seq: D + 1000, ack: CLIENT_ISN + 50, window: 222, epoch: 2 });
    expect(bytesEqual(second!.payload, streamBytes(D + 1000, 1000))).toBe(true);
  });

  it('keeps at most uncommittedEpochsMax epochs waiting for a commit: a newer one takes the newest place, and no byte leaves before its own epoch commits', () => {
    const h = connected({ uncommittedEpochsMax: 3 });
    // Six epochs end while no commit comes (commits lost on the bus): epochs 3 to 5 give way to 6.
    for (let epoch = 1; epoch <= 6; epoch++) {
      h.guest(epoch, D + 100 * (epoch - 1), 100);
      h.epochEnd(epoch);
    }
    expect(h.acker.stats.uncommittedEpochsCoalesced).toBe(2 * 3); // an end and a header for each of epochs 4, 5 and 6
    expect(wireOut(h.commit(2)).map((x) => [x.seq, x.payload.length, x.epoch])).toEqual([[D, 200, 2]]);
    // Epoch 4 committed: its bytes were recorded with epoch 6's, so they wait for that commit (late, never early).
    expect(wireOut(h.commit(4))).toEqual([]);
    expect(h.acker.stats.committedSeq).toBe(D + 200);
    expect(wireOut(h.commit(6)).map((x) => [x.seq, x.payload.length, x.epoch])).toEqual([[D + 200, 400, 6]]);
    // Room again: the next epochs are tracked one by one.
    h.guest(7, D + 600, 100);
    h.epochEnd(7);
    expect(wireOut(h.commit(7)).map((x) => [x.seq, x.payload.length])).toEqual([[D + 600, 100]]);
    expect(h.acker.stats.uncommittedEpochsCoalesced).toBe(6);
  });

  it('ignores a duplicate or old commit', () => {
    const h = connected();
    h.guest(1, D, 1000);
    h.epochEnd(1);
    expect(wireOut(h.commit(1))).toHaveLength(1);
    expect(wireOut(h.commit(1))).toEqual([]);
    expect(wireOut(h.commit(0))).toEqual([]);
  });

  it('ignores commits and guest output of another term: a deposed primary, or its successor', () => {
    const h = connected();
    h.guest(1, D, 1000);
    h.epochEnd(1);
    const foreign = h.run(s.commit, { type: 'epochCommit', vmId: VM, term: h.acker.term + 1, epoch: 1 });
    expect(wireOut(foreign)).toEqual([]);
    expect(h.acker.stats.staleTermDrops).toBe(1);
    expect(wireOut(h.commit(1))).toHaveLength(1);
  });

  it("frees the speculative buffer on the client's ACKs and widens the window it advertises", () => {
    const h = connected({ specBufferBytes: 4000 });
    h.guest(1, D, 3000);
    h.epochEnd(1);
    h.commit(1);
    expect(h.acker.specBufferBytes).toBe(3000);
    h.clientAck(D + 2000);
    expect(h.acker.specBufferBytes).toBe(1000);
    expect(h.acker.stats.clientAckSeq).toBe(D + 2000);
    const [ack] = specAcks(h.guest(2, D + 3000, 1000));
    expect(ack).toMatchObject({ ack: D + 4000, window: Math.floor(2000 / 2 ** CLIENT_WSCALE) });
  });

  it('forwards client segments to the guest with the ACK raised to the speculative ACK and the window of the free buffer', () => {
    const h = connected();
    h.guest(1, D, 3000);
    h.epochEnd(1);
    h.commit(1);
    const request = segment({ seq: CLIENT_ISN + 1, ack: D + 1000, window: CLIENT_WINDOW, flags: TcpFlag.ACK | TcpFlag.PSH, payload: new Uint8Array([1, 2, 3]), tsValUs: 77 });
    const [fwd] = segmentsOn(h.run(v.wireIn, request), s.rx);
    expect(fwd).toMatchObject({ seq: CLIENT_ISN + 1, ack: D + 3000, flags: TcpFlag.ACK | TcpFlag.PSH, payload: new Uint8Array([1, 2, 3]), tsValUs: 77, speculative: false });
    expect(fwd!.window).toBe(Math.floor((64 * 1024 - 2000) / 2 ** CLIENT_WSCALE));
    // The client's ACK beyond the speculative one (its ACK of our FIN, say) is kept.
    const finAck = segmentsOn(h.run(v.wireIn, segment({ seq: CLIENT_ISN + 4, ack: D + 3001, window: CLIENT_WINDOW, flags: TcpFlag.ACK | TcpFlag.FIN })), s.rx);
    expect(finAck[0]!.ack).toBe(D + 3001);
  });

  it('forwards a pure client ACK as a window update only when it freed enough of the buffer', () => {
    const h = connected({ specBufferBytes: 8000 });
    h.guest(1, D, 8000); // the guest is told: window 0
    expect(specAcks(h.guest(1, D + 8000, 0))).toEqual([]); // control segments are the netbuffer's
    h.epochEnd(1);
    h.commit(1);
    expect(segmentsOn(h.clientAck(D + 1000), s.rx)).toEqual([]); // 1000 bytes freed: below min(specBufferBytes / 2, 64 KiB)
    const [update] = segmentsOn(h.clientAck(D + 5000), s.rx);
    expect(update).toMatchObject({ ack: D + 8000, window: Math.floor(5000 / 2 ** CLIENT_WSCALE) });
  });

  it('sends no window update while the free buffer exceeds the largest window the field carries: to the guest it would be a duplicate ACK', () => {
    const h = connected({ specBufferBytes: 16 * 1024 * 1024 }); // the field carries 8 MiB at most at the client's scale
    const [ack] = specAcks(h.guest(1, D, 3000));
    expect(ack).toMatchObject({ ack: D + 3000, window: 0xffff });
    h.epochEnd(1);
    h.commit(1);
    // Each client ACK frees bytes, but the window the guest would be sent stays at the field's largest: the same ACK
    // and window three times over is a fast retransmit of bytes that were never lost.
    for (const clientAck of [D + 1000, D + 2000, D + 3000]) expect(segmentsOn(h.clientAck(clientAck), s.rx)).toEqual([]);
    expect(h.acker.specBufferBytes).toBe(0);
  });

  it("answers the guest's zero-window probe with the current window, so a lost window update cannot stall the guest", () => {
    const h = connected({ specBufferBytes: 8000 });
    expect(specAcks(h.guest(1, D, 8000))[0]!.window).toBe(0);
    h.epochEnd(1);
    h.commit(1);
    h.clientAck(D + 8000); // frees everything: the window update to the guest is lost on the bus
    // The guest's persist timer sends a probe: an empty segment one below its unacknowledged edge.
    const probe = segment({ ...guestSegment(1, D + 8000 - 1, 0), tsValUs: 4242 });
    const [answer] = specAcks(h.run(s.tx, probe));
    expect(answer).toMatchObject({ ack: D + 8000, window: Math.floor(8000 / 2 ** CLIENT_WSCALE), tsEcrUs: 4242 });
    // A pure ACK at the guest's send edge is not a probe and gets no answer.
    expect(specAcks(h.run(s.tx, guestSegment(1, D + 8000, 0)))).toEqual([]);
  });

  it("emits the epoch's SPEC checkpoint chunks: exactly the epoch's bytes and the client-ACK watermark", () => {
    const h = connected({ chunkBytes: 1024 });
    h.guest(1, D, 1500);
    h.guest(1, D + 1500, 1500);
    const end1 = h.epochEnd(1);
    const chunks = chunksOn(end1, s.ckptStage);
    expect(chunks.length).toBeGreaterThan(1);
    chunks.forEach((c, i) => {
      expect(c).toMatchObject({ source: ChunkSource.SPEC, epoch: 1, term: h.acker.term, index: i, count: chunks.length });
      expect(c.data.length).toBeLessThanOrEqual(1024);
      expect(chunkIntact(c)).toBe(true);
    });
    const d1 = specDelta(end1);
    expect(d1.startSeq).toBe(D);
    expect(d1.clientAckSeq).toBe(D);
    expect(bytesEqual(joinRun(d1.bytes), streamBytes(D, 3000))).toBe(true);
    expect(d1.connection).toMatchObject({ connId: 1, clientWscale: CLIENT_WSCALE, clientSynWindow: 65535, guestOfferedWscale: true, clientNxt: CLIENT_ISN + 1 });
    expect(d1.connection!.guestHeader).toMatchObject({ epoch: 1, window: 101 });

    h.commit(1);
    h.clientAck(D + 2000);
    h.guest(2, D + 3000, 700);
    const d2 = specDelta(h.epochEnd(2));
    expect(d2.startSeq).toBe(D + 3000);
    expect(d2.clientAckSeq).toBe(D + 2000);
    expect(bytesEqual(joinRun(d2.bytes), streamBytes(D + 3000, 700))).toBe(true);

    // An epoch without data: an empty delta that still carries the watermark.
    const d3 = specDelta(h.epochEnd(3));
    expect(d3).toMatchObject({ startSeq: D + 3700, clientAckSeq: D + 2000 });
    expect(runLength(d3.bytes)).toBe(0);
  });

  it("gives a joining backup's base epoch the whole buffer: every byte the client has not acknowledged", () => {
    const h = connected();
    h.guest(1, D, 3000);
    h.epochEnd(1);
    h.commit(1);
    h.clientAck(D + 1000);
    h.guest(2, D + 3000, 500);
    const base = specDelta(h.epochEnd(2, true));
    expect(base.startSeq).toBe(D + 1000);
    expect(base.clientAckSeq).toBe(D + 1000);
    expect(bytesEqual(joinRun(base.bytes), streamBytes(D + 1000, 2500))).toBe(true);
    // The next epoch is a delta again.
    h.guest(3, D + 3500, 100);
    expect(specDelta(h.epochEnd(3)).startSeq).toBe(D + 3500);
  });

  it('retransmits the first unacknowledged committed segment on three duplicate client ACKs', () => {
    const h = connected();
    h.guest(1, D, 5000);
    h.epochEnd(1);
    expect(wireOut(h.commit(1))).toHaveLength(5);
    h.clientAck(D + 1000); // the second segment is lost
    for (let i = 0; i < 2; i++) expect(wireOut(h.clientAck(D + 1000))).toEqual([]);
    const [retransmit] = wireOut(h.clientAck(D + 1000));
    expect(retransmit).toMatchObject({ seq: D + 1000, epoch: 1 });
    expect(retransmit!.payload.length).toBe(MSS);
    expect(bytesEqual(retransmit!.payload, streamBytes(D + 1000, MSS))).toBe(true);
    expect(wire(h).fastRetransmits).toBe(1);
  });

  it('retransmits the very first committed segment on three duplicate client ACKs', () => {
    const h = connected();
    h.guest(1, D, 5000);
    h.epochEnd(1);
    h.commit(1);
    for (let i = 0; i < 2; i++) expect(wireOut(h.clientAck(D))).toEqual([]);
    const [retransmit] = wireOut(h.clientAck(D));
    expect(retransmit).toMatchObject({ seq: D });
    expect(wire(h).fastRetransmits).toBe(1);
  });

  it('retransmits from the first unacknowledged byte when the wire RTO fires', () => {
    const h = connected();
    h.guest(1, D, 3000);
    h.epochEnd(1);
    const sent = h.commit(1);
    const rtoAt = timersSet(sent).get('wire.rto');
    expect(rtoAt).toBeDefined();
    h.clientAck(D + 1000);
    const effects = h.timer('wire.rto');
    const [first] = wireOut(effects);
    expect(first).toMatchObject({ seq: D + 1000 });
    expect(bytesEqual(first!.payload, streamBytes(D + 1000, first!.payload.length))).toBe(true);
    expect(wire(h).timeouts).toBe(1);
    expect(timersSet(effects).get('wire.rto')).toBeGreaterThan(h.nowUs);
    // Once all is acknowledged, the timer is cancelled and a late firing sends nothing.
    const done = h.clientAck(D + 3000);
    expect(done).toContainEqual({ kind: 'cancelTimer', name: 'wire.rto' });
    expect(wireOut(h.timer('wire.rto'))).toEqual([]);
    expect(h.acker.stats.staleWireTimers).toBe(1);
  });

  it('cancels its wires\' timers when a role change forgets the connections: the next role\'s connection of the same id has timers of the same names', () => {
    const h = connected();
    h.guest(1, D, 3000);
    h.epochEnd(1);
    expect(timersSet(h.commit(1)).get('wire.rto')).toBeDefined();
    const effects = h.assign(assignment(VM, HOST, 'spare', TERM, { seq: 2 }));
    expect(effects).toContainEqual({ kind: 'cancelTimer', name: 'wire.rto' });
    expect(effects).toContainEqual({ kind: 'cancelTimer', name: 'wire.persist' });
  });

  it('ignores wire timers before the connection exists and unrelated timers after', () => {
    const h = primary();
    expect(h.timer('wire.rto')).toEqual([]);
    const c = connected();
    expect(c.timer('ckpt.epoch')).toEqual([]);
  });

  it('keeps the wire counters of every connection it served across a change of role', () => {
    const h = connected();
    h.guest(1, D, 5000);
    h.epochEnd(1);
    h.commit(1);
    for (let i = 0; i < 3; i++) h.clientAck(D); // a fast retransmit of the first segment
    expect(wire(h).fastRetransmits).toBe(1);
    h.assign(assignment(VM, HOST, 'spare', TERM, { seq: 2 }));
    expect(h.acker.wireStats.map((w) => w.fastRetransmits)).toEqual([1]);
    // Later promoted: the connection it takes over gets counters of its own.
    h.assign(assignment(VM, HOST, 'promoting', TERM + 1, { seq: 3 }));
    feedHandover(h, handover(TERM + 1));
    expect(h.acker.wireStats.map((w) => w.fastRetransmits)).toEqual([1, 0]);
  });

  it('keeps ROLE_HISTORY_ENTRIES entries of wire counters however many roles it takes, every one counted', () => {
    const h = connected();
    h.guest(1, D, 5000);
    h.epochEnd(1);
    h.commit(1);
    for (let i = 0; i < 3; i++) h.clientAck(D);
    let seq = 1;
    const ROLES = 3 * ROLE_HISTORY_ENTRIES;
    for (let k = 1; k <= ROLES; k++) {
      h.assign(assignment(VM, HOST, 'spare', TERM + k - 1, { seq: ++seq }));
      h.assign(assignment(VM, HOST, 'promoting', TERM + k, { seq: ++seq }));
      feedHandover(h, handover(TERM + k));
    }
    expect(h.acker.wireStats).toHaveLength(ROLE_HISTORY_ENTRIES + 1); // the folded ones, and the live connection
    expect(h.acker.wireStats.reduce((n, w) => n + w.fastRetransmits, 0)).toBe(1);
    expect(h.acker.wireStats.reduce((n, w) => n + w.segmentsSent, 0)).toBeGreaterThanOrEqual(5);
  });
});

describe('AckerCore, supervision', () => {
  it('is idle until its primary assignment: client segments, guest output and commits before it are ignored', () => {
    const h = new Harness(ackerOptions());
    h.acker.handle({ kind: 'start' }, 0);
    h.permit();
    expect(h.run(v.wireIn, segment({ seq: CLIENT_ISN, flags: TcpFlag.SYN, window: 65535, wscale: CLIENT_WSCALE, mss: MSS }))).toEqual([]);
    expect(h.run(s.tx, segment({ term: TERM, epoch: 1, seq: GUEST_ISN, ack: CLIENT_ISN + 1, flags: TcpFlag.SYN | TcpFlag.ACK, window: 500, wscale: 7, mss: MSS }))).toEqual([]);
    expect(h.guest(1, D, 1000)).toEqual([]);
    expect(h.run(s.txEpoch, { type: 'epochEnd', vmId: VM, term: TERM, epoch: 1, txEndSeqs: [0], base: false, specStaged: false, local: false })).toEqual([]);
    expect(h.run(s.commit, { type: 'epochCommit', vmId: VM, term: TERM, epoch: 1 })).toEqual([]);
    expect(h.acker.specBufferBytes).toBe(0);
    expect(h.acker.connectionState()).toBeNull();
    expect(h.acker.stats).toMatchObject({ specAcksSent: 0, segmentsForwarded: 0, committedSeq: 0, staleTermDrops: 0 });
    h.assign(assignment(VM, HOST, 'primary', TERM));
    // Nothing seen while idle stuck: the connection starts with the handshake after the assignment.
    handshake(h);
    expect(specAcks(h.guest(1, D, 1000))[0]).toMatchObject({ ack: D + 1000, speculative: true });
  });

  it('reports its status at start and every statusIntervalUs', () => {
    const h = new Harness(ackerOptions());
    const started = h.acker.handle({ kind: 'start' }, 1_000);
    expect(statuses(started)).toEqual([
      { type: 'serviceStatus', vmId: VM, term: 0, host: HOST, service: 'acker', incarnation: 1_001, assignmentSeq: 0, agentIncarnation: 0, role: 'spare', epoch: 0, synced: false, ready: false, txEndSeqs: [], chunksStaged: 0, reportSeq: 1, followedAgentIncarnation: 0 },
    ]);
    expect(timersSet(started)).toEqual(new Map([[STATUS_TIMER, 1_000 + STATUS_INTERVAL_US]]));
    expect(statuses(h.acker.handle(message(ASSIGN, assignment(VM, HOST, 'primary', TERM)), 2_000))).toMatchObject([{ role: 'primary', term: TERM, assignmentSeq: 1 }]);
    const periodic = h.acker.handle(timer(STATUS_TIMER), 1_000 + STATUS_INTERVAL_US);
    expect(statuses(periodic)).toMatchObject([{ service: 'acker', incarnation: 1_001, assignmentSeq: 1, agentIncarnation: AGENT_INCARNATION, role: 'primary', term: TERM, ready: false, reportSeq: 3 }]);
    expect(timersSet(periodic)).toEqual(new Map([[STATUS_TIMER, 1_000 + 2 * STATUS_INTERVAL_US]]));
  });

  it('ignores and counts a stale assignment (older seq): the connection runs on', () => {
    const h = connected();
    h.assign(assignment(VM, HOST, 'primary', TERM, { seq: 5 })); // a renewal of the same role and term keeps the connection
    h.guest(1, D, 1000);
    h.epochEnd(1);
    expect(h.assign(assignment(VM, HOST, 'spare', TERM, { seq: 4 }))).toEqual([]);
    expect(h.acker.staleAssignments).toBe(1);
    expect(h.acker.role).toBe('primary');
    expect(wireOut(h.commit(1)).map((x) => x.seq)).toEqual([D]);
  });
});

/** The newest guest header the backup image holds: the header committed data goes out with after a promotion. */
const RESTORED_HEADER = { epoch: 4, ack: CLIENT_ISN + 1, window: 104, tsValUs: 4001, tsEcrUs: 2000 };
const CONNECTION: AckerConnectionState = { connId: 1, clientWscale: CLIENT_WSCALE, clientSynWindow: 65535, guestOfferedWscale: true, clientNxt: CLIENT_ISN + 1, guestHeader: RESTORED_HEADER };
const RESTORED_SEQ = 9001;
const RESTORED_BYTES = 3000;

interface HandoverSetup {
  readonly epoch?: number;
  readonly startSeq?: number;
  readonly bytes?: Uint8Array;
  readonly connection?: AckerConnectionState | null;
}

/** The guest's answer to a handover request: the backup image's speculative buffer as SPEC chunks and their manifest. */
function handover(term = TERM, setup: HandoverSetup = {}): CheckpointChunk[] {
  const startSeq = setup.startSeq ?? RESTORED_SEQ;
  const header = { vmId: VM, term, epoch: setup.epoch ?? 4 };
  const delta = encodeSpecDeltas([{ startSeq, clientAckSeq: startSeq, connection: setup.connection === undefined ? CONNECTION : setup.connection, bytes: setup.bytes ?? streamBytes(RESTORED_SEQ, RESTORED_BYTES) }]);
  const chunks = makeChunks(header, ChunkSource.SPEC, { pieces: splitBytes(delta, 1024) });
  return [...chunks, makeManifest(header, chunks)];
}

/** An acker its host agent assigned 'promoting' for TERM (seq 1), and what it did. */
function promoting(mode: 'spec' | 'remus' = 'spec'): { h: Harness; effects: Effect[] } {
  const h = new Harness(ackerOptions({}, mode));
  return { h, effects: activate(h.acker, assignment(VM, HOST, 'promoting', TERM), { assign: ASSIGN }) };
}

const feedHandover = (h: Harness, chunks: readonly CheckpointChunk[]) => chunks.flatMap((c) => h.run(s.handover, c));
const madePrimary = (h: Harness) => h.assign(assignment(VM, HOST, 'primary', TERM, { seq: 2 }));
const REQUEST: HandoverRequest = { type: 'handoverRequest', vmId: VM, term: TERM, host: HOST };

/** A promoting acker that took the handover and holds a permit, not yet primary. */
function restored(): Harness {
  const { h } = promoting();
  feedHandover(h, handover());
  h.permit();
  return h;
}

describe('AckerCore, promotion', () => {
  it('asks its guest for the handover when promoted, and asks again after a doubling wait, up to the maximum, while nothing arrives', () => {
    const { h, effects } = promoting();
    expect(h.acker.subscriptions).toEqual([ASSIGN, s.permit, s.handover]);
    expect(handoverRequests(effects)).toEqual([REQUEST]);
    expect(timersSet(effects).get(TIMER_HANDOVER)).toBe(HANDOVER_RETRY_US);
    expect(statuses(effects).at(-1)).toMatchObject({ role: 'promoting', term: TERM, ready: false });
    const waits: number[] = [];
    let at = HANDOVER_RETRY_US;
    for (let i = 0; i < 5; i++) {
      const fired = h.acker.handle(timer(TIMER_HANDOVER), at);
      expect(handoverRequests(fired)).toEqual([REQUEST]);
      const next = timersSet(fired).get(TIMER_HANDOVER)!;
      waits.push(next - at);
      at = next;
    }
    expect(waits).toEqual([2 * HANDOVER_RETRY_US, 4 * HANDOVER_RETRY_US, HANDOVER_RETRY_MAX_US, HANDOVER_RETRY_MAX_US, HANDOVER_RETRY_MAX_US]);
    expect(h.acker.stats).toMatchObject({ handoverRetries: 5, handoversTaken: 0 });
  });

  it('puts off asking again while the handover arrives: each chunk gives it a full retry interval', () => {
    const { h } = promoting();
    const chunks = handover();
    expect(chunks.length).toBeGreaterThan(2);
    const first = h.acker.handle(message(s.handover, chunks[0]!), 1_500);
    expect(handoverRequests(first)).toEqual([]);
    expect(timersSet(first).get(TIMER_HANDOVER)).toBe(1_500 + HANDOVER_RETRY_US);
    expect(timersSet(h.acker.handle(message(s.handover, chunks[1]!), 3_000)).get(TIMER_HANDOVER)).toBe(3_000 + HANDOVER_RETRY_US);
    expect(h.acker.stats.handoverRetries).toBe(0);
  });

  it('drops a handover whose chunks do not match its manifest, and takes the one its next request brings', () => {
    const { h } = promoting();
    const good = handover();
    const corrupt = good.map((c, i) => (i === 1 ? { ...c, data: c.data.map((x, k) => (k === 0 ? x ^ 0xff : x)) } : c));
    const got = feedHandover(h, corrupt);
    expect(statuses(got)).toEqual([]);
    expect(h.acker.stats.handoversTaken).toBe(0);
    expect(h.acker.specBufferBytes).toBe(0);
    expect(h.acker.connectionState()).toBeNull();
    const asked = h.timer(TIMER_HANDOVER);
    expect(handoverRequests(asked)).toEqual([REQUEST]);
    expect(h.acker.stats.handoverRetries).toBe(1);
    expect(h.acker.stats.handoversCorrupt).toBe(1);
    expect(statuses(feedHandover(h, good))).toMatchObject([{ role: 'promoting', ready: true }]);
    expect(h.acker.stats.handoversTaken).toBe(1);
    expect(h.acker.specBufferBytes).toBe(RESTORED_BYTES);
    // The guest's answer to a request that crossed the take: nothing waits for it, counted.
    expect(statuses(feedHandover(h, good))).toEqual([]);
    expect(h.acker.stats.lateHandoverChunks).toBe(good.length);
    expect(h.acker.stats.handoversTaken).toBe(1);
  });

  it('refuses a handover chunk that names more chunks than any handover has, or an index past its count, and still takes the real one', () => {
    const { h } = promoting();
    const good = handover();
    const forged = [{ ...good[0]!, index: 7, count: MAX_HANDOVER_CHUNKS + 1 }, { ...good[0]!, index: good[0]!.count }];
    expect(statuses(feedHandover(h, [...forged, ...good]))).toMatchObject([{ role: 'promoting', ready: true }]);
    expect(h.acker.stats.handoversTaken).toBe(1);
    expect(h.acker.specBufferBytes).toBe(RESTORED_BYTES);
  });

  it('refuses a handover that holds more than its buffer or sequence numbers past 2^53, counted, and still takes the real one', () => {
    const { h } = promoting();
    const tooBig = handover(TERM, { epoch: 5, bytes: streamBytes(RESTORED_SEQ, 64 * 1024 + 1) });
    const farSeq = handover(TERM, { epoch: 6, startSeq: 2 ** 53 - 10 });
    expect(statuses([...feedHandover(h, tooBig), ...feedHandover(h, farSeq)])).toEqual([]);
    expect(h.acker.stats.handoversTaken).toBe(0);
    expect(statuses(feedHandover(h, handover(TERM, { epoch: 7 })))).toMatchObject([{ role: 'promoting', ready: true }]);
    expect(h.acker.specBufferBytes).toBe(RESTORED_BYTES);
  });

  it('ignores handover chunks of another term', () => {
    const { h } = promoting();
    for (const term of [TERM - 1, TERM + 1]) expect(statuses(feedHandover(h, handover(term)))).toEqual([]);
    expect(h.acker.stats.handoversTaken).toBe(0);
    expect(h.acker.stats.handoverStaleTermChunks).toBe(handover(TERM - 1).length + handover(TERM + 1).length);
    expect(statuses(feedHandover(h, handover(TERM)))).toMatchObject([{ ready: true }]);
  });

  it('does not ask for the handover again when its promoting assignment is repeated: its retry timer does, with backoff', () => {
    // The agent repeats the assignment every heartbeat until the acker is ready; asking on each had the guest send its
    // whole buffer 20 times a second, and no handover of 16 MiB finished on a loaded machine (the soak's lost VMs).
    const { h } = promoting();
    const repeat = h.assign(assignment(VM, HOST, 'promoting', TERM));
    expect(handoverRequests(repeat)).toEqual([]);
    expect(statuses(repeat)).toMatchObject([{ role: 'promoting', ready: false }]);
    expect(handoverRequests(h.timer(TIMER_HANDOVER))).toEqual([REQUEST]);
    expect(h.acker.stats.handoverRetries).toBe(1);
  });

  it('restores the speculative buffer and the connection from the handover and reports ready, sending nothing to the client yet', () => {
    const { h } = promoting();
    const got = feedHandover(h, handover());
    expect(statuses(got)).toMatchObject([{ role: 'promoting', term: TERM, ready: true }]);
    expect(got).toContainEqual({ kind: 'cancelTimer', name: TIMER_HANDOVER });
    expect(h.acker.stats.handoversTaken).toBe(1);
    expect(h.acker.specBufferBytes).toBe(RESTORED_BYTES);
    expect(h.acker.connectionState()).toEqual({ ...CONNECTION, clientWindowBytes: 65535 * 2 ** CLIENT_WSCALE });
    expect(h.acker.stats).toMatchObject({ committedSeq: RESTORED_SEQ + RESTORED_BYTES, clientAckSeq: RESTORED_SEQ });
    // Not primary yet: a permit lets nothing out, a late retry timer asks nothing, a repeated handover changes nothing.
    expect(wireOut(h.permit())).toEqual([]);
    expect(h.timer(TIMER_HANDOVER)).toEqual([]);
    expect(feedHandover(h, handover())).toEqual([]);
    expect(h.acker.stats.handoversTaken).toBe(1);
  });

  it('once made primary, resends the restored bytes from the client ACK with the committed guest header', () => {
    const h = restored();
    const out = wireOut(madePrimary(h));
    expect(h.acker.subscriptions).toEqual([ASSIGN, s.permit, s.tx, s.txData, s.txEpoch, v.wireIn, s.commit]);
    expect(out.map((x) => x.seq)).toEqual([9001, 10001, 11001]);
    for (const seg of out) expect(seg).toMatchObject({ ...RESTORED_HEADER, term: TERM, connId: 1, speculative: false });
    expect(bytesEqual(concat(out.map((x) => x.payload)), streamBytes(RESTORED_SEQ, RESTORED_BYTES))).toBe(true);
  });

  it('made primary under a newer term than its promotion (a take-over again for this host, mid-promotion), keeps the restored buffer and resends it under that term', () => {
    const { h } = promoting();
    feedHandover(h, handover());
    h.permit(FOREVER_US, TERM + 1);
    const out = wireOut(h.assign(assignment(VM, HOST, 'primary', TERM + 1, { seq: 2 })));
    expect(h.acker.specBufferBytes).toBe(RESTORED_BYTES);
    expect(out.map((x) => x.seq)).toEqual([9001, 10001, 11001]);
    for (const seg of out) expect(seg.term).toBe(TERM + 1);
    // An older term than its promotion is no continuation: it starts from nothing.
    const stale = promoting().h;
    feedHandover(stale, handover());
    stale.assign(assignment(VM, HOST, 'primary', TERM - 1, { seq: 2 }));
    expect(stale.acker.specBufferBytes).toBe(0);
  });

  it('retransmits the first restored segment on three duplicate client ACKs', () => {
    const h = restored();
    madePrimary(h);
    h.clientAck(9001); // the client's window differs from its SYN window: an update, not a duplicate
    for (let i = 0; i < 2; i++) expect(wireOut(h.clientAck(9001))).toEqual([]);
    expect(wireOut(h.clientAck(9001)).map((x) => x.seq)).toEqual([9001]);
  });

  it('keeps the SACK its connection agreed: the state it hands over says so, and one client ACK SACKing three segments above a hole repairs it', () => {
    for (const sackPermitted of [true, false]) {
      const { h } = promoting();
      const connection: AckerConnectionState = { ...CONNECTION, ...(sackPermitted ? { sackPermitted: true as const } : {}) };
      feedHandover(h, handover(TERM, { connection, bytes: streamBytes(RESTORED_SEQ, 5 * MSS) }));
      h.permit();
      expect(wireOut(madePrimary(h)).map((x) => x.seq)).toEqual([0, 1, 2, 3, 4].map((i) => RESTORED_SEQ + i * MSS));
      expect(h.acker.connectionState()).toEqual({ ...connection, clientWindowBytes: 65535 * 2 ** CLIENT_WSCALE });
      // RFC 6675: three segments SACKed above the first make it lost, on the first ACK that says so. Without SACK one
      // duplicate ACK is not a loss.
      const out = wireOut(h.clientAck(RESTORED_SEQ, { sackBlocks: [RESTORED_SEQ + MSS, RESTORED_SEQ + 4 * MSS] }));
      expect(out.map((x) => x.seq)).toEqual(sackPermitted ? [RESTORED_SEQ] : []);
    }
  });

  it("starts from the client's window the handover carries, not its SYN window scaled", () => {
    for (const clientWindowBytes of [2 * MSS, 0, undefined]) {
      const { h } = promoting();
      const connection: AckerConnectionState = { ...CONNECTION, ...(clientWindowBytes !== undefined ? { clientWindowBytes } : {}) };
      feedHandover(h, handover(TERM, { connection, bytes: streamBytes(RESTORED_SEQ, 5 * MSS) }));
      h.permit();
      // 65535 << CLIENT_WSCALE is wider than five segments: only the window handed over holds them back. A closed one
      // lets one segment go at once, as a probe: the client's answer says whether it opened.
      const sent = wireOut(madePrimary(h)).map((x) => x.seq);
      const segments = clientWindowBytes === undefined ? 5 : Math.max(1, clientWindowBytes / MSS);
      expect(sent).toEqual([0, 1, 2, 3, 4].slice(0, segments).map((i) => RESTORED_SEQ + i * MSS));
      expect(h.acker.connectionState()?.clientWindowBytes).toBe(clientWindowBytes === undefined ? 65535 * 2 ** CLIENT_WSCALE : Math.max(clientWindowBytes, MSS));
    }
  });

  it('takes a handover without a connection (the backup saw none) and starts the connection afresh as primary', () => {
    const { h } = promoting();
    expect(statuses(feedHandover(h, handover(TERM, { startSeq: 0, bytes: new Uint8Array(0), connection: null })))).toMatchObject([{ ready: true }]);
    expect(h.acker.connectionState()).toBeNull();
    h.permit();
    expect(wireOut(madePrimary(h))).toEqual([]);
    handshake(h);
    expect(specAcks(h.guest(1, D, 1000))[0]).toMatchObject({ ack: D + 1000, speculative: true });
  });

  it("takes over a connection the old acker knew only from the client's SYN with that SYN's options: the guest's repeated SYN-ACK opens it with the client's window scale", () => {
    // The old primary's acker had the client's SYN when its epoch's marker came, and not yet the guest's SYN-ACK.
    const old = primary();
    old.run(v.wireIn, segment({ seq: CLIENT_ISN, flags: TcpFlag.SYN, window: 65535, wscale: CLIENT_WSCALE, mss: MSS }));
    const awaiting = specDelta(old.epochEnd(1));
    expect(awaiting).toMatchObject({ bytes: new Uint8Array(0), connection: { connId: 1, clientWscale: CLIENT_WSCALE, clientNxt: CLIENT_ISN + 1, awaitingSynAck: true } });
    // The backup image hands it over as it came; the restored guest, in SYN-RECEIVED, repeats its SYN-ACK.
    const { h } = promoting();
    expect(statuses(feedHandover(h, handover(TERM, { startSeq: 0, bytes: new Uint8Array(0), connection: awaiting.connection })))).toMatchObject([{ ready: true }]);
    expect(h.acker.connectionState()).toBeNull();
    h.permit();
    expect(wireOut(madePrimary(h))).toEqual([]);
    h.run(s.tx, segment({ term: TERM, epoch: 5, seq: GUEST_ISN, ack: CLIENT_ISN + 1, flags: TcpFlag.SYN | TcpFlag.ACK, window: 500, wscale: 7, mss: MSS }));
    expect(h.acker.connectionState()).toMatchObject({ clientWscale: CLIENT_WSCALE, clientSynWindow: 65535, guestOfferedWscale: true });
    h.clientAck(D);
    // The window it offers the guest is its free buffer in the client's scale (read unscaled, it offered 128 times that).
    const acks = specAcks(h.guest(5, D, 1000));
    expect(acks[0]).toMatchObject({ ack: D + 1000, window: Math.floor((64 * 1024 - 1000) / (1 << CLIENT_WSCALE)) });
  });

  it('in remus mode is ready at once when promoted and asks for no handover', () => {
    const { h, effects } = promoting('remus');
    expect(statuses(effects).at(-1)).toMatchObject({ role: 'promoting', term: TERM, ready: true });
    expect(handoverRequests(effects)).toEqual([]);
    expect(timersSet(effects).has(TIMER_HANDOVER)).toBe(false);
    expect(h.acker.subscriptions).toEqual([ASSIGN, s.permit]);
    madePrimary(h);
    expect(h.acker.subscriptions).toEqual([ASSIGN, s.permit]); // the promoted guest takes the client's segments
  });
});

describe('AckerCore, release permit', () => {
  /** A connected primary acker without a permit. */
  const unpermitted = (setup: Setup = {}) => handshake(primary(setup, 'spec', false), setup);

  it('sends nothing to the client without a permit, and the committed bytes once one arrives', () => {
    const h = unpermitted();
    h.guest(1, D, 3000);
    h.epochEnd(1);
    expect(wireOut(h.commit(1))).toEqual([]);
    expect(h.acker.stats.committedSeq).toBe(D + 3000);
    expect(wireOut(h.clientAck(D))).toEqual([]);
    expect(wireOut(h.permit()).map((x) => x.seq)).toEqual([D, D + 1000, D + 2000]);
  });

  it("stops sending new committed data at the permit's deadline, on its own clock", () => {
    const h = unpermitted();
    h.permit(1_000);
    h.guest(1, D, 1000);
    h.epochEnd(1);
    expect(wireOut(h.commit(1)).map((x) => x.seq)).toEqual([D]);
    h.guest(2, D + 1000, 1000);
    h.epochEnd(2);
    h.nowUs = 990;
    expect(wireOut(h.commit(2))).toEqual([]); // at 1000: the deadline itself is too late
    expect(wireOut(h.clientAck(D + 1000))).toEqual([]);
    expect(wireOut(h.permit(5_000)).map((x) => x.seq)).toEqual([D + 1000]);
  });

  it('holds back and counts a fast retransmission after the deadline; the RTO resends it once a permit is back', () => {
    const h = unpermitted();
    h.permit(1_000);
    h.guest(1, D, 5000);
    h.epochEnd(1);
    expect(wireOut(h.commit(1))).toHaveLength(5);
    h.nowUs = 1_000;
    h.clientAck(D + 1000); // the second segment is lost
    for (let i = 0; i < 3; i++) expect(wireOut(h.clientAck(D + 1000))).toEqual([]);
    expect(wire(h).fastRetransmits).toBe(1);
    expect(h.acker.stats.sendsWithoutPermit).toBe(1);
    expect(wireOut(h.permit())).toEqual([]); // nothing new to send
    const [resent] = wireOut(h.timer('wire.rto'));
    expect(resent).toMatchObject({ seq: D + 1000 });
    expect(bytesEqual(resent!.payload, streamBytes(D + 1000, resent!.payload.length))).toBe(true);
  });

  it('sends nothing when the RTO fires after the deadline, and resends from the first unacknowledged byte when a permit arrives', () => {
    const h = unpermitted();
    h.permit(1_000);
    h.guest(1, D, 3000);
    h.epochEnd(1);
    expect(wireOut(h.commit(1))).toHaveLength(3);
    h.nowUs = 2_000;
    expect(wireOut(h.timer('wire.rto'))).toEqual([]);
    expect(wire(h).timeouts).toBe(1);
    const [first] = wireOut(h.permit(10_000));
    expect(first).toMatchObject({ seq: D, epoch: 1, ack: CLIENT_ISN + 1, window: 101 });
  });

  it('lets nothing out under a permit of another term', () => {
    for (const term of [TERM - 1, TERM + 1]) {
      const h = unpermitted();
      h.permit(FOREVER_US, term);
      h.guest(1, D, 3000);
      h.epochEnd(1);
      expect(wireOut(h.commit(1))).toEqual([]);
      expect(wireOut(h.clientAck(D))).toEqual([]);
    }
  });

  it('with the planted ignore-permit-expiry bug sends committed data after the deadline (the auditor must catch it)', () => {
    const h = unpermitted({ plantedBug: 'ignore-permit-expiry' });
    h.permit(1_000);
    h.guest(1, D, 1000);
    h.epochEnd(1);
    h.nowUs = 5_000;
    expect(wireOut(h.commit(1)).map((x) => x.seq)).toEqual([D]);
    expect(h.acker.stats.sendsWithoutPermit).toBe(0);
  });
});

describe('AckerCore, remus mode', () => {
  it('has no part in the data path: as primary it hears only its agent, and a client segment or a wire timer does nothing', () => {
    const h = primary({}, 'remus');
    expect(h.acker.subscriptions).toEqual([ASSIGN, s.permit]);
    const syn = segment({ seq: CLIENT_ISN, flags: TcpFlag.SYN, window: 65535, wscale: 7 });
    const request = segment({ seq: CLIENT_ISN + 1, ack: D, window: 10, flags: TcpFlag.ACK | TcpFlag.PSH, payload: new Uint8Array([9]) });
    // Delivered anyway (a bus that ignores subscriptions): the acker does not act on it.
    for (const seg of [syn, request]) expect(h.run(v.wireIn, seg).filter((e) => e.kind === 'send')).toEqual([]);
    expect(h.timer('wire.rto')).toEqual([]);
    expect(h.timer(STATUS_TIMER).filter((e) => e.kind === 'send').map((e) => (e.kind === 'send' ? e.subject : ''))).toEqual([s.status]);
    expect(h.acker.stats.segmentsForwarded).toBe(0);
    expect(h.acker.stats.specAcksSent).toBe(0);
  });
});

describe('AckerCore, property', () => {
  type Op =
    | { kind: 'data'; len: number; shift: number }
    | { kind: 'end' }
    | { kind: 'commit' }
    | { kind: 'ack'; frac: number; dup: boolean }
    | { kind: 'rto' };
  const op: fc.Arbitrary<Op> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('data' as const), len: fc.integer({ min: 1, max: 2500 }), shift: fc.integer({ min: -1500, max: 300 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('end' as const) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('commit' as const) }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('ack' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }), dup: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('rto' as const) }) },
  );

  it('sends only committed bytes, exactly as the guest wrote them, and stays within its speculative buffer', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), fc.integer({ min: 2000, max: 20_000 }), (ops, capacity) => {
        const h = connected({ specBufferBytes: capacity });
        let epoch = 1;
        let held = D; // the highest contiguous byte the acker acknowledged
        let clientAck = D;
        let wireMax = D;
        let committed = D;
        const ends: { epoch: number; endSeq: number }[] = [];
        let lastCommitted = 0;
        const check = (effects: Effect[]) => {
          for (const seg of wireOut(effects)) {
            expect(seg.seq + seg.payload.length).toBeLessThanOrEqual(committed);
            expect(seg.seq).toBeGreaterThanOrEqual(D);
            expect(bytesEqual(seg.payload, streamBytes(seg.seq, seg.payload.length))).toBe(true);
            expect(seg.epoch).toBeLessThanOrEqual(lastCommitted);
            wireMax = Math.max(wireMax, seg.seq + seg.payload.length);
          }
          for (const ack of specAcks(effects).filter((x) => x.speculative)) {
            expect(ack.ack).toBeGreaterThanOrEqual(held);
            held = ack.ack;
            expect(ack.window * 2 ** CLIENT_WSCALE).toBeLessThanOrEqual(capacity - (held - clientAck));
          }
          expect(h.acker.specBufferBytes).toBeLessThanOrEqual(capacity);
          expect(h.acker.specBufferBytes).toBe(held - clientAck);
        };
        for (const o of ops) {
          if (o.kind === 'data') check(h.guest(epoch, Math.max(D, held + o.shift), o.len));
          else if (o.kind === 'end') {
            ends.push({ epoch, endSeq: held });
            check(h.epochEnd(epoch));
            epoch++;
          } else if (o.kind === 'commit') {
            const end = ends.find((e) => e.epoch === lastCommitted + 1);
            if (end === undefined) continue;
            lastCommitted = end.epoch;
            committed = end.endSeq;
            check(h.commit(end.epoch));
          } else if (o.kind === 'ack') {
            const ack = o.dup ? clientAck : clientAck + Math.floor(o.frac * (wireMax - clientAck));
            clientAck = ack;
            check(h.clientAck(ack));
          } else {
            check(h.timer('wire.rto'));
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('AckerCore, adaptive epochs', () => {
  const QUIET_US = 300;
  const watch = { quietUs: QUIET_US, maxConnections: 16, subject: s.outputIdle };

  it('reports speculatively acknowledged data quiet for quietUs, with the bytes waiting for a commit, once per epoch', () => {
    const h = connected({ outputWatch: watch });
    const first = h.guest(2, D, 1000);
    const armedAtUs = timersSet(first).get(TIMER_OUTPUT_IDLE)!;
    expect(armedAtUs).toBe(h.nowUs + QUIET_US);
    h.guest(2, D + 1000, 500);
    h.nowUs = armedAtUs - 10;
    expect(sentOn(h.timer(TIMER_OUTPUT_IDLE), s.outputIdle)).toEqual([]); // the second segment came later
    h.nowUs += QUIET_US;
    expect(sentOn(h.timer(TIMER_OUTPUT_IDLE), s.outputIdle)).toEqual([{ type: 'outputIdle', vmId: VM, term: TERM, epoch: 2, connId: 1, heldBytes: 1500 }]);
    expect(h.acker.outputWatchStats?.idleReports).toBe(1);
  });

  it('reports nothing while committed data it has not sent to the client waits in front (a full buffer draining): the epoch keeps its length', () => {
    const h = connected({ outputWatch: watch });
    // The client's window is closed: committed data stays unsent.
    h.clientAck(D, { window: 0 });
    expect(timersSet(h.guest(1, D, 1000)).has(TIMER_OUTPUT_IDLE)).toBe(true);
    h.epochEnd(1);
    h.commit(1);
    h.guest(2, D + 1000, 1000);
    h.nowUs += QUIET_US;
    const held = h.timer(TIMER_OUTPUT_IDLE);
    expect(sentOn(held, s.outputIdle)).toEqual([]);
    expect(timersSet(held).has(TIMER_OUTPUT_IDLE)).toBe(true); // it looks again later
    expect(h.acker.outputWatchStats?.backloggedChecks).toBe(1);
  });

  it('watches nothing in remus mode, where the netbuffer holds the output', () => {
    const h = new Harness(ackerOptions({ outputWatch: watch }, 'remus'));
    expect(h.acker.outputWatchStats).toBeNull();
  });
});
