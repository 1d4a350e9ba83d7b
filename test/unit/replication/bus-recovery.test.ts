import { describe, expect, it } from 'vitest';
import { makeChunks, makeManifest } from '../../../lib/checkpoint/chunks.js';
import { ChunkSource, TcpFlag, type CheckpointAck, type CheckpointChunk, type EpochBarrier, type EpochEnd, type Segment } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { runConfigSchema } from '../../../lib/config/run-config.js';
import { Rng } from '../../../lib/rng.js';
import { START, type Effect } from '../../../lib/runtime/types.js';
import { defaultTcpOptions } from '../../../lib/tcp/options.js';
import { AckerCore } from '../../../services/acker/core.js';
import { CheckpointerBackupCore } from '../../../services/checkpointer/backup.js';
import { CheckpointerPrimaryCore, type PrimaryOptions } from '../../../services/checkpointer/primary.js';
import { GuestCore } from '../../../services/guest/core.js';
import { guestOptionsFromConfig } from '../../../services/guest/options-from-config.js';
import { NetbufferCore } from '../../../services/netbuffer/core.js';
import { chunksOn, message, segment, sentOn, streamBytes, timer, timersSet, VM } from './support.js';

/** Recovery from lost, repeated and reordered messages on the bus, path by path, in the core that owns each. */

const s = subjects(VM);

describe('guest: repeated and lost barriers', () => {
  const guest = () => {
    const config = runConfigSchema.parse({ mode: 'spec', seed: 3, guest: { memoryBytes: 1024 * 1024, appDirtyPagesPerSec: 2000 }, tcp: { sndBufBytes: 64 * 1024 } });
    const g = new GuestCore(guestOptionsFromConfig(config, s, new Rng(3)));
    g.tcp.term = 1;
    g.handle(START, 0);
    for (let t = 1_000; t <= 5_000; t += 1_000) g.handle(timer('app.dirty'), t); // dirty a few pages
    return g;
  };
  const barrier = (epoch: number, resume: boolean): EpochBarrier => ({ type: 'epochBarrier', vmId: VM, term: 1, epoch, resume, base: false });
  const sentParts = (effects: Effect[]) => ({ ends: sentOn(effects, s.txEpoch) as EpochEnd[], chunks: chunksOn(effects, s.ckptStage) });

  it('answers a repeated pause barrier of the epoch it is paused in with the same EpochEnd and parts, byte for byte', () => {
    const g = guest();
    const first = sentParts(g.handle(message(s.epoch, barrier(1, false)), 6_000));
    expect(first.ends).toHaveLength(1);
    expect(first.chunks.length).toBeGreaterThan(1);
    const again = sentParts(g.handle(message(s.epoch, barrier(1, false)), 8_000));
    expect(again).toEqual(first);
    expect(again.chunks.map((c) => c.data)).toEqual(first.chunks.map((c) => c.data));
    expect(g.stats.checkpointsResent).toBe(1);
    expect(g.paused).toBe(true);
  });

  it('ignores a repeated resume and an old pause barrier once it runs the next epoch', () => {
    const g = guest();
    g.handle(message(s.epoch, barrier(1, false)), 6_000);
    g.handle(message(s.epoch, barrier(1, true)), 7_000);
    expect(g.epoch).toBe(2);
    expect(g.handle(message(s.epoch, barrier(1, true)), 7_500)).toEqual([]);
    expect(g.handle(message(s.epoch, barrier(1, false)), 7_600)).toEqual([]);
    expect(g.epoch).toBe(2);
    expect(g.paused).toBe(false);
  });

  it('takes the pause barrier of N + 1 while paused in N as the lost resume of N', () => {
    const g = guest();
    g.handle(message(s.epoch, barrier(1, false)), 6_000);
    const next = sentParts(g.handle(message(s.epoch, barrier(2, false)), 30_000));
    expect(g.stats.impliedResumes).toBe(1);
    expect(g.epoch).toBe(2);
    expect(g.paused).toBe(true);
    expect(next.ends.map((e) => e.epoch)).toEqual([2]);
    expect(new Set(next.chunks.map((c) => c.epoch))).toEqual(new Set([2]));
  });
});

