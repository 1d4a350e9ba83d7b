import { describe, expect, it } from 'vitest';
import { makeChunks, makeManifest } from '../../../lib/checkpoint/chunks.js';
import { ChunkSource, TcpFlag, type CheckpointAck, type CheckpointChunk, type EpochBarrier, type EpochEnd, type Segment } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { runConfigSchema } from '../../../lib/config/run-config.js';
import type { Effect } from '../../../lib/runtime/types.js';
import { defaultTcpOptions } from '../../../lib/tcp/options.js';
import { AckerCore, type AckerOptions } from '../../../services/acker/core.js';
import { CheckpointerCore } from '../../../services/checkpointer/core.js';
import { PrimaryCheckpointer, type PrimaryOptions } from '../../../services/checkpointer/primary.js';
import { GuestCore } from '../../../services/guest/core.js';
import { guestOptionsFromConfig } from '../../../services/guest/options-from-config.js';
import { StandbyImage } from '../../../services/guest/standby.js';
import { NetbufferCore } from '../../../services/netbuffer/core.js';
import { activate, assignment } from '../support/supervision.js';
import { decodeSpecDeltas } from '../../../lib/checkpoint/spec-delta.js';
import { chunksOn, concat, message, segment, sentOn, streamBytes, timer, timersSet, VM } from './support.js';

/** Recovery from lost, repeated and reordered messages on the bus, path by path, in the core that owns each. */

const s = subjects(VM);
/** The primary host, whose services these are. */
const HOST = 'host-a';
const hs = s.host(HOST);
const STATUS_INTERVAL_US = 10_000;

