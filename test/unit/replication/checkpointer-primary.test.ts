import { describe, expect, it } from 'vitest';
import { makeChunks } from '../../../lib/checkpoint/chunks.js';
import { bytesEqual } from '../../../lib/checkpoint/hash.js';
import { ChunkSource, type CheckpointChunk, type EpochBarrier, type EpochCommit, type WireMessage } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { START, type Effect } from '../../../lib/runtime/types.js';
import { CheckpointerPrimaryCore, type PrimaryOptions } from '../../../services/checkpointer/primary.js';
import { chunksOn, concat, message, sentOn, timer, timersSet, VM } from './support.js';

const s = subjects(VM);
const EPOCH_US = 50_000;
const PAUSE_US = 1_000;
/** 1 byte per µs. */
const COPY_BYTES_PER_SEC = 1_000_000;
const ACK_TIMEOUT_US = 100_000;

const primary = (overrides: Partial<PrimaryOptions> = {}) =>
  new CheckpointerPrimaryCore({
    vmId: VM,
    subjects: s,
    epochUs: EPOCH_US,
    pauseFixedUs: PAUSE_US,
    copyBytesPerSec: COPY_BYTES_PER_SEC,
    maxInflightEpochs: 2,
    speculative: true,
    ackTimeoutUs: ACK_TIMEOUT_US,
    maxLatencySamples: 100,
    backupHost: 'host-b',
    ...overrides,
  });

/** The parts a guest (PAGES, STATE) and an acker (SPEC) stage for `epoch`. */
function parts(epoch: number, term = 0): CheckpointChunk[] {
  const header = { vmId: VM, term, epoch };
  const bytes = (n: number, fill: number) => new Uint8Array(n).fill((fill + epoch) & 0xff);
  return [
    ...makeChunks(header, ChunkSource.PAGES, [bytes(300, 1), bytes(200, 2)], [4096, 4096]),
    ...makeChunks(header, ChunkSource.STATE, [bytes(100, 3)]),
    ...makeChunks(header, ChunkSource.SPEC, [bytes(50, 4)]),
  ];
}
const STAGED_BYTES = 300 + 200 + 100 + 50;

const stage = (chunk: CheckpointChunk) => message(s.ckptStage, chunk);
const ack = (epoch: number, ok = true, host = 'host-b') => message(s.ckptAck, { type: 'checkpointAck', vmId: VM, term: 0, epoch, ok, reason: ok ? '' : 'bad', host });
const barriers = (effects: Effect[]) => sentOn(effects, s.epoch) as EpochBarrier[];
const commits = (effects: Effect[]) => (sentOn(effects, s.commit) as EpochCommit[]).map((m) => m.epoch);
const dataChunks = (effects: Effect[]) => chunksOn(effects, s.ckptData);

/** Runs one epoch from its timer to the transfer; returns the COPY_DONE effects. */
function checkpoint(p: CheckpointerPrimaryCore, atUs: number): { barrier: Effect[]; transfer: Effect[] } {
  const epoch = p.epoch;
  const barrier = p.handle(timer('ckpt.epoch'), atUs);
  for (const c of parts(epoch)) p.handle(stage(c), atUs + 10);
  const copyAt = PAUSE_US + STAGED_BYTES;
  const transfer = p.handle(timer('ckpt.copy'), atUs + copyAt);
  return { barrier, transfer };
}

