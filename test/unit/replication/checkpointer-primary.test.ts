import { describe, expect, it } from 'vitest';
import { makeChunks } from '../../../lib/checkpoint/chunks.js';
import { bytesEqual } from '../../../lib/checkpoint/hash.js';
import { ChunkSource, type CheckpointAck, type CheckpointChunk, type EpochBarrier, type EpochCommit, type OutputIdle } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { InvariantError } from '../../../lib/errors.js';
import type { Effect } from '../../../lib/runtime/types.js';
import { PrimaryCheckpointer, type PrimaryOptions } from '../../../services/checkpointer/primary.js';
import { chunksOn, concat, sentOn, timersSet, VM } from './support.js';

const s = subjects(VM);
const hs = s.host('host-a');
const TERM = 3;
const EPOCH_US = 50_000;
const ACK_TIMEOUT_US = 100_000;

const primary = (overrides: Partial<PrimaryOptions> = {}) =>
  new PrimaryCheckpointer({
    vmId: VM,
    subjects: hs,
    ckptDataSubject: s.ckptData,
    term: TERM,
    epochUs: EPOCH_US,
    maxInflightEpochs: 2,
    speculative: true,
    ackTimeoutUs: ACK_TIMEOUT_US,
    maxLatencySamples: 100,
    backupHost: 'host-b',
    incarnation: 1,
    agentIncarnation: 1,
    ...overrides,
  });

/** The effects one call of the checkpointer pushes. */
function effectsOf(call: (out: Effect[]) => void): Effect[] {
  const out: Effect[] = [];
  call(out);
  return out;
}
const start = (p: PrimaryCheckpointer, nowUs: number) => effectsOf((out) => p.start(nowUs, out));
const fire = (p: PrimaryCheckpointer, name: string, nowUs: number) => effectsOf((out) => p.onTimer(name, nowUs, out));
const stage = (p: PrimaryCheckpointer, chunk: CheckpointChunk, nowUs: number) => effectsOf((out) => p.onStaged(chunk, nowUs, out));
const changePeer = (p: PrimaryCheckpointer, peerHost: string, nowUs: number) => effectsOf((out) => p.changePeer(peerHost, nowUs, out));
const ackMsg = (epoch: number, ok = true, host = 'host-b', term = TERM): CheckpointAck => ({ type: 'checkpointAck', vmId: VM, term, epoch, ok, reason: ok ? '' : 'bad', host, needsBase: false });
const ack = (p: PrimaryCheckpointer, epoch: number, nowUs: number, ok = true, host = 'host-b') => effectsOf((out) => p.onAck(ackMsg(epoch, ok, host), nowUs, out));

/** The parts a guest (PAGES, STATE) and an acker (SPEC) stage for `epoch`. */
function parts(epoch: number, term = TERM): CheckpointChunk[] {
  const header = { vmId: VM, term, epoch };
  const bytes = (n: number, fill: number) => new Uint8Array(n).fill((fill + epoch) & 0xff);
  return [
    ...makeChunks(header, ChunkSource.PAGES, { pieces: [bytes(300, 1), bytes(200, 2)], rawBytes: [4096, 4096] }),
    ...makeChunks(header, ChunkSource.STATE, { pieces: [bytes(100, 3)] }),
    ...makeChunks(header, ChunkSource.SPEC, { pieces: [bytes(50, 4)] }),
  ];
}
const STAGED_BYTES = 300 + 200 + 100 + 50;

const barriers = (effects: Effect[]) => sentOn(effects, hs.epoch) as EpochBarrier[];
const commits = (effects: Effect[]) => (sentOn(effects, hs.commit) as EpochCommit[]).map((m) => m.epoch);
const dataChunks = (effects: Effect[], host = 'host-b') => chunksOn(effects, s.ckptData(host));
/** Every checkpoint chunk sent anywhere. */
const allChunks = (effects: Effect[]) => effects.flatMap((e) => (e.kind === 'send' && e.msg.type === 'checkpointChunk' ? [e.msg] : []));

/** The time after a pause's start at which `checkpoint` stages its last part. */
const STAGE_US = 10;

/**
 * One epoch: its barrier, and the parts the barrier asks for staged (a local
 * epoch's: the guest's state alone). `staging`: the effects of every part
 * staged; `transfer`: the last part's (the manifest, the timers).
 */