describe('acker: repeated and late EpochEnds', () => {
  const CLIENT_ISN = 1000;
  const GUEST_ISN = 5000;
  const acker = () => {
    const a = new AckerCore({ vmId: VM, mode: 'spec', subjects: s, tcp: defaultTcpOptions({ mssBytes: 1000 }), specBufferBytes: 64 * 1024, chunkBytes: 4096, recordDigests: false });
    a.term = 1;
    a.handle(message(s.wireIn, segment({ seq: CLIENT_ISN, flags: TcpFlag.SYN, window: 65535, mss: 1000 })), 0);
    a.handle(message(s.tx, synAck()), 10);
    return a;
  };
  const synAck = (): Segment => segment({ term: 1, epoch: 1, seq: GUEST_ISN, ack: CLIENT_ISN + 1, flags: TcpFlag.SYN | TcpFlag.ACK, window: 500, mss: 1000 });
  const data = (epoch: number, seq: number, len: number, tsValUs = 1000 * epoch): Segment =>
    segment({ term: 1, epoch, seq, ack: CLIENT_ISN + 1, window: 100, tsValUs, flags: TcpFlag.ACK, payload: streamBytes(seq, len) });
  const end = (epoch: number): EpochEnd => ({ type: 'epochEnd', vmId: VM, term: 1, epoch, txEndSeq: 0, base: false });
  const specChunks = (effects: Effect[]) => chunksOn(effects, s.ckptStage);

  it('sends exactly the same SPEC chunks for a repeated EpochEnd, even after more data arrived', () => {
    const a = acker();
    a.handle(message(s.tx, data(1, GUEST_ISN + 1, 500)), 20);
    const first = specChunks(a.handle(message(s.txEpoch, end(1)), 30));
    expect(first).toHaveLength(1);
    a.handle(message(s.tx, data(2, GUEST_ISN + 501, 700)), 40);
    const again = specChunks(a.handle(message(s.txEpoch, end(1)), 50));
    expect(again).toEqual(first);
    expect(a.stats.epochEndsRepeated).toBe(1);
    // The next epoch's delta starts where epoch 1's ended: the repeat changed nothing.
    const second = specChunks(a.handle(message(s.txEpoch, end(2)), 60));
    expect(second[0]!.epoch).toBe(2);
    expect(a.specBufferBytes).toBe(1200);
  });

  it('drops an EpochEnd older than the last one (a late copy)', () => {
    const a = acker();
    a.handle(message(s.txEpoch, end(1)), 20);
    a.handle(message(s.txEpoch, end(2)), 30);
    expect(a.handle(message(s.txEpoch, end(1)), 40)).toEqual([]);
    expect(a.stats.staleEpochEnds).toBe(1);
  });

  it('keeps its speculative buffer when a copy of the SYN-ACK arrives late', () => {
    const a = acker();
    a.handle(message(s.tx, data(1, GUEST_ISN + 1, 500)), 20);
    a.handle(message(s.tx, synAck()), 30);
    expect(a.specBufferBytes).toBe(500);
  });

  it('never lets an overtaken segment move the committed header back', () => {
    const a = acker();
    a.handle(message(s.tx, data(1, GUEST_ISN + 1, 500, 2_000)), 20);
    a.handle(message(s.tx, data(1, GUEST_ISN + 1, 300, 1_500)), 30); // an older copy, delivered late
    expect(a.connectionState()?.guestHeader?.tsValUs).toBe(2_000);
  });
});

describe('netbuffer: repeated segments and commits', () => {
  it('holds a segment the bus delivered twice once, and releases nothing on a repeated commit', () => {
    const n = new NetbufferCore({ vmId: VM, txSubject: s.tx, commitSubject: s.commit, outSubject: s.wireOut, heldBytesMax: 1 << 20, holdData: true });
    n.term = 1;
    const seg = segment({ term: 1, epoch: 1, seq: 100, ack: 5, flags: TcpFlag.ACK, payload: streamBytes(100, 10) });
    n.handle(message(s.tx, seg), 0);
    n.handle(message(s.tx, seg), 1);
    expect(n.stats.duplicatesDropped).toBe(1);
    const commit = { type: 'epochCommit', vmId: VM, term: 1, epoch: 1 } as const;
    expect(sentOn(n.handle(message(s.commit, commit), 2), s.wireOut)).toEqual([seg]);
    expect(n.handle(message(s.commit, commit), 3)).toEqual([]);
  });
});