describe('CheckpointerPrimaryCore', () => {
  it('subscribes to the staged parts and the backup ACKs', () => {
    expect(primary().subscriptions).toEqual([s.ckptStage, s.ckptAck]);
  });

  it('arms the epoch timer on start', () => {
    const p = primary();
    expect(p.handle(START, 7)).toEqual([{ kind: 'setTimer', name: 'ckpt.epoch', atUs: 7 + EPOCH_US }]);
    expect(p.state).toBe('running');
    expect(p.epoch).toBe(1);
  });

  it('sends a pausing barrier for epoch 1 when the epoch timer fires', () => {
    const p = primary({ vmId: VM });
    p.term = 4;
    const effects = p.handle(timer('ckpt.epoch'), EPOCH_US);
    expect(effects).toEqual([{ kind: 'send', subject: s.epoch, msg: { type: 'epochBarrier', vmId: VM, term: 4, epoch: 1, resume: false, base: false } }]);
    expect(p.state).toBe('pausing');
  });

  it('arms the copy timer at pause start + pauseFixedUs + bytes / copyBytesPerSec once PAGES, STATE and SPEC are all staged', () => {
    const p = primary();
    p.handle(timer('ckpt.epoch'), 1_000);
    const chunks = parts(1);
    for (const c of chunks.slice(0, -1)) expect(p.handle(stage(c), 1_100)).toEqual([]);
    expect(p.state).toBe('pausing');
    const effects = p.handle(stage(chunks.at(-1)!), 1_200);
    expect(effects).toEqual([{ kind: 'setTimer', name: 'ckpt.copy', atUs: 1_000 + PAUSE_US + STAGED_BYTES }]);
    expect(p.state).toBe('copying');
  });

  it('waits for every chunk of a multi-chunk source, counting a repeated chunk once', () => {
    const p = primary();
    p.handle(timer('ckpt.epoch'), 0);
    const [pages0, pages1, state, spec] = parts(1);
    for (const c of [pages0!, state!, spec!, pages0!]) expect(p.handle(stage(c), 10)).toEqual([]);
    expect(timersSet(p.handle(stage(pages1!), 20)).get('ckpt.copy')).toBe(PAUSE_US + STAGED_BYTES);
  });

  it('arms the copy timer no earlier than now when staging took longer than the modelled copy', () => {
    const p = primary();
    p.handle(timer('ckpt.epoch'), 0);
    let effects: Effect[] = [];
    for (const c of parts(1)) effects = p.handle(stage(c), 1_000_000);
    expect(timersSet(effects).get('ckpt.copy')).toBe(1_000_000);
  });

  it('without speculation is complete with PAGES and STATE, and counts a SPEC chunk as stale', () => {
    const p = primary({ speculative: false });
    p.handle(timer('ckpt.epoch'), 0);
    const chunks = parts(1);
    const spec = chunks.find((c) => c.source === ChunkSource.SPEC)!;
    expect(p.handle(stage(spec), 5)).toEqual([]);
    expect(p.stats.staleChunks).toBe(1);
    let effects: Effect[] = [];
    for (const c of chunks.filter((x) => x !== spec)) effects = p.handle(stage(c), 10);
    expect(timersSet(effects).get('ckpt.copy')).toBe(PAUSE_US + STAGED_BYTES - spec.data.length);
  });

  it('counts chunks staged outside a pause or for another epoch as stale', () => {
    const p = primary();
    expect(p.handle(stage(parts(1)[0]!), 0)).toEqual([]); // before the barrier
    p.handle(timer('ckpt.epoch'), 0);
    expect(p.handle(stage(parts(2)[0]!), 0)).toEqual([]);
    expect(p.stats.staleChunks).toBe(2);
    expect(p.state).toBe('pausing');
  });

  it('on COPY_DONE resumes the guest, transfers every chunk then the manifest, and arms the ack and next epoch timers', () => {
    const p = primary();
    const { transfer } = checkpoint(p, 0);
    const now = PAUSE_US + STAGED_BYTES;
    const kinds = transfer.map((e) => (e.kind === 'send' ? `${e.subject}:${e.msg.type === 'checkpointChunk' ? e.msg.source : (e.msg as Extract<WireMessage, { resume: boolean }>).resume}` : `${e.kind}:${'name' in e ? e.name : ''}`));
    expect(kinds).toEqual([
      `${s.epoch}:true`,
      `${s.ckptData}:${ChunkSource.PAGES}`,
      `${s.ckptData}:${ChunkSource.PAGES}`,
      `${s.ckptData}:${ChunkSource.STATE}`,
      `${s.ckptData}:${ChunkSource.SPEC}`,
      `${s.ckptData}:${ChunkSource.MANIFEST}`,
      'setTimer:ckpt.ack',
      'setTimer:ckpt.epoch',
    ]);
    expect(barriers(transfer)[0]).toMatchObject({ epoch: 1, resume: true });
    const sent = dataChunks(transfer);
    const manifest = sent.at(-1)!;
    expect(manifest).toMatchObject({ epoch: 1, source: ChunkSource.MANIFEST, index: 0, count: 1 });
    expect(bytesEqual(manifest.data, concat(sent.slice(0, -1).map((c) => c.hash)))).toBe(true);
    expect(sent.slice(0, -1)).toEqual(parts(1));
    expect(timersSet(transfer)).toEqual(new Map([['ckpt.ack', now + ACK_TIMEOUT_US], ['ckpt.epoch', now + EPOCH_US]]));
    expect(p.state).toBe('running');
    expect(p.epoch).toBe(2);
    expect(p.stats.checkpointBytesTotal).toBe(STAGED_BYTES);
    expect(p.stats.checkpointRawBytesTotal).toBe(4096 * 2 + 100 + 50);
  });

  it('commits epoch N on the backup ACK of N and cancels the ack timer', () => {
    const p = primary();
    checkpoint(p, 0);
    const effects = p.handle(ack(1), 5_000);
    expect(sentOn(effects, s.commit)).toEqual([{ type: 'epochCommit', vmId: VM, term: 0, epoch: 1 }]);
    expect(effects).toContainEqual({ kind: 'cancelTimer', name: 'ckpt.ack' });
    expect(p.stats).toMatchObject({ lastCommittedEpoch: 1, checkpoints: 1, commitLatenciesUs: [5_000] });
    expect(p.handle(ack(1), 6_000)).toEqual([]); // a duplicate ACK commits nothing
  });

  it('commits in order: an ACK of N commits N and the epochs before it, which the backup applied first', () => {
    const p = primary();
    checkpoint(p, 0);
    checkpoint(p, 100_000);
    const first = p.handle(ack(1), 200_010);
    expect(commits(first)).toEqual([1]);
    expect(timersSet(first).get('ckpt.ack')).toBe(200_010 + ACK_TIMEOUT_US); // epoch 2 still in flight
    expect(commits(p.handle(ack(2), 200_020))).toEqual([2]);
    expect(p.stats.lastCommittedEpoch).toBe(2);
    // The ACK of 3 arrives, that of 4 was lost on the way: the ACK of 5 commits both.
    checkpoint(p, 300_000);
    checkpoint(p, 400_000);
    expect(commits(p.handle(ack(3), 450_000))).toEqual([3]);
    checkpoint(p, 500_000);
    const cumulative = p.handle(ack(5), 550_000);
    expect(commits(cumulative)).toEqual([4, 5]);
    expect(cumulative).toContainEqual({ kind: 'cancelTimer', name: 'ckpt.ack' });
  });

  it('resends the same chunks on a NACK, and the manifest alone on the ack timeout', () => {
    const p = primary();
    const sent = dataChunks(checkpoint(p, 0).transfer);
    const nack = p.handle(ack(1, false), 10_000);
    expect(dataChunks(nack)).toEqual(sent);
    expect(timersSet(nack).get('ckpt.ack')).toBe(10_000 + ACK_TIMEOUT_US);
    expect(commits(nack)).toEqual([]);
    // The manifest asks the backup again: it ACKs what it applied, NACKs what lacks a chunk.
    const timeout = p.handle(timer('ckpt.ack'), 110_000);
    expect(dataChunks(timeout)).toEqual([sent[sent.length - 1]]);
    expect(timersSet(timeout).get('ckpt.ack')).toBe(110_000 + ACK_TIMEOUT_US);
    expect(p.stats).toMatchObject({ nacks: 1, resends: 1, probes: 1, lastCommittedEpoch: 0 });
    expect(commits(p.handle(ack(1), 120_000))).toEqual([1]);
    // Nothing in flight: a late timeout sends nothing.
    expect(p.handle(timer('ckpt.ack'), 300_000)).toEqual([]);
  });

  it('throttles the next epoch at maxInflightEpochs and sends its barrier when a commit frees capacity', () => {
    const p = primary({ maxInflightEpochs: 1 });
    checkpoint(p, 0);
    expect(p.handle(timer('ckpt.epoch'), 60_000)).toEqual([]);
    expect(p.state).toBe('throttled');
    const effects = p.handle(ack(1), 70_000);
    expect(commits(effects)).toEqual([1]);
    expect(barriers(effects)).toEqual([{ type: 'epochBarrier', vmId: VM, term: 0, epoch: 2, resume: false, base: false }]);
    expect(p.state).toBe('pausing');
    // The pause is measured from the barrier, not from the epoch timer.
    let staged: Effect[] = [];
    for (const c of parts(2)) staged = p.handle(stage(c), 70_010);
    expect(timersSet(staged).get('ckpt.copy')).toBe(70_000 + PAUSE_US + STAGED_BYTES);
  });

  it('continues the numbering from firstEpoch', () => {
    const p = primary({ firstEpoch: 8 });
    expect(p.stats.lastCommittedEpoch).toBe(7);
    expect(barriers(p.handle(timer('ckpt.epoch'), 0))[0]!.epoch).toBe(8);
  });

  it('unprotected, commits each epoch locally when its copy is done and sends nothing to a backup', () => {
    const p = primary({ unprotected: true, maxInflightEpochs: 1 });
    const { transfer } = checkpoint(p, 0);
    expect(dataChunks(transfer)).toEqual([]);
    expect(commits(transfer)).toEqual([1]);
    expect(p.state).toBe('running');
    // Capacity is free again: the next epoch is not throttled.
    expect(barriers(checkpoint(p, 100_000).barrier)[0]!.epoch).toBe(2);
  });

  it('when a new backup joins, makes the next epoch its base and from then on commits only on its acknowledgement', () => {
    const control = s.control('host-b');
    const p = primary({ unprotected: true, controlSubject: control });
    expect(commits(checkpoint(p, 0).transfer)).toEqual([1]);
    expect(p.handle(message(control, { type: 'roleChange', vmId: VM, term: 0, host: 'host-b', role: 'primary', peerHost: 'host-c', seq: 1 }), 60_000)).toEqual([]);
    const { barrier, transfer } = checkpoint(p, 100_000);
    expect(barriers(barrier)).toEqual([{ type: 'epochBarrier', vmId: VM, term: 0, epoch: 2, resume: false, base: true }]);
    expect(commits(transfer)).toEqual([]);
    const sent = dataChunks(transfer);
    expect(sent.filter((c) => c.base).map((c) => c.source)).toEqual([ChunkSource.MANIFEST]);
    expect(p.unprotected).toBe(false);
    expect(p.stats.backupsJoined).toBe(1);
    // The epoch after the base is an ordinary one.
    expect(barriers(checkpoint(p, 200_000).barrier)[0]!.base).toBe(false);
    // Only the new peer's acknowledgements count now.
    expect(commits(p.handle(ack(2, true, 'host-b'), 210_000))).toEqual([]);
    expect(p.stats.foreignAcks).toBe(1);
    expect(commits(p.handle(ack(2, true, 'host-c'), 210_000))).toEqual([2]);
    expect(p.stats.lastLocalCommitEpoch).toBe(1);
  });

  it('commits the base epoch locally when the joining backup is dropped before the epoch is sent', () => {
    const control = s.control('host-b');
    const p = primary({ unprotected: true, controlSubject: control });
    p.handle(message(control, { type: 'roleChange', vmId: VM, term: 0, host: 'host-b', role: 'primary', peerHost: 'host-c', seq: 1 }), 0);
    const epoch = p.epoch;
    expect(barriers(p.handle(timer('ckpt.epoch'), 50_000))[0]!.base).toBe(true);
    for (const c of parts(epoch)) p.handle(stage(c), 50_010);
    p.handle(message(control, { type: 'roleChange', vmId: VM, term: 0, host: 'host-b', role: 'primary', peerHost: '', seq: 2 }), 50_020);
    const transfer = p.handle(timer('ckpt.copy'), 50_000 + PAUSE_US + STAGED_BYTES);
    expect(dataChunks(transfer)).toEqual([]);
    expect(commits(transfer)).toEqual([epoch]);
    expect(p.unprotected).toBe(true);
  });

  it("drops acknowledgements from a host that is not its backup (a dropped backup, cut off but alive)", () => {
    const p = primary();
    checkpoint(p, 0);
    expect(commits(p.handle(ack(1, true, 'host-x'), 20_000))).toEqual([]);
    expect(p.stats.foreignAcks).toBe(1);
    expect(commits(p.handle(ack(1), 20_000))).toEqual([1]);
  });

  it('given a new peer while another is still its backup, takes the old one as dropped (that change was lost) and joins the new one', () => {
    const control = s.control('host-a');
    const p = primary({ controlSubject: control });
    checkpoint(p, 0);
    const effects = p.handle(message(control, { type: 'roleChange', vmId: VM, term: 0, host: 'host-a', role: 'primary', peerHost: 'host-c', seq: 7 }), 20_000);
    // Epoch 1 never got host-b's acknowledgement: it commits locally, as on an explicit drop.
    expect(commits(effects)).toEqual([1]);
    const { barrier } = checkpoint(p, 100_000);
    expect(barriers(barrier)[0]).toMatchObject({ epoch: 2, base: true });
  });
});
