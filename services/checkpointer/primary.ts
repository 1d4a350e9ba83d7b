import { transition, initialTransition, type SnapshotFrom } from 'xstate';
import { assert } from '../../lib/assert.js';
import { makeManifest } from '../../lib/checkpoint/chunks.js';
import { ChunkSource, type CheckpointAck, type CheckpointChunk } from '../../lib/codec/messages.js';
import type { Subjects } from '../../lib/codec/subjects.js';
import type { Core, Effect, Input } from '../../lib/runtime/types.js';
import { US_PER_S } from '../../lib/units.js';
import { epochMachine, type EpochEvent, type EpochState } from './epoch.machine.js';
import { StagedCheckpoint } from './staging.js';

const TIMER_EPOCH = 'ckpt.epoch';
const TIMER_COPY = 'ckpt.copy';
const TIMER_ACK = 'ckpt.ack';

export interface PrimaryOptions {
  readonly vmId: string;
  readonly subjects: Subjects;
  readonly epochUs: number;
  readonly pauseFixedUs: number;
  readonly copyBytesPerSec: number;
  readonly maxInflightEpochs: number;
  /** The acker contributes its speculative-buffer delta to each checkpoint. */
  readonly speculative: boolean;
  /** No ACK within this time: resend the checkpoint. */
  readonly ackTimeoutUs: number;
  /** Commit latencies kept for percentiles; later ones are counted only. */
  readonly maxLatencySamples: number;
  /** A promoted primary continues the epoch numbering after the checkpoint it was restored from. */
  readonly firstEpoch?: number;
  /** No backup: each epoch commits locally as soon as it is staged (the VM runs unprotected). */
  readonly unprotected?: boolean;
  /** The host's control subject: a role change without a peer means the backup is gone. */
  readonly controlSubject?: string;
}

export interface PrimaryStats {
  checkpoints: number;
  checkpointBytesTotal: number;
  checkpointRawBytesTotal: number;
  commitLatenciesUs: number[];
  resends: number;
  nacks: number;
  staleChunks: number;
  lastCommittedEpoch: number;
  /** Acknowledgements and staged parts of another term, dropped. */
  staleTermDrops: number;
  /** Epochs committed without a backup (unprotected after a failover): not checkpoints. */
  localCommits: number;
  /** The newest epoch committed without a backup (or restored from, on a promoted primary). */
  lastLocalCommitEpoch: number;
  /** New backups joined (re-protection): each got a base epoch. */
  backupsJoined: number;
}

interface InFlight {
  readonly epoch: number;
  readonly chunks: CheckpointChunk[];
  readonly pausedAtUs: number;
}

/**
 * The primary host's checkpointer: drives the epoch machine, collects each
 * checkpoint from the guest (pages, state) and the acker (speculative
 * buffer), models the stop-and-copy cost, ships the checkpoint to the backup
 * with a manifest, and commits epoch N when the backup acknowledges it.
 */
export class CheckpointerPrimaryCore implements Core {
  readonly name = 'checkpointer.primary';
  readonly subscriptions: readonly string[];
  readonly stats: PrimaryStats = { checkpoints: 0, checkpointBytesTotal: 0, checkpointRawBytesTotal: 0, commitLatenciesUs: [], resends: 0, nacks: 0, staleChunks: 0, lastCommittedEpoch: 0, staleTermDrops: 0, localCommits: 0, lastLocalCommitEpoch: 0, backupsJoined: 0 };
  #snapshot: SnapshotFrom<typeof epochMachine>;
  #staging: StagedCheckpoint | null = null;
  #pausedAtUs = 0;
  readonly #inflight: InFlight[] = [];
  readonly #expectedSources: ChunkSource[];
  #unprotected: boolean;
  /** A new backup joined: the next checkpoint is its base epoch. */
  #backupJoining = false;
  #baseEpoch = 0;
  term = 0;