describe('guest: repeated and lost barriers', () => {
  const guest = () => {
    const config = runConfigSchema.parse({ mode: 'spec', seed: 3, guest: { memoryBytes: 1024 * 1024, appDirtyPagesPerSec: 2000 }, tcp: { sndBufBytes: 64 * 1024 } });
    const g = new GuestCore(guestOptionsFromConfig(config, HOST));
    activate(g, assignment(VM, HOST, 'primary', 1), { assign: hs.assign('guest') }, 0);
    // Made primary, the guest runs a VM and listens to its host's checkpointer.
    expect(g.subscriptions).toContain(hs.epoch);
    for (let t = 1_000; t <= 5_000; t += 1_000) g.handle(timer('app.dirty'), t); // dirty a few pages
    return g;
  };
  /** The VM the primary guest runs. */
  const vmOf = (g: GuestCore) => {
    const vm = g.vm;
    if (vm === null) throw new Error('the guest runs no VM');
    return vm;
  };
  const barrier = (epoch: number): EpochBarrier => ({ type: 'epochBarrier', vmId: VM, term: 1, epoch, base: false, stagedSources: 0, joinSeq: 0, local: false });
  const sentParts = (effects: Effect[]) => ({ ends: sentOn(effects, hs.txEpoch) as EpochEnd[], chunks: chunksOn(effects, hs.ckptStage) });

  it('answers a repeated pause barrier of the epoch it is paused in with the same EpochEnd and parts, byte for byte', () => {
    const g = guest();
    const first = sentParts(g.handle(message(hs.epoch, barrier(1)), 6_000));
    expect(first.ends).toHaveLength(1);
    expect(first.chunks.length).toBeGreaterThan(1);
    const again = sentParts(g.handle(message(hs.epoch, barrier(1)), 8_000));
    expect(again).toEqual(first);
    expect(again.chunks.map((c) => c.data)).toEqual(first.chunks.map((c) => c.data));
    expect(vmOf(g).stats.checkpointsResent).toBe(1);
    expect(vmOf(g).paused).toBe(true);
  });

  it('answers repeats that come within half the repeat interval of its last sending with the EpochEnd alone, and a later one with the parts', () => {
    const g = guest();
    const gapUs = 1_000; // bus.resendMs 2 ms by default: half of it
    const first = sentParts(g.handle(message(hs.epoch, barrier(1)), 6_000));
    const queued = sentParts(g.handle(message(hs.epoch, barrier(1)), 6_000 + gapUs - 1));
    expect(queued).toEqual({ ends: first.ends, chunks: [] });
    expect(vmOf(g).stats).toMatchObject({ checkpointsResent: 1, checkpointRepeatsTooSoon: 1 });
    const onTime = sentParts(g.handle(message(hs.epoch, barrier(1)), 6_000 + gapUs));
    expect(onTime).toEqual(first);
    expect(vmOf(g).stats).toMatchObject({ checkpointsResent: 2, checkpointRepeatsTooSoon: 1 });
  });

  it('answers a repeated barrier that names staged parts with the EpochEnd and the missing parts only', () => {
    const g = guest();
    const first = sentParts(g.handle(message(hs.epoch, barrier(1)), 6_000));
    const pagesStaged: EpochBarrier = { ...barrier(1), stagedSources: 1 << ChunkSource.PAGES };
    const again = sentParts(g.handle(message(hs.epoch, pagesStaged), 8_000));
    expect(again.ends).toEqual([{ ...first.ends[0], specStaged: false }]);
    expect(again.chunks).toEqual(first.chunks.filter((c) => c.source !== ChunkSource.PAGES));
    expect(again.chunks.length).toBeGreaterThan(0);
    const allStaged: EpochBarrier = { ...barrier(1), stagedSources: (1 << ChunkSource.PAGES) | (1 << ChunkSource.STATE) | (1 << ChunkSource.SPEC) };
    const third = sentParts(g.handle(message(hs.epoch, allStaged), 9_000));
    expect(third).toEqual({ ends: [{ ...first.ends[0], specStaged: true }], chunks: [] });
  });

  it('resumes by itself once its copy is done, still answers a repeat of the barrier it checkpointed, and ignores older ones', () => {
    const g = guest();
    const paused = g.handle(message(hs.epoch, barrier(1)), 6_000);
    const first = sentParts(paused);
    const resumeAt = timersSet(paused).get('guest.resume')!;
    // The pause: the fixed cost and the copy of what it staged, at copyBytesPerSec.
    const staged = first.chunks.reduce((n, c) => n + c.data.length, 0);
    expect(resumeAt).toBe(6_000 + 500 + Math.ceil((staged * 1e6) / 4e9));
    expect(vmOf(g).paused).toBe(true);
    g.handle(timer('guest.resume'), resumeAt);
    expect(vmOf(g).epoch).toBe(2);
    expect(vmOf(g).paused).toBe(false);
    // The next epoch runs while the checkpoint travels: a part lost on the way is sent again.
    const again = sentParts(g.handle(message(hs.epoch, barrier(1)), 7_600));
    expect(again.chunks).toEqual(first.chunks);
    expect(g.handle(message(hs.epoch, barrier(0)), 7_700)).toEqual([]);
    expect(vmOf(g).stats.staleBarriers).toBe(1);
    // One from an epoch it has not reached is no protocol's (a forgery): dropped, counted, and the guest runs on.
    expect(g.handle(message(hs.epoch, barrier(5)), 7_750)).toEqual([]);
    expect(vmOf(g).stats.futureBarriers).toBe(1);
    expect(vmOf(g).epoch).toBe(2);
    expect(vmOf(g).paused).toBe(false);
    // A resume timer that fires after the guest ran on is no resume.
    g.handle(timer('guest.resume'), 8_000);
    expect(vmOf(g).epoch).toBe(2);
  });

  it('stages only its state for a local barrier, and every part when a barrier of that epoch asks in full (a barrier wrongly marked local costs a repeat)', () => {
    const g = guest();
    const local = sentParts(g.handle(message(hs.epoch, { ...barrier(1), local: true }), 6_000));
    expect(local.ends).toEqual([expect.objectContaining({ epoch: 1, local: true, base: false })]);
    expect(local.chunks.map((c) => c.source)).toEqual([ChunkSource.STATE]);
    // A repeat of the local barrier: the state again, nothing more.
    const again = sentParts(g.handle(message(hs.epoch, { ...barrier(1), local: true }), 8_000));
    expect(again.chunks).toEqual(local.chunks);
    // Asked in full (the checkpointer's barrier came after a forged one): the pages were captured, and go.
    const full = sentParts(g.handle(message(hs.epoch, barrier(1)), 10_000));
    // Its EpochEnd says so too: the acker sends its part for it.
    expect(full.ends).toEqual([expect.objectContaining({ epoch: 1, local: false })]);
    expect(full.chunks.filter((c) => c.source === ChunkSource.PAGES).length).toBeGreaterThan(0);
    expect(full.chunks.filter((c) => c.source === ChunkSource.STATE)).toEqual(local.chunks);
    expect(vmOf(g).stats.checkpointsResent).toBe(2);
  });

  it('never takes a base barrier as local', () => {
    const g = guest();
    const base = sentParts(g.handle(message(hs.epoch, { ...barrier(1), base: true, local: true }), 6_000));
    expect(base.ends).toEqual([expect.objectContaining({ epoch: 1, local: false, base: true })]);
    expect(base.chunks.some((c) => c.source === ChunkSource.PAGES)).toBe(true);
  });

  it('takes the pause barrier of N + 1 while paused in N as a late resume of N', () => {
    const g = guest();
    g.handle(message(hs.epoch, barrier(1)), 6_000);
    const next = sentParts(g.handle(message(hs.epoch, barrier(2)), 30_000));
    expect(vmOf(g).stats.impliedResumes).toBe(1);
    expect(vmOf(g).epoch).toBe(2);
    expect(vmOf(g).paused).toBe(true);
    expect(next.ends.map((e) => e.epoch)).toEqual([2]);
    expect(new Set(next.chunks.map((c) => c.epoch))).toEqual(new Set([2]));
  });
});