function checkpoint(p: PrimaryCheckpointer, atUs: number): { barrier: Effect[]; staging: Effect[]; transfer: Effect[] } {
  const epoch = p.epoch;
  const barrier = fire(p, 'ckpt.epoch', atUs);
  const local = barriers(barrier)[0]?.local === true;
  const staging: Effect[] = [];
  let transfer: Effect[] = [];
  for (const c of parts(epoch)) {
    if (local && c.source !== ChunkSource.STATE) continue;
    transfer = stage(p, c, atUs + STAGE_US);
    staging.push(...transfer);
  }
  return { barrier, staging, transfer };
}

describe('PrimaryCheckpointer', () => {
  it('arms the epoch timer on start', () => {
    const p = primary();
    expect(start(p, 7)).toEqual([{ kind: 'setTimer', name: 'ckpt.epoch', atUs: 7 + EPOCH_US }]);
    expect(p.state).toBe('running');
    expect(p.epoch).toBe(1);
  });

  it('sends a pausing barrier for epoch 1 under its term to its host’s epoch subject when the epoch timer fires', () => {
    const p = primary({ term: 4 });
    const effects = fire(p, 'ckpt.epoch', EPOCH_US);
    expect(effects).toEqual([{ kind: 'send', subject: hs.epoch, msg: { type: 'epochBarrier', vmId: VM, term: 4, epoch: 1, base: false, stagedSources: 0, joinSeq: 0, local: false } }]);
    expect(p.state).toBe('pausing');
  });

  it('refuses to run without a term', () => {
    expect(() => primary({ term: 0 })).toThrow(InvariantError);
  });

  it('starts the transfer and the next epoch once PAGES, STATE and SPEC are all staged (the guest resumed by itself)', () => {
    const p = primary();
    fire(p, 'ckpt.epoch', 1_000);
    const chunks = parts(1);
    // Each part goes on to the backup as it is staged; nothing else happens until the last.
    for (const c of chunks.slice(0, -1)) expect(stage(p, c, 1_100)).toEqual([{ kind: 'send', subject: s.ckptData('host-b'), msg: c }]);
    expect(p.state).toBe('pausing');
    const effects = stage(p, chunks.at(-1)!, 1_200);
    expect(dataChunks(effects).map((c) => c.source)).toEqual([chunks.at(-1)!.source, ChunkSource.MANIFEST]);
    expect(barriers(effects)).toEqual([]);
    expect(timersSet(effects).get('ckpt.epoch')).toBe(1_200 + EPOCH_US);
    expect(p.state).toBe('running');
    expect(p.epoch).toBe(2);
  });

  it('waits for every chunk of a multi-chunk source, counting a repeated chunk once', () => {
    const p = primary();
    fire(p, 'ckpt.epoch', 0);
    const [pages0, pages1, state, spec] = parts(1);
    expect([pages0!, state!, spec!, pages0!].map((c) => dataChunks(stage(p, c, 10)))).toEqual([[pages0], [state], [spec], []]); // the repeat is not sent again
    expect(dataChunks(stage(p, pages1!, 20))).toEqual([pages1, expect.objectContaining({ source: ChunkSource.MANIFEST })]);
    expect(p.stats.checkpointBytesTotal).toBe(STAGED_BYTES);
  });

  it('without speculation is complete with PAGES and STATE, and counts a SPEC chunk as stale', () => {
    const p = primary({ speculative: false });
    fire(p, 'ckpt.epoch', 0);
    const chunks = parts(1);
    const spec = chunks.find((c) => c.source === ChunkSource.SPEC)!;
    expect(stage(p, spec, 5)).toEqual([]);
    expect(p.stats.staleChunks).toBe(1);
    const effects = chunks.filter((x) => x !== spec).flatMap((c) => stage(p, c, 10));
    expect(dataChunks(effects).map((c) => c.source)).toEqual([ChunkSource.PAGES, ChunkSource.PAGES, ChunkSource.STATE, ChunkSource.MANIFEST]);
    expect(p.stats.checkpointBytesTotal).toBe(STAGED_BYTES - spec.data.length);
  });

  it('counts chunks staged outside a pause or for another epoch as stale', () => {
    const p = primary();
    expect(stage(p, parts(1)[0]!, 0)).toEqual([]); // before the barrier
    fire(p, 'ckpt.epoch', 0);
    expect(stage(p, parts(2)[0]!, 0)).toEqual([]);
    expect(p.stats.staleChunks).toBe(2);
    expect(p.state).toBe('pausing');
  });

  it('refuses a staged part whose index and count fit no checkpoint, or whose count is not its source’s: the map of a pause stays within maxChunksPerSource', () => {
    const MAX = 16;
    const p = primary({ maxChunksPerSource: MAX });
    fire(p, 'ckpt.epoch', 0);
    const [pages0, pages1, ...rest] = parts(1);
    // Forged: a count past the bound, an index past its count, a count other than the source's first chunk's.
    const forged = [
      ...Array.from({ length: 100 }, (_, i) => ({ ...pages0!, index: i, count: MAX + 1 })),
      { ...pages0!, index: 5, count: 2 },
      { ...pages1!, count: 3 },
    ];
    const effects = stage(p, pages0!, 5);
    for (const c of forged) expect(stage(p, c, 6)).toEqual([]); // none goes on to the backup
    expect(p.stats).toMatchObject({ malformedChunks: forged.length, staleChunks: 0 });
    // The real parts still complete the checkpoint.
    for (const c of [pages1!, ...rest]) effects.push(...stage(p, c, 10));
    expect(dataChunks(effects)).toHaveLength(parts(1).length + 1);
  });

  it('drops staged parts and acknowledgements of another term, counting them apart from stale chunks', () => {
    const p = primary();
    fire(p, 'ckpt.epoch', 0);
    // A deposed or later term's guest and acker stage the same epoch: none of it completes this checkpoint.
    for (const c of [...parts(1, TERM - 1), ...parts(1, TERM + 1)]) expect(stage(p, c, 10)).toEqual([]);
    expect(p.state).toBe('pausing');
    expect(p.stats).toMatchObject({ staleTermDrops: 2 * parts(1).length, staleChunks: 0 });
    const effects = parts(1).flatMap((c) => stage(p, c, 20));
    expect(dataChunks(effects)).toHaveLength(parts(1).length + 1);
    // The backup host answering for another term commits nothing.
    for (const term of [TERM - 1, TERM + 1]) expect(effectsOf((out) => p.onAck(ackMsg(1, true, 'host-b', term), 30_000, out))).toEqual([]);
    expect(p.stats).toMatchObject({ staleTermDrops: 2 * parts(1).length + 2, lastCommittedEpoch: 0, foreignAcks: 0 });
    expect(commits(ack(p, 1, 30_000))).toEqual([1]);
  });

  it('sends every chunk on to the backup host as it is staged, then the manifest, and arms the ack and next epoch timers', () => {
    const p = primary();
    const { staging, transfer } = checkpoint(p, 0);
    const now = STAGE_US;
    const data = s.ckptData('host-b');
    const kinds = staging.map((e) => (e.kind === 'send' ? `${e.subject}:${e.msg.type === 'checkpointChunk' ? e.msg.source : e.msg.type}` : `${e.kind}:${'name' in e ? e.name : ''}`));
    expect(kinds).toEqual([
      `${data}:${ChunkSource.PAGES}`,
      `${data}:${ChunkSource.PAGES}`,
      `${data}:${ChunkSource.STATE}`,
      `${data}:${ChunkSource.SPEC}`,
      `${data}:${ChunkSource.MANIFEST}`,
      'setTimer:ckpt.ack',
      'setTimer:ckpt.epoch',
    ]);
    const sent = dataChunks(staging);
    const manifest = sent.at(-1)!;
    expect(manifest).toMatchObject({ epoch: 1, term: TERM, source: ChunkSource.MANIFEST, index: 0, count: 1, base: false });
    expect(bytesEqual(manifest.data, concat(sent.slice(0, -1).map((c) => c.hash)))).toBe(true);
    expect(sent.slice(0, -1)).toEqual(parts(1));
    expect(timersSet(transfer)).toEqual(
      new Map([
        ['ckpt.ack', now + ACK_TIMEOUT_US],
        ['ckpt.epoch', now + EPOCH_US],
      ]),
    );
    expect(p.state).toBe('running');
    expect(p.epoch).toBe(2);
    expect(p.stats.checkpointBytesTotal).toBe(STAGED_BYTES);
    expect(p.stats.checkpointRawBytesTotal).toBe(4096 * 2 + 100 + 50);
  });

  it('commits epoch N on the backup ACK of N and cancels the ack timer', () => {
    const p = primary();
    checkpoint(p, 0);
    const effects = ack(p, 1, 5_000);
    expect(sentOn(effects, hs.commit)).toEqual([{ type: 'epochCommit', vmId: VM, term: TERM, epoch: 1 }]);
    expect(effects).toContainEqual({ kind: 'cancelTimer', name: 'ckpt.ack' });
    expect(p.stats).toMatchObject({ lastCommittedEpoch: 1, checkpoints: 1, localCommits: 0, commitLatenciesUs: [5_000] });
    expect(ack(p, 1, 6_000)).toEqual([]); // a duplicate ACK commits nothing
  });

  it('commits in order: an ACK of N commits N and the epochs before it, which the backup applied first', () => {
    const p = primary();
    checkpoint(p, 0);
    checkpoint(p, 100_000);
    const first = ack(p, 1, 200_010);
    expect(commits(first)).toEqual([1]);
    expect(timersSet(first).get('ckpt.ack')).toBe(200_010 + ACK_TIMEOUT_US); // epoch 2 still in flight
    expect(commits(ack(p, 2, 200_020))).toEqual([2]);
    expect(p.stats.lastCommittedEpoch).toBe(2);
    // The ACK of 3 arrives, that of 4 was lost on the way: the ACK of 5 commits both.
    checkpoint(p, 300_000);
    checkpoint(p, 400_000);
    expect(commits(ack(p, 3, 450_000))).toEqual([3]);
    checkpoint(p, 500_000);
    const cumulative = ack(p, 5, 550_000);
    expect(commits(cumulative)).toEqual([4, 5]);
    expect(cumulative).toContainEqual({ kind: 'cancelTimer', name: 'ckpt.ack' });
  });

  it('resends the same chunks on a NACK, and the manifest alone on the ack timeout', () => {
    const p = primary();
    const sent = dataChunks(checkpoint(p, 0).staging);
    const nack = ack(p, 1, 10_000, false);
    expect(dataChunks(nack)).toEqual(sent);
    expect(timersSet(nack).get('ckpt.ack')).toBe(10_000 + ACK_TIMEOUT_US);
    expect(commits(nack)).toEqual([]);
    // The manifest asks the backup again: it ACKs what it applied, NACKs what lacks a chunk.
    const timeout = fire(p, 'ckpt.ack', 110_000);
    expect(dataChunks(timeout)).toEqual([sent[sent.length - 1]]);
    expect(timersSet(timeout).get('ckpt.ack')).toBe(110_000 + ACK_TIMEOUT_US);
    expect(p.stats).toMatchObject({ nacks: 1, resends: 1, probes: 1, lastCommittedEpoch: 0 });
    expect(commits(ack(p, 1, 120_000))).toEqual([1]);
    // Nothing in flight: a late timeout sends nothing.
    expect(fire(p, 'ckpt.ack', 300_000)).toEqual([]);
  });

  it('throttles the next epoch at maxInflightEpochs and sends its barrier when a commit frees capacity', () => {
    const p = primary({ maxInflightEpochs: 1 });
    checkpoint(p, 0);
    expect(fire(p, 'ckpt.epoch', 60_000)).toEqual([]);
    expect(p.state).toBe('throttled');
    const effects = ack(p, 1, 70_000);
    expect(commits(effects)).toEqual([1]);
    expect(barriers(effects)).toEqual([{ type: 'epochBarrier', vmId: VM, term: TERM, epoch: 2, base: false, stagedSources: 0, joinSeq: 0, local: false }]);
    expect(p.state).toBe('pausing');
    // The commit latency is measured from the barrier, not from the epoch timer.
    for (const c of parts(2)) stage(p, c, 70_010);
    ack(p, 2, 90_000);
    expect(p.stats.commitLatenciesUs.at(-1)).toBe(20_000);
  });

  it('continues the numbering from firstEpoch', () => {
    const p = primary({ firstEpoch: 8 });
    expect(p.stats.lastCommittedEpoch).toBe(7);
    expect(p.stats.lastLocalCommitEpoch).toBe(7);
    expect(barriers(fire(p, 'ckpt.epoch', 0))[0]!.epoch).toBe(8);
  });

  it('unprotected (no backup host), commits each epoch locally once staged and sends no chunk anywhere', () => {
    const p = primary({ backupHost: '', maxInflightEpochs: 1 });
    expect(p.unprotected).toBe(true);
    expect(p.peerHost).toBe('');
    const { transfer } = checkpoint(p, 0);
    expect(allChunks(transfer)).toEqual([]);
    expect(commits(transfer)).toEqual([1]);
    expect(p.stats).toMatchObject({ localCommits: 1, lastLocalCommitEpoch: 1, checkpoints: 0 });
    expect(p.state).toBe('running');
    // Capacity is free again: the next epoch is not throttled.
    expect(barriers(checkpoint(p, 100_000).barrier)[0]!.epoch).toBe(2);
  });

  it('pauses an epoch no backup receives as local: only the state is staged, the epoch commits at once, and the base that follows is not local', () => {
    const p = primary({ backupHost: '', maxInflightEpochs: 1 });
    const barrier = fire(p, 'ckpt.epoch', 0);
    expect(barriers(barrier)).toEqual([{ type: 'epochBarrier', vmId: VM, term: TERM, epoch: 1, base: false, stagedSources: 0, joinSeq: 0, local: true }]);
    const [pages1, pages2, state, spec] = parts(1);
    // The pages and the speculative part are not this epoch's to stage: refused as foreign, and not waited for.
    for (const c of [pages1!, pages2!, spec!]) expect(commits(stage(p, c, 1_000))).toEqual([]);
    expect(p.stats.staleChunks).toBe(3);
    expect(commits(stage(p, state!, 2_000))).toEqual([1]);
    expect(p.stats).toMatchObject({ localEpochs: 1, localCommits: 1, checkpoints: 0, pauseToStagedUsTotal: 0 });
    // A backup joins: the next barrier is its base, asked of every source.
    changePeer(p, 'host-c', 10_000);
    const base = checkpoint(p, 100_000);
    expect(barriers(base.barrier)).toEqual([expect.objectContaining({ epoch: 2, base: true, local: false })]);
    expect(dataChunks(base.staging, 'host-c').map((c) => c.source)).toEqual([ChunkSource.PAGES, ChunkSource.PAGES, ChunkSource.STATE, ChunkSource.SPEC, ChunkSource.MANIFEST]);
    expect(p.stats.localEpochs).toBe(1);
  });

  it('with a backup joining from the start, commits locally until the next barrier, which is the backup’s base epoch', () => {
    const p = primary({ backupHost: 'host-c', backupJoining: true, firstEpoch: 5 });
    expect(p.unprotected).toBe(true);
    expect(p.peerHost).toBe('host-c');
    const { barrier, transfer } = checkpoint(p, 0);
    expect(barriers(barrier)).toEqual([{ type: 'epochBarrier', vmId: VM, term: TERM, epoch: 5, base: true, stagedSources: 0, joinSeq: 0, local: false }]);
    expect(commits(transfer)).toEqual([]);
    const sent = dataChunks(transfer, 'host-c');
    expect(sent.at(-1)).toMatchObject({ source: ChunkSource.MANIFEST, epoch: 5, base: true });
    expect(p.unprotected).toBe(false);
    expect(p.stats.backupsJoined).toBe(1);
    expect(commits(ack(p, 5, 60_000, true, 'host-c'))).toEqual([5]);
    expect(p.stats).toMatchObject({ checkpoints: 1, localCommits: 0, lastLocalCommitEpoch: 4 });
  });

  it('when a new backup joins, makes the next epoch its base and from then on commits only on its acknowledgement', () => {
    const p = primary({ backupHost: '' });
    expect(commits(checkpoint(p, 0).transfer)).toEqual([1]);
    expect(changePeer(p, 'host-c', 60_000)).toEqual([]);
    expect(p.peerHost).toBe('host-c');
    const { barrier, staging, transfer } = checkpoint(p, 100_000);
    expect(barriers(barrier)).toEqual([{ type: 'epochBarrier', vmId: VM, term: TERM, epoch: 2, base: true, stagedSources: 0, joinSeq: 0, local: false }]);
    expect(commits(transfer)).toEqual([]);
    const sent = dataChunks(staging, 'host-c');
    expect(sent).toHaveLength(parts(2).length + 1);
    expect(sent.filter((c) => c.base).map((c) => c.source)).toEqual([ChunkSource.MANIFEST]);
    expect(p.unprotected).toBe(false);
    expect(p.stats.backupsJoined).toBe(1);
    // The epoch after the base is an ordinary one.
    expect(barriers(checkpoint(p, 200_000).barrier)[0]!.base).toBe(false);
    // Only the new peer's acknowledgements count now.
    expect(commits(ack(p, 2, 210_000, true, 'host-b'))).toEqual([]);
    expect(p.stats.foreignAcks).toBe(1);
    expect(commits(ack(p, 2, 210_000, true, 'host-c'))).toEqual([2]);
    expect(p.stats.lastLocalCommitEpoch).toBe(1);
  });

  it('calls a joining backup complete once it acknowledged every checkpoint that seeds its base, not the base alone; one there from the start is', () => {
    expect(primary({ backupHost: 'host-b' }).backupSynced).toBe(true);
    const p = primary({ backupHost: '', seedEpochs: 3 });
    checkpoint(p, 0);
    changePeer(p, 'host-c', 60_000);
    const synced: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      const epoch = p.epoch;
      checkpoint(p, 100_000 * (i + 1));
      ack(p, epoch, 100_000 * (i + 1) + 50_000, true, 'host-c');
      synced.push(p.backupSynced);
    }
    // Base (epoch 2) and two more carry the seed: complete at the third acknowledgement.
    expect(synced).toEqual([false, false, true, true]);
    changePeer(p, '', 600_000);
    expect(p.backupSynced).toBe(false);
  });

  it('commits the base epoch locally when the joining backup is dropped while it is staged, and sends it nothing more', () => {
    const p = primary({ backupHost: '' });
    changePeer(p, 'host-c', 0);
    const epoch = p.epoch;
    expect(barriers(fire(p, 'ckpt.epoch', 50_000))[0]!.base).toBe(true);
    const chunks = parts(epoch);
    for (const c of chunks.slice(0, -1)) stage(p, c, 50_010);
    changePeer(p, '', 50_020);
    const transfer = stage(p, chunks.at(-1)!, 50_030);
    expect(allChunks(transfer)).toEqual([]);
    expect(commits(transfer)).toEqual([epoch]);
    expect(p.unprotected).toBe(true);
    expect(p.stats.backupsJoined).toBe(1);
  });

  it('when its backup is dropped, commits every epoch in flight locally, stops the ack timer and from then on sends nothing to it', () => {
    const p = primary();
    checkpoint(p, 0);
    checkpoint(p, 100_000);
    const dropped = changePeer(p, '', 150_000);
    expect(commits(dropped)).toEqual([1, 2]);
    expect(dropped).toContainEqual({ kind: 'cancelTimer', name: 'ckpt.ack' });
    expect(p.stats).toMatchObject({ lastCommittedEpoch: 2, localCommits: 2, checkpoints: 0, lastLocalCommitEpoch: 2 });
    expect(p.unprotected).toBe(true);
    // The dropped backup, alive but cut off, still answers: that commits nothing more.
    expect(ack(p, 2, 160_000)).toEqual([]);
    expect(p.stats.foreignAcks).toBe(1);
    const { transfer } = checkpoint(p, 200_000);
    expect(allChunks(transfer)).toEqual([]);
    expect(commits(transfer)).toEqual([3]);
  });

  it("drops acknowledgements from a host that is not its backup (a dropped backup, cut off but alive)", () => {
    const p = primary();
    checkpoint(p, 0);
    expect(commits(ack(p, 1, 20_000, true, 'host-x'))).toEqual([]);
    expect(p.stats.foreignAcks).toBe(1);
    expect(commits(ack(p, 1, 20_000))).toEqual([1]);
  });

  it('given a new peer while another is still its backup, takes the old one as dropped (that change was lost) and joins the new one', () => {
    const p = primary();
    checkpoint(p, 0);
    const effects = changePeer(p, 'host-c', 20_000);
    // Epoch 1 never got host-b's acknowledgement: it commits locally, as on an explicit drop.
    expect(commits(effects)).toEqual([1]);
    expect(p.peerHost).toBe('host-c');
    const { barrier, transfer } = checkpoint(p, 100_000);
    expect(barriers(barrier)[0]).toMatchObject({ epoch: 2, base: true });
    expect(dataChunks(transfer, 'host-c').at(-1)).toMatchObject({ source: ChunkSource.MANIFEST, base: true });
    expect(dataChunks(transfer, 'host-b')).toEqual([]);
  });

  it('takes its backup named again as a new backup with an empty image: a base epoch for the same host', () => {
    const p = primary();
    checkpoint(p, 0);
    // The backup host restarted (its image is gone) and rejoined: the change names the same host.
    expect(commits(changePeer(p, 'host-b', 20_000))).toEqual([1]);
    expect(p.peerHost).toBe('host-b');
    const { barrier, transfer } = checkpoint(p, 100_000);
    expect(barriers(barrier)[0]).toMatchObject({ epoch: 2, base: true });
    expect(dataChunks(transfer).at(-1)).toMatchObject({ source: ChunkSource.MANIFEST, epoch: 2, base: true });
    expect(p.stats.backupsJoined).toBe(1);
  });
});