describe('primary checkpointer: repeats and timeouts', () => {
  const EPOCH_US = 20_000;
  const RESEND_US = 2_000;
  const primary = (overrides: Partial<PrimaryOptions> = {}) => {
    const p = new CheckpointerPrimaryCore({
      vmId: VM,
      subjects: s,
      epochUs: EPOCH_US,
      pauseFixedUs: 100,
      copyBytesPerSec: 1e9,
      maxInflightEpochs: 3,
      speculative: false,
      ackTimeoutUs: 10_000,
      replicationBytesPerSec: 1_000_000, // 1 byte/µs: 2 µs of timeout per byte
      replicationRttUs: 200,
      maxAckTimeoutUs: 50_000,
      maxLatencySamples: 10,
      resendUs: RESEND_US,
      backupHost: 'host-b',
      controlSubject: s.control('host-a'),
      ...overrides,
    });
    p.term = 1;
    return p;
  };
  const parts = (epoch: number): CheckpointChunk[] => [
    ...makeChunks({ vmId: VM, term: 1, epoch }, ChunkSource.PAGES, [new Uint8Array(400).fill(epoch)], [4096]),
    ...makeChunks({ vmId: VM, term: 1, epoch }, ChunkSource.STATE, [new Uint8Array(100).fill(epoch)]),
  ];
  const BYTES = 500;
  const ack = (epoch: number, ok = true): CheckpointAck => ({ type: 'checkpointAck', vmId: VM, term: 1, epoch, ok, reason: ok ? '' : 'missing', host: 'host-b' });
  const barriers = (effects: Effect[]) => sentOn(effects, s.epoch) as EpochBarrier[];
  const commits = (effects: Effect[]) => sentOn(effects, s.commit).map((m) => (m.type === 'epochCommit' ? m.epoch : -1));
  /** Pause, stage and copy one epoch; returns the transfer's effects. */
  const checkpoint = (p: CheckpointerPrimaryCore, atUs: number): Effect[] => {
    const epoch = p.epoch;
    p.handle(timer('ckpt.epoch'), atUs);
    for (const c of parts(epoch)) p.handle(message(s.ckptStage, c), atUs + 10);
    return p.handle(timer('ckpt.copy'), atUs + 200);
  };

  it('sends the pause barrier again every resend interval until every part is staged', () => {
    const p = primary();
    p.handle(START, 0);
    const paused = p.handle(timer('ckpt.epoch'), EPOCH_US);
    expect(timersSet(paused).get('ckpt.resend')).toBe(EPOCH_US + RESEND_US);
    const again = p.handle(timer('ckpt.resend'), EPOCH_US + RESEND_US);
    expect(barriers(again)).toEqual(barriers(paused));
    expect(timersSet(again).get('ckpt.resend')).toBe(EPOCH_US + 2 * RESEND_US);
    expect(p.stats.barrierResends).toBe(1);
    for (const c of parts(1)) p.handle(message(s.ckptStage, c), EPOCH_US + 2 * RESEND_US - 10);
    expect(p.state).toBe('copying');
    expect(barriers(p.handle(timer('ckpt.resend'), EPOCH_US + 2 * RESEND_US))).toEqual([]);
  });

  it('repeats each resume three times and each commit twice, then stops', () => {
    const p = primary();
    p.handle(START, 0);
    checkpoint(p, 0);
    p.handle(message(s.ckptAck, ack(1)), 1_000);
    const sent: Effect[] = [];
    for (let i = 1; i <= 6; i++) sent.push(...p.handle(timer('ckpt.resend'), i * RESEND_US));
    expect(barriers(sent).map((b) => [b.epoch, b.resume])).toEqual([
      [1, true],
      [1, true],
      [1, true],
    ]);
    expect(commits(sent)).toEqual([1, 1]);
    expect(timersSet(p.handle(timer('ckpt.resend'), 7 * RESEND_US)).has('ckpt.resend')).toBe(false);
  });

  it('times out after epoch-proportional base + twice the transfer time, probes with the manifest alone, and backs off to the cap', () => {
    const p = primary();
    p.handle(START, 0);
    const transfer = checkpoint(p, 0);
    const sent = chunksOn(transfer, s.ckptData);
    expect(timersSet(transfer).get('ckpt.ack')).toBe(200 + 10_000 + 2 * BYTES);
    const deadlines: number[] = [];
    let now = 200 + 10_000 + 2 * BYTES;
    for (let i = 0; i < 4; i++) {
      const probe = p.handle(timer('ckpt.ack'), now);
      expect(chunksOn(probe, s.ckptData)).toEqual([sent[sent.length - 1]]);
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
    const p = primary();
    p.handle(START, 0);
    checkpoint(p, 0);
    const second = chunksOn(checkpoint(p, EPOCH_US), s.ckptData);
    const nack = p.handle(message(s.ckptAck, ack(2, false)), EPOCH_US + 5_000);
    expect(chunksOn(nack, s.ckptData)).toEqual(second);
    expect(nack.some((e) => e.kind === 'setTimer' && e.name === 'ckpt.ack')).toBe(false); // epoch 1 is still the oldest
    expect(p.handle(message(s.ckptAck, ack(2, false)), EPOCH_US + 5_100)).toEqual([]);
    expect(p.stats).toMatchObject({ nacks: 2, nacksIgnored: 1, resends: 1 });
  });

  it('acts on a role change only when it is newer than the last one: a late "no peer" cannot drop a new backup', () => {
    const p = primary({ unprotected: true, backupHost: '' });
    p.handle(START, 0);
    const change = (peerHost: string, seq: number) => message(s.control('host-a'), { type: 'roleChange', vmId: VM, term: 1, host: 'host-a', role: 'primary', peerHost, seq });
    p.handle(change('', 1), 100);
    p.handle(change('host-c', 2), 200);
    p.handle(change('', 1), 300); // delayed on the bus
    expect(p.stats.staleRoleChanges).toBe(1);
    expect(barriers(p.handle(timer('ckpt.epoch'), EPOCH_US))[0]!.base).toBe(true);
  });
});

describe('backup checkpointer: asked again', () => {
  it('NACKs a repeated manifest while a chunk is missing, keeps what it has, and applies once the gap is filled', () => {
    const b = new CheckpointerBackupCore({ vmId: VM, subjects: s, memoryBytes: 64 * 1024, specBufferBytes: 64 * 1024, maxPendingEpochs: 4, recordDigests: false, host: 'host-b' });
    const header = { vmId: VM, term: 0, epoch: 1 };
    const chunks = makeChunks(header, ChunkSource.STATE, [new Uint8Array(8).fill(1), new Uint8Array(8).fill(2), new Uint8Array(4).fill(3)]);
    const manifest = makeManifest(header, chunks, false);
    const acks = (effects: Effect[]) => sentOn(effects, s.ckptAck) as CheckpointAck[];
    expect(acks(b.handle(message(s.ckptData, chunks[0]!), 0))).toEqual([]);
    expect(acks(b.handle(message(s.ckptData, chunks[2]!), 0))).toEqual([]);
    // The first manifest may simply have overtaken a chunk: wait.
    expect(acks(b.handle(message(s.ckptData, manifest), 0))).toEqual([]);
    // The same manifest again (a probe): the chunk was lost.
    expect(acks(b.handle(message(s.ckptData, manifest), 0))).toMatchObject([{ epoch: 1, ok: false }]);
    expect(b.stats.incompleteNacks).toBe(1);
    // The resend: what was here already is a no-op, the missing chunk completes the epoch.
    const resent = [...chunks, manifest].flatMap((c) => acks(b.handle(message(s.ckptData, c), 0)));
    expect(resent).toMatchObject([{ epoch: 1, ok: true }, { epoch: 1, ok: true }]);
    expect(b.stats.appliedEpoch).toBe(1);
  });
});