describe('acker: repeated and late EpochEnds', () => {
  const PART_REPEAT_GAP_US = 10;
  const CLIENT_ISN = 1000;
  const GUEST_ISN = 5000;
  const acker = (extra: Partial<AckerOptions> = {}) => {
    const a = new AckerCore({
      vmId: VM,
      host: HOST,
      mode: 'spec',
      subjects: hs,
      wireInSubject: s.wireIn,
      wireOutSubject: s.wireOut,
      handoverRetryUs: 2_000,
      handoverRetryMaxUs: 500_000,
      partRepeatGapUs: PART_REPEAT_GAP_US,
      replicationBytesPerSec: 0,
      statusIntervalUs: STATUS_INTERVAL_US,
      tcp: defaultTcpOptions({ mssBytes: 1000 }),
      specBufferBytes: 64 * 1024,
      specWindow: 'buffer',
      chunkBytes: 4096,
      recordDigests: false,
      uncommittedEpochsMax: 12,
      ...extra,
    });
    activate(a, assignment(VM, HOST, 'primary', 1), { assign: hs.assign('acker'), permit: hs.permit });
    expect(a.term).toBe(1);
    a.handle(message(s.wireIn, segment({ seq: CLIENT_ISN, flags: TcpFlag.SYN, window: 65535, mss: 1000 })), 0);
    a.handle(message(hs.tx, synAck()), 10);
    return a;
  };
  const synAck = (): Segment => segment({ term: 1, epoch: 1, seq: GUEST_ISN, ack: CLIENT_ISN + 1, flags: TcpFlag.SYN | TcpFlag.ACK, window: 500, mss: 1000 });
  const data = (epoch: number, seq: number, len: number, tsValUs = 1000 * epoch): Segment =>
    segment({ term: 1, epoch, seq, ack: CLIENT_ISN + 1, window: 100, tsValUs, flags: TcpFlag.ACK, payload: streamBytes(seq, len) });
  const end = (epoch: number): EpochEnd => ({ type: 'epochEnd', vmId: VM, term: 1, epoch, txEndSeqs: [0], base: false, specStaged: false, local: false });
  const specChunks = (effects: Effect[]) => chunksOn(effects, hs.ckptStage);

  it('sends exactly the same SPEC chunks for a repeated EpochEnd, even after more data arrived', () => {
    const a = acker();
    a.handle(message(hs.tx, data(1, GUEST_ISN + 1, 500)), 20);
    const first = specChunks(a.handle(message(hs.txEpoch, end(1)), 30));
    expect(first).toHaveLength(1);
    a.handle(message(hs.tx, data(2, GUEST_ISN + 501, 700)), 40);
    const again = specChunks(a.handle(message(hs.txEpoch, end(1)), 50));
    expect(again).toEqual(first);
    expect(a.stats.epochEndsRepeated).toBe(1);
    // The next epoch's delta starts where epoch 1's ended: the repeat changed nothing.
    const second = specChunks(a.handle(message(hs.txEpoch, end(2)), 60));
    expect(second[0]!.epoch).toBe(2);
    expect(a.specBufferBytes).toBe(1200);
  });

  it('cuts an EpochEnd that arrives behind the next epoch’s data at its txEndSeq: those bytes go with the next checkpoint', () => {
    const a = acker();
    a.handle(message(hs.tx, data(1, GUEST_ISN + 1, 500)), 20);
    a.handle(message(hs.tx, data(2, GUEST_ISN + 501, 700)), 25); // the guest resumed; its marker of epoch 1 was delayed
    const one = specChunks(a.handle(message(hs.txEpoch, { ...end(1), txEndSeqs: [GUEST_ISN + 501] }), 30));
    const two = specChunks(a.handle(message(hs.txEpoch, { ...end(2), txEndSeqs: [GUEST_ISN + 1201] }), 40));
    const delta = (chunks: CheckpointChunk[]) => decodeSpecDeltas(concat(chunks.map((c) => c.data)))[0]!;
    expect(delta(one)).toMatchObject({ startSeq: GUEST_ISN + 1 });
    expect(delta(one).bytes).toEqual(streamBytes(GUEST_ISN + 1, 500));
    expect(delta(two)).toMatchObject({ startSeq: GUEST_ISN + 501 });
    expect(delta(two).bytes).toEqual(streamBytes(GUEST_ISN + 501, 700));
    // The guest header a promoted acker would send with is the epoch's own, never the next epoch's.
    expect(delta(one).connection?.guestHeader).toMatchObject({ epoch: 1, tsValUs: 1_000 });
    expect(delta(two).connection?.guestHeader).toMatchObject({ epoch: 2, tsValUs: 2_000 });
  });

  it('answers repeated EpochEnds that come within partRepeatGapUs of the part\'s last sending (queued behind a stall) with nothing, and a later one in full', () => {
    const a = acker();
    a.handle(message(hs.tx, data(1, GUEST_ISN + 1, 500)), 20);
    const first = specChunks(a.handle(message(hs.txEpoch, end(1)), 30));
    expect(first).toHaveLength(1);
    // Three repeats the checkpointer sent while this acker stalled arrive together.
    for (const atUs of [31, 35, 39]) expect(specChunks(a.handle(message(hs.txEpoch, end(1)), atUs))).toEqual([]);
    expect(a.stats).toMatchObject({ epochEndsRepeated: 3, epochEndRepeatsTooSoon: 3 });
    // One on the checkpointer's schedule, a gap later: the part goes again, byte for byte, and starts the next gap.
    expect(specChunks(a.handle(message(hs.txEpoch, end(1)), 30 + PART_REPEAT_GAP_US))).toEqual(first);
    expect(specChunks(a.handle(message(hs.txEpoch, end(1)), 30 + PART_REPEAT_GAP_US + 1))).toEqual([]);
    expect(a.stats).toMatchObject({ epochEndsRepeated: 5, epochEndRepeatsTooSoon: 4 });
  });

  it('answers a repeat no sooner than twice the time the replication link takes to carry the part, and each later one after twice as long again', () => {
    const a = acker({ replicationBytesPerSec: 1e6 });
    a.handle(message(hs.tx, data(1, GUEST_ISN + 1, 500)), 20);
    const first = specChunks(a.handle(message(hs.txEpoch, end(1)), 30));
    const linkUs = Math.ceil((2 * first.reduce((n, c) => n + c.data.length, 0) * 1e6) / 1e6);
    expect(linkUs).toBeGreaterThan(PART_REPEAT_GAP_US);
    // On the checkpointer's schedule, but the part cannot have crossed the link yet: nothing.
    expect(specChunks(a.handle(message(hs.txEpoch, end(1)), 30 + linkUs - 1))).toEqual([]);
    expect(specChunks(a.handle(message(hs.txEpoch, end(1)), 30 + linkUs))).toEqual(first);
    expect(specChunks(a.handle(message(hs.txEpoch, end(1)), 30 + 3 * linkUs - 1))).toEqual([]);
    expect(specChunks(a.handle(message(hs.txEpoch, end(1)), 30 + 3 * linkUs))).toEqual(first);
    expect(a.stats).toMatchObject({ epochEndsRepeated: 4, epochEndRepeatsTooSoon: 2 });
  });

  it('sends nothing for a repeated EpochEnd that says its part is staged already', () => {
    const a = acker();
    a.handle(message(hs.tx, data(1, GUEST_ISN + 1, 500)), 20);
    expect(specChunks(a.handle(message(hs.txEpoch, end(1)), 30))).toHaveLength(1);
    expect(specChunks(a.handle(message(hs.txEpoch, { ...end(1), specStaged: true }), 50))).toEqual([]);
    expect(a.stats.epochEndsRepeated).toBe(1);
  });

  it('stages no part for a local EpochEnd, keeps it for a repeat that asks in full, and starts the next delta where it ended', () => {
    const delta = (chunks: CheckpointChunk[]) => decodeSpecDeltas(concat(chunks.map((c) => c.data)))[0]!;
    const a = acker();
    a.handle(message(hs.tx, data(1, GUEST_ISN + 1, 500)), 20);
    const localEnd: EpochEnd = { ...end(1), txEndSeqs: [GUEST_ISN + 501], local: true };
    expect(specChunks(a.handle(message(hs.txEpoch, localEnd), 30))).toEqual([]);
    expect(a.stats.localEpochEnds).toBe(1);
    // Its repeat asks for nothing either.
    expect(specChunks(a.handle(message(hs.txEpoch, localEnd), 30 + PART_REPEAT_GAP_US))).toEqual([]);
    // Asked in full (a barrier wrongly marked local came first): the epoch's part, as it was made.
    const full = specChunks(a.handle(message(hs.txEpoch, { ...localEnd, local: false }), 30 + 2 * PART_REPEAT_GAP_US));
    expect(delta(full)).toMatchObject({ startSeq: GUEST_ISN + 1 });
    expect(delta(full).bytes).toEqual(streamBytes(GUEST_ISN + 1, 500));
    a.handle(message(hs.tx, data(2, GUEST_ISN + 501, 700)), 100);
    const two = specChunks(a.handle(message(hs.txEpoch, { ...end(2), txEndSeqs: [GUEST_ISN + 1201] }), 110));
    expect(delta(two)).toMatchObject({ startSeq: GUEST_ISN + 501 });
    expect(delta(two).bytes).toEqual(streamBytes(GUEST_ISN + 501, 700));
  });

  it('drops an EpochEnd older than the last one (a late copy)', () => {
    const a = acker();
    a.handle(message(hs.txEpoch, end(1)), 20);
    a.handle(message(hs.txEpoch, end(2)), 30);
    expect(a.handle(message(hs.txEpoch, end(1)), 40)).toEqual([]);
    expect(a.stats.staleEpochEnds).toBe(1);
  });

  it('keeps its speculative buffer when a copy of the SYN-ACK arrives late', () => {
    const a = acker();
    a.handle(message(hs.tx, data(1, GUEST_ISN + 1, 500)), 20);
    a.handle(message(hs.tx, synAck()), 30);
    expect(a.specBufferBytes).toBe(500);
  });

  it('never lets an overtaken segment move the committed header back', () => {
    const a = acker();
    a.handle(message(hs.tx, data(1, GUEST_ISN + 1, 500, 2_000)), 20);
    a.handle(message(hs.tx, data(1, GUEST_ISN + 1, 300, 1_500)), 30); // an older copy, delivered late
    expect(a.connectionState()?.guestHeader?.tsValUs).toBe(2_000);
  });
});