describe('PrimaryCheckpointer, a backup that lost the base it acknowledged', () => {
  it('joins it again when it NACKs a later epoch as needing a base: the epochs in flight commit locally, and the next barrier is a base epoch', () => {
    const p = primary({ backupJoining: true, joinSeq: 3 });
    start(p, 0);
    const base = checkpoint(p, EPOCH_US); // epoch 1: the base
    expect(barriers(base.barrier)).toMatchObject([{ epoch: 1, base: true }]);
    ack(p, 1, EPOCH_US + 100);
    checkpoint(p, 2 * EPOCH_US + STAGE_US); // epoch 2, in flight
    const nack = effectsOf((out) => p.onAck({ ...ackMsg(2, false), needsBase: true }, 2 * EPOCH_US + 500, out));
    expect(commits(nack)).toEqual([2]); // committed locally: the backup has no image to hold it
    expect(p.unprotected).toBe(true);
    expect(p.stats.baseNeededRejoins).toBe(1);
    const again = checkpoint(p, 3 * EPOCH_US + 2 * STAGE_US);
    expect(barriers(again.barrier)).toMatchObject([{ epoch: 3, base: true, joinSeq: 3 }]);
  });

  it('ignores such a NACK for an epoch not in flight, or before its base (a copy from an older join)', () => {
    const p = primary();
    start(p, 0);
    checkpoint(p, EPOCH_US);
    const stale = effectsOf((out) => p.onAck({ ...ackMsg(7, false), needsBase: true }, EPOCH_US + 100, out));
    expect(stale).toEqual([]);
    expect(p.stats.baseNeededRejoins).toBe(0);
    expect(p.unprotected).toBe(false);
  });
});