  constructor(readonly options: PrimaryOptions) {
    this.subscriptions = [options.subjects.ckptStage, options.subjects.ckptAck, ...(options.controlSubject ? [options.controlSubject] : [])];
    this.#expectedSources = options.speculative ? [ChunkSource.PAGES, ChunkSource.STATE, ChunkSource.SPEC] : [ChunkSource.PAGES, ChunkSource.STATE];
    [this.#snapshot] = initialTransition(epochMachine, { maxInflight: options.maxInflightEpochs, firstEpoch: options.firstEpoch ?? 1 });
    this.stats.lastCommittedEpoch = (options.firstEpoch ?? 1) - 1;
    this.stats.lastLocalCommitEpoch = this.stats.lastCommittedEpoch;
    this.#unprotected = options.unprotected ?? false;
  }

  /** No backup: epochs commit locally. */
  get unprotected(): boolean {
    return this.#unprotected;
  }

  get state(): EpochState {
    return this.#snapshot.value as EpochState;
  }
  get epoch(): number {
    return this.#snapshot.context.epoch;
  }

  handle(input: Input, nowUs: number): Effect[] {
    const out: Effect[] = [];
    switch (input.kind) {
      case 'start':
        out.push({ kind: 'setTimer', name: TIMER_EPOCH, atUs: nowUs + this.options.epochUs });
        break;
      case 'timer':
        if (input.name === TIMER_EPOCH) this.#send({ type: 'EPOCH_TIMER' }, nowUs, out);
        else if (input.name === TIMER_COPY) this.#send({ type: 'COPY_DONE' }, nowUs, out);
        else if (input.name === TIMER_ACK) this.#onAckTimeout(nowUs, out);
        break;
      case 'message':
        if (input.msg.type === 'checkpointChunk') this.#onStaged(input.msg, nowUs, out);
        else if (input.msg.type === 'checkpointAck') this.#onAck(input.msg, nowUs, out);
        else if (input.msg.type === 'roleChange' && input.msg.role === 'primary' && input.msg.term >= this.term) {
          if (input.msg.peerHost === '') this.#loseBackup(nowUs, out);
          else this.#gainBackup();
        }
        break;
    }
    return out;
  }

  #send(event: EpochEvent, nowUs: number, out: Effect[]): void {
    const epochBefore = this.#snapshot.context.epoch;
    const [next, actions] = transition(epochMachine, this.#snapshot, event);
    this.#snapshot = next;
    for (const action of actions) this.#perform(action.type, epochBefore, nowUs, out);
  }

  #perform(action: string, epoch: number, nowUs: number, out: Effect[]): void {
    const s = this.options.subjects;
    switch (action) {
      case 'sendBarrier': {
        this.#pausedAtUs = nowUs;
        this.#staging = new StagedCheckpoint(epoch, this.#expectedSources);
        // A joining backup starts at an epoch boundary: every earlier epoch is committed locally.
        const base = this.#backupJoining;
        if (base) {
          this.#backupJoining = false;
          this.#baseEpoch = epoch;
          this.stats.backupsJoined++;
        }
        out.push({ kind: 'send', subject: s.epoch, msg: { type: 'epochBarrier', vmId: this.options.vmId, term: this.term, epoch, resume: false, base } });
        return;
      }
      case 'armCopyTimer': {
        const staged = this.#staging!;
        const copyUs = Math.ceil((staged.bytes * US_PER_S) / this.options.copyBytesPerSec);
        out.push({ kind: 'setTimer', name: TIMER_COPY, atUs: Math.max(nowUs, this.#pausedAtUs + this.options.pauseFixedUs + copyUs) });
        return;
      }
      case 'sendResume':
        out.push({ kind: 'send', subject: s.epoch, msg: { type: 'epochBarrier', vmId: this.options.vmId, term: this.term, epoch, resume: true, base: false } });
        return;
      case 'startTransfer': {
        const staged = this.#staging!;
        this.#staging = null;
        if (this.#unprotected && epoch !== this.#baseEpoch) {
          this.#commit(epoch, this.#pausedAtUs, nowUs, out);
          this.#send({ type: 'COMMITTED' }, nowUs, out);
          return;
        }
        const chunks = staged.chunks();
        if (epoch === this.#baseEpoch) this.#unprotected = false; // from here on, output waits for the new backup
        chunks.push(makeManifest({ vmId: this.options.vmId, term: this.term, epoch }, chunks, epoch === this.#baseEpoch));
        this.#inflight.push({ epoch, chunks, pausedAtUs: this.#pausedAtUs });
        this.stats.checkpointBytesTotal += staged.bytes;
        this.stats.checkpointRawBytesTotal += staged.rawBytes;
        this.#transmit(chunks, out);
        if (this.#inflight.length === 1) out.push({ kind: 'setTimer', name: TIMER_ACK, atUs: nowUs + this.options.ackTimeoutUs });
        return;
      }
      case 'armEpochTimer':
        out.push({ kind: 'setTimer', name: TIMER_EPOCH, atUs: nowUs + this.options.epochUs });
        return;
    }
  }

  #transmit(chunks: readonly CheckpointChunk[], out: Effect[]): void {
    for (const chunk of chunks) out.push({ kind: 'send', subject: this.options.subjects.ckptData, msg: chunk });
  }

  #onStaged(chunk: CheckpointChunk, nowUs: number, out: Effect[]): void {
    if (chunk.term !== this.term) {
      this.stats.staleTermDrops++; // a part of another term's checkpoint
      return;
    }
    const staged = this.#staging;
    if (staged === null || !staged.add(chunk)) {
      this.stats.staleChunks++;
      return;
    }
    if (staged.complete && this.state === 'pausing') this.#send({ type: 'STAGED' }, nowUs, out);
  }

  #onAck(ack: CheckpointAck, nowUs: number, out: Effect[]): void {
    if (ack.term !== this.term) {
      this.stats.staleTermDrops++;
      return;
    }
    const oldest = this.#inflight[0];
    if (oldest === undefined || ack.epoch !== oldest.epoch) return; // duplicate or stale
    if (!ack.ok) {
      this.stats.nacks++;
      this.stats.resends++;
      this.#transmit(oldest.chunks, out);
      out.push({ kind: 'setTimer', name: TIMER_ACK, atUs: nowUs + this.options.ackTimeoutUs });
      return;
    }
    this.#inflight.shift();
    this.#commit(ack.epoch, oldest.pausedAtUs, nowUs, out);
    if (this.#inflight.length > 0) out.push({ kind: 'setTimer', name: TIMER_ACK, atUs: nowUs + this.options.ackTimeoutUs });
    else out.push({ kind: 'cancelTimer', name: TIMER_ACK });
    this.#send({ type: 'COMMITTED' }, nowUs, out);
  }

  #commit(epoch: number, pausedAtUs: number, nowUs: number, out: Effect[]): void {
    assert(epoch === this.stats.lastCommittedEpoch + 1, `commit ${epoch} after ${this.stats.lastCommittedEpoch}`);
    this.stats.lastCommittedEpoch = epoch;
    if (this.#unprotected) {
      this.stats.localCommits++;
      this.stats.lastLocalCommitEpoch = epoch;
    } else this.stats.checkpoints++;
    if (this.stats.commitLatenciesUs.length < this.options.maxLatencySamples) this.stats.commitLatenciesUs.push(nowUs - pausedAtUs);
    out.push({ kind: 'send', subject: this.options.subjects.commit, msg: { type: 'epochCommit', vmId: this.options.vmId, term: this.term, epoch } });
  }

  /**
   * A new backup joined (re-protection): from the next barrier on, each
   * checkpoint goes to it, the first one as a base epoch (an empty image,
   * the whole speculative buffer). Until that barrier epochs commit locally.
   */
  #gainBackup(): void {
    if (!this.#unprotected || this.#backupJoining) return; // already protected, or already joining
    this.#backupJoining = true;
  }

  /** The backup is gone: commit what it never acknowledged, and from now on commit locally. */
  #loseBackup(nowUs: number, out: Effect[]): void {
    this.#backupJoining = false;
    this.#baseEpoch = 0; // a base epoch still being staged commits locally
    if (this.#unprotected) return;
    this.#unprotected = true;
    out.push({ kind: 'cancelTimer', name: TIMER_ACK });
    while (this.#inflight.length > 0) {
      const oldest = this.#inflight.shift()!;
      this.#commit(oldest.epoch, oldest.pausedAtUs, nowUs, out);
      this.#send({ type: 'COMMITTED' }, nowUs, out);
    }
  }

  #onAckTimeout(nowUs: number, out: Effect[]): void {
    const oldest = this.#inflight[0];
    if (oldest === undefined) return;
    this.stats.resends++;
    this.#transmit(oldest.chunks, out);
    out.push({ kind: 'setTimer', name: TIMER_ACK, atUs: nowUs + this.options.ackTimeoutUs });
  }
}