describe('netbuffer: repeated segments and commits', () => {
  it('holds a segment the bus delivered twice once, and releases nothing on a repeated commit', () => {
    const n = new NetbufferCore({ vmId: VM, host: HOST, subjects: hs, outSubject: s.wireOut, heldBytesMax: 1 << 20, holdData: true, statusIntervalUs: STATUS_INTERVAL_US });
    activate(n, assignment(VM, HOST, 'primary', 1), { assign: hs.assign('netbuffer'), permit: hs.permit });
    expect(n.term).toBe(1);
    const seg = segment({ term: 1, epoch: 1, seq: 100, ack: 5, flags: TcpFlag.ACK, payload: streamBytes(100, 10) });
    n.handle(message(hs.tx, seg), 0);
    n.handle(message(hs.tx, seg), 1);
    expect(n.stats.duplicatesDropped).toBe(1);
    const commit = { type: 'epochCommit', vmId: VM, term: 1, epoch: 1 } as const;
    expect(sentOn(n.handle(message(hs.commit, commit), 2), s.wireOut)).toEqual([seg]);
    expect(n.handle(message(hs.commit, commit), 3)).toEqual([]);
  });
});

describe('primary checkpointer: repeats and timeouts', () => {
  const EPOCH_US = 20_000;
  const RESEND_US = 2_000;
  const TERM = 1;
  /** What both the checkpointer of an assignment and a bare PrimaryCheckpointer run with. */
  const shared = {
    vmId: VM,
    subjects: hs,
    ckptDataSubject: s.ckptData,
    epochUs: EPOCH_US,
    maxInflightEpochs: 3,
    speculative: false,
    ackTimeoutUs: 10_000,
    replicationBytesPerSec: 1_000_000, // 1 byte/µs: 2 µs of timeout per byte
    replicationRttUs: 200,
    maxAckTimeoutUs: 50_000,
    maxLatencySamples: 10,
    resendUs: RESEND_US,
  } as const;
  const primary = (overrides: Partial<PrimaryOptions> = {}) => new PrimaryCheckpointer({ ...shared, term: TERM, backupHost: 'host-b', incarnation: 1, agentIncarnation: 1, ...overrides });
  /** The effects one call of the checkpointer pushes. */
  const effectsOf = (call: (out: Effect[]) => void): Effect[] => {
    const out: Effect[] = [];
    call(out);
    return out;
  };
  const fire = (p: PrimaryCheckpointer, name: string, nowUs: number) => effectsOf((out) => p.onTimer(name, nowUs, out));
  const stage = (p: PrimaryCheckpointer, chunk: CheckpointChunk, nowUs: number) => effectsOf((out) => p.onStaged(chunk, nowUs, out));
  const answer = (p: PrimaryCheckpointer, a: CheckpointAck, nowUs: number) => effectsOf((out) => p.onAck(a, nowUs, out));
  const parts = (epoch: number): CheckpointChunk[] => [
    ...makeChunks({ vmId: VM, term: TERM, epoch }, ChunkSource.PAGES, { pieces: [new Uint8Array(400).fill(epoch)], rawBytes: [4096] }),
    ...makeChunks({ vmId: VM, term: TERM, epoch }, ChunkSource.STATE, { pieces: [new Uint8Array(100).fill(epoch)] }),
  ];
  const BYTES = 500;
  const ack = (epoch: number, ok = true): CheckpointAck => ({ type: 'checkpointAck', vmId: VM, term: TERM, epoch, ok, reason: ok ? '' : 'missing', host: 'host-b', needsBase: false });
  const barriers = (effects: Effect[]) => sentOn(effects, hs.epoch) as EpochBarrier[];
  const commits = (effects: Effect[]) => sentOn(effects, hs.commit).map((m) => (m.type === 'epochCommit' ? m.epoch : -1));
  const data = s.ckptData('host-b');
  /** Pause and stage one epoch; returns the transfer's effects. */
  const checkpoint = (p: PrimaryCheckpointer, atUs: number): Effect[] => {
    const epoch = p.epoch;
    fire(p, 'ckpt.epoch', atUs);
    return parts(epoch).flatMap((c) => stage(p, c, atUs + 200));
  };
  const started = (p: PrimaryCheckpointer) => {
    effectsOf((out) => p.start(0, out));
    return p;
  };

  it('sends the pause barrier again every resend interval until every part is staged', () => {
    const p = started(primary());
    const paused = fire(p, 'ckpt.epoch', EPOCH_US);
    expect(timersSet(paused).get('ckpt.resend')).toBe(EPOCH_US + RESEND_US);
    const again = fire(p, 'ckpt.resend', EPOCH_US + RESEND_US);
    expect(barriers(again)).toEqual(barriers(paused));
    expect(timersSet(again).get('ckpt.resend')).toBe(EPOCH_US + 3 * RESEND_US); // the next look waits twice as long
    expect(p.stats.barrierResends).toBe(1);
    for (const c of parts(1)) stage(p, c, EPOCH_US + 3 * RESEND_US - 10);
    expect(p.state).toBe('running');
    expect(barriers(fire(p, 'ckpt.resend', EPOCH_US + 3 * RESEND_US))).toEqual([]);
  });

  it('backs the barrier repeats off while nothing arrives, up to 32 intervals, and looks every interval again once a part arrives', () => {
    const p = started(primary());
    let atUs = EPOCH_US;
    let next = timersSet(fire(p, 'ckpt.epoch', atUs)).get('ckpt.resend')!;
    const waits: number[] = [];
    for (let i = 0; i < 8; i++) {
      const effects = fire(p, 'ckpt.resend', next);
      expect(barriers(effects).map((b) => b.epoch)).toEqual([1]);
      const after = timersSet(effects).get('ckpt.resend')!;
      waits.push((after - next) / RESEND_US);
      next = after;
    }
    expect(waits).toEqual([2, 4, 8, 16, 32, 32, 32, 32]);
    expect(p.stats.barrierResends).toBe(8);
    // One part staged within the wait is progress: the next look comes one interval later again.
    atUs = next - 10;
    stage(p, parts(1)[0]!, atUs);
    const progressed = fire(p, 'ckpt.resend', next);
    expect(barriers(progressed)).toEqual([]);
    expect(timersSet(progressed).get('ckpt.resend')).toBe(next + RESEND_US);
  });

  it('does not repeat the barrier while parts still arrive: a slow checkpoint is not a lost one', () => {
    const p = started(primary());
    fire(p, 'ckpt.epoch', EPOCH_US);
    const [first, ...rest] = parts(1);
    stage(p, first!, EPOCH_US + RESEND_US / 2);
    expect(barriers(fire(p, 'ckpt.resend', EPOCH_US + RESEND_US))).toEqual([]);
    stage(p, first!, EPOCH_US + RESEND_US + 10); // a repeat is no progress
    const stalled = fire(p, 'ckpt.resend', EPOCH_US + 2 * RESEND_US);
    expect(barriers(stalled).map((b) => b.epoch)).toEqual([1]);
    expect(barriers(stalled)[0]!.stagedSources).toBe(1 << first!.source); // the part held in full does not come again
    expect(p.stats.barrierResends).toBe(1);
    for (const c of rest) stage(p, c, EPOCH_US + 2 * RESEND_US + 10);
    expect(p.state).toBe('running');
  });

  it('does not take a resend timer armed before the pause (for a commit) for a stalled pause', () => {
    const p = started(primary());
    checkpoint(p, 0); // its barrier armed the timer
    answer(p, ack(1), 1_000);
    // The commit's repeats keep the timer armed; the next pause begins just before it fires.
    const resendAt = timersSet(fire(p, 'ckpt.resend', RESEND_US)).get('ckpt.resend')!;
    const pauseUs = resendAt - 10;
    expect(barriers(fire(p, 'ckpt.epoch', pauseUs))).toHaveLength(1);
    const early = fire(p, 'ckpt.resend', resendAt);
    expect(barriers(early)).toEqual([]);
    expect(p.stats.barrierResends).toBe(0);
    // A whole interval into the pause with nothing staged, it is repeated.
    const late = fire(p, 'ckpt.resend', pauseUs + RESEND_US);
    expect(barriers(late).map((b) => b.epoch)).toEqual([2]);
  });

  it('repeats each commit twice, then stops', () => {
    const p = started(primary());
    checkpoint(p, 0);
    answer(p, ack(1), 1_000);
    const sent: Effect[] = [];
    for (let i = 1; i <= 4; i++) sent.push(...fire(p, 'ckpt.resend', 1_000 + i * RESEND_US));
    expect(barriers(sent)).toEqual([]);
    expect(commits(sent)).toEqual([1, 1]);
    expect(timersSet(fire(p, 'ckpt.resend', 1_000 + 5 * RESEND_US)).has('ckpt.resend')).toBe(false);
  });

  it('times out after epoch-proportional base + twice the transfer time, probes with the manifest alone, and backs off to the cap', () => {
    const p = started(primary());
    const transfer = checkpoint(p, 0);
    const sent = chunksOn(transfer, data);
    expect(timersSet(transfer).get('ckpt.ack')).toBe(200 + 10_000 + 2 * BYTES);
    const deadlines: number[] = [];
    let now = 200 + 10_000 + 2 * BYTES;
    for (let i = 0; i < 4; i++) {
      const probe = fire(p, 'ckpt.ack', now);
      expect(chunksOn(probe, data)).toEqual([sent[sent.length - 1]]);
      now = timersSet(probe).get('ckpt.ack')!;
      deadlines.push(now);
    }
    const base = 10_000 + 2 * BYTES;
    expect(deadlines[0]! - (200 + base)).toBe(2 * base);
    expect(deadlines[1]! - deadlines[0]!).toBe(4 * base);
    expect(deadlines[3]! - deadlines[2]!).toBe(50_000); // capped
    expect(p.stats.probes).toBe(4);
  });

  it('resends any epoch in flight that the backup NACKs, but not again within a round trip and its transfer time', () => {
    const p = started(primary());
    checkpoint(p, 0);
    const second = chunksOn(checkpoint(p, EPOCH_US), data);
    const nack = answer(p, ack(2, false), EPOCH_US + 5_000);
    expect(chunksOn(nack, data)).toEqual(second);
    expect(nack.some((e) => e.kind === 'setTimer' && e.name === 'ckpt.ack')).toBe(false); // epoch 1 is still the oldest
    expect(answer(p, ack(2, false), EPOCH_US + 5_100)).toEqual([]);
    expect(p.stats).toMatchObject({ nacks: 2, nacksIgnored: 1, resends: 1 });
  });

  it('acts on an assignment only when it is newer than the last one: a late "no peer" cannot drop a new backup', () => {
    const c = new CheckpointerCore({ ...shared, host: HOST, ckptAckSubject: s.ckptAck, statusIntervalUs: STATUS_INTERVAL_US });
    const assign = (peerHost: string, seq: number) => message(hs.assign('checkpointer'), assignment(VM, HOST, 'primary', TERM, { peerHost, seq }));
    activate(c, assignment(VM, HOST, 'primary', TERM, { peerHost: '', seq: 1 }), { assign: hs.assign('checkpointer') }, 0);
    expect(c.primary!.unprotected).toBe(true);
    c.handle(assign('host-c', 2), 200);
    expect(c.primary!.peerHost).toBe('host-c');
    c.handle(assign('', 1), 300); // delayed on the bus
    expect(c.staleAssignments).toBe(1);
    expect(c.primary!.peerHost).toBe('host-c');
    expect(c.history).toHaveLength(1); // the same term: one primary side throughout
    expect(barriers(c.handle(timer('ckpt.epoch'), EPOCH_US))[0]!.base).toBe(true);
  });
});