describe('PrimaryCheckpointer, adaptive epochs', () => {
  const MIN_EPOCH_US = 2_000;
  const adaptive = () => primary({ epochPolicy: { kind: 'adaptive', minEpochUs: MIN_EPOCH_US, interactiveUs: 0 } });
  const idle = (epoch: number, term = TERM): OutputIdle => ({ type: 'outputIdle', vmId: VM, term, epoch, connId: 1, heldBytes: 1_000 });
  const report = (p: PrimaryCheckpointer, msg: OutputIdle, nowUs: number) => effectsOf((out) => p.onOutputIdle(msg, nowUs, out));

  it('held output gone quiet before the minimum epoch moves the epoch end to it', () => {
    const p = adaptive();
    start(p, 0);
    expect(timersSet(report(p, idle(1), 500)).get('ckpt.epoch')).toBe(MIN_EPOCH_US);
    expect(p.stats.earlyEpochEnds).toBe(1);
    expect(p.state).toBe('running');
  });

  it('after the minimum epoch, pauses at once and the next epoch gets the full length again', () => {
    const p = adaptive();
    start(p, 0);
    const effects = report(p, idle(1), 3_000);
    expect(barriers(effects)).toMatchObject([{ epoch: 1 }]);
    expect(effects).toContainEqual({ kind: 'cancelTimer', name: 'ckpt.epoch' });
    expect(p.state).toBe('pausing');
    let transfer: Effect[] = [];
    for (const c of parts(1)) transfer = stage(p, c, 3_000 + STAGE_US);
    expect(timersSet(transfer).get('ckpt.epoch')).toBe(3_000 + STAGE_US + EPOCH_US);
  });

  it('keeps the end when ending early gains the output less than the pauses cost', () => {
    const p = adaptive();
    start(p, 0);
    checkpoint(p, EPOCH_US); // a pause of STAGE_US
    const nearEndUs = EPOCH_US + STAGE_US + EPOCH_US - STAGE_US / 2;
    expect(report(p, idle(2), nearEndUs)).toEqual([]);
    expect(p.stats.earlyEpochEnds).toBe(0);
  });

  it("weighs an early end against the guest's own pause (fixed part and copy), not against barrier to staged", () => {
    const guestPause = { fixedUs: 20_000, copyBytesPerSec: 1e9 };
    const gainUs = 15_000; // more than the 10 µs the checkpointer sees, less than the guest's 20 ms
    const modelled = primary({ epochPolicy: { kind: 'adaptive', minEpochUs: MIN_EPOCH_US, interactiveUs: 0 }, guestPause });
    const bare = adaptive();
    for (const p of [modelled, bare]) {
      start(p, 0);
      checkpoint(p, EPOCH_US);
    }
    const epochEndUs = EPOCH_US + STAGE_US + EPOCH_US;
    expect(report(modelled, idle(2), epochEndUs - gainUs)).toEqual([]);
    expect(barriers(report(bare, idle(2), epochEndUs - gainUs))).toMatchObject([{ epoch: 2 }]);
  });

  it('a report for an epoch that ended, or while it is being checkpointed, is late and changes nothing', () => {
    const p = adaptive();
    start(p, 0);
    fire(p, 'ckpt.epoch', EPOCH_US);
    expect(report(p, idle(1), EPOCH_US + 5)).toEqual([]);
    for (const c of parts(1)) stage(p, c, EPOCH_US + STAGE_US);
    expect(report(p, idle(1), EPOCH_US + 20)).toEqual([]);
    expect(p.stats.outputIdleLate).toBe(2);
  });

  it("a report for the next epoch, which the guest runs while this one is staged, ends that epoch early once it starts here", () => {
    const p = adaptive();
    start(p, 0);
    fire(p, 'ckpt.epoch', EPOCH_US);
    expect(report(p, idle(2), EPOCH_US + 5)).toEqual([]);
    let transfer: Effect[] = [];
    for (const c of parts(1)) transfer = stage(p, c, EPOCH_US + STAGE_US);
    expect(timersSet(transfer).get('ckpt.epoch')).toBe(EPOCH_US + STAGE_US + MIN_EPOCH_US);
  });

  describe('while the guest answers requests', () => {
    const INTERACTIVE_US = 100_000;
    const guestPause = { fixedUs: 1_000, copyBytesPerSec: 1e15 }; // every pause costs 1,001 µs (a µs of copy)
    const interactive = () => primary({ epochPolicy: { kind: 'adaptive', minEpochUs: MIN_EPOCH_US, interactiveUs: INTERACTIVE_US }, guestPause });

    /** Epoch 1 ends early on a quiet report at 3 ms and takes 600 µs to commit: 0.2 µs of transfer per µs of epoch. */
    function afterOneQuietEpoch(): PrimaryCheckpointer {
      const p = interactive();
      start(p, 0);
      report(p, idle(1), 3_000);
      for (const c of parts(1)) stage(p, c, 3_000 + STAGE_US);
      ack(p, 1, 3_000 + STAGE_US + 600);
      return p;
    }

    it('ends each epoch where the transfer it would hold a response for outgrows a pause', () => {
      const p = afterOneQuietEpoch();
      const { transfer } = checkpoint(p, 20_000); // epoch 2 (started before the first transfer was measured)
      const capUs = 1_001 / 0.2;
      expect(timersSet(transfer).get('ckpt.epoch')).toBe(20_000 + STAGE_US + capUs);
      expect(p.stats.interactiveEpochs).toBe(1);
    });

    it('stops once no output has gone quiet for the interactive interval', () => {
      const p = afterOneQuietEpoch();
      const lateUs = 3_000 + INTERACTIVE_US + 1;
      const { transfer } = checkpoint(p, lateUs);
      expect(timersSet(transfer).get('ckpt.epoch')).toBe(lateUs + STAGE_US + EPOCH_US);
      expect(p.stats.interactiveEpochs).toBe(0);
    });

    it('never shortens an epoch below the minimum, however dear the transfer', () => {
      const p = interactive();
      start(p, 0);
      report(p, idle(1), 3_000);
      for (const c of parts(1)) stage(p, c, 3_000 + STAGE_US);
      ack(p, 1, 3_000 + STAGE_US + 30_000); // 10 µs of transfer per µs of epoch
      const { transfer } = checkpoint(p, 20_000);
      expect(timersSet(transfer).get('ckpt.epoch')).toBe(20_000 + STAGE_US + MIN_EPOCH_US);
    });

    it('is off with an interactive interval of 0', () => {
      const p = adaptive();
      start(p, 0);
      report(p, idle(1), 3_000);
      for (const c of parts(1)) stage(p, c, 3_000 + STAGE_US);
      ack(p, 1, 3_000 + STAGE_US + 600);
      const { transfer } = checkpoint(p, 20_000);
      expect(timersSet(transfer).get('ckpt.epoch')).toBe(20_000 + STAGE_US + EPOCH_US);
    });
  });

  it('under the fixed policy, and from another term, reports change nothing', () => {
    const fixed = primary();
    start(fixed, 0);
    expect(report(fixed, idle(1), 3_000)).toEqual([]);
    expect(fixed.stats.outputIdleReports).toBe(1);
    const p = adaptive();
    start(p, 0);
    expect(report(p, idle(1, TERM + 1), 3_000)).toEqual([]);
    expect(p.stats.staleTermDrops).toBe(1);
    expect(p.state).toBe('running');
  });
});