describe('standby image: asked again', () => {
  it('NACKs a repeated manifest while a chunk is missing, keeps what it has, and applies once the gap is filled', () => {
    const b = new StandbyImage({ vmId: VM, ckptAckSubject: s.ckptAck, term: 1, memoryBytes: 64 * 1024, specBufferBytes: 64 * 1024, maxPendingEpochs: 4, stagedBytesMax: 1024 * 1024, recordDigests: false, host: 'host-b' });
    const header = { vmId: VM, term: 1, epoch: 1 };
    const chunks = makeChunks(header, ChunkSource.STATE, { pieces: [new Uint8Array(8).fill(1), new Uint8Array(8).fill(2), new Uint8Array(4).fill(3)] });
    const manifest = makeManifest(header, chunks);
    const acks = (effects: Effect[]) => sentOn(effects, s.ckptAck) as CheckpointAck[];
    expect(acks(b.onChunk(chunks[0]!, 0))).toEqual([]);
    expect(acks(b.onChunk(chunks[2]!, 0))).toEqual([]);
    // The first manifest may simply have overtaken a chunk: wait.
    expect(acks(b.onChunk(manifest, 0))).toEqual([]);
    // The same manifest again (a probe): the chunk was lost.
    expect(acks(b.onChunk(manifest, 0))).toMatchObject([{ epoch: 1, ok: false, host: 'host-b' }]);
    expect(b.stats.incompleteNacks).toBe(1);
    // The resend: what was here already is a no-op, the missing chunk completes the epoch.
    const resent = [...chunks, manifest].flatMap((c) => acks(b.onChunk(c, 0)));
    expect(resent).toMatchObject([
      { epoch: 1, ok: true, host: 'host-b' },
      { epoch: 1, ok: true, host: 'host-b' },
    ]);
    expect(b.stats.appliedEpoch).toBe(1);
  });
});
