import { initialTransition, type SnapshotFrom } from 'xstate';
import { MachineStepper } from '../../lib/machines/stepper.js';
import { assert } from '../../lib/assert.js';
import { makeManifest, MAX_CHUNKS_PER_SOURCE_ANY } from '../../lib/checkpoint/chunks.js';
import { ChunkSource, type CheckpointAck, type CheckpointChunk, type EpochBarrier } from '../../lib/codec/messages.js';
import type { HostSubjects } from '../../lib/codec/subjects.js';
import type { Effect } from '../../lib/runtime/types.js';
import type { SpanAttributes } from '../../lib/tracing/model.js';
import { addTo, type Histogram } from '../../lib/results/histogram.js';
import { US_PER_S } from '../../lib/units.js';
import { epochMachine, type EpochEvent, type EpochState } from './epoch.machine.js';
import { StagedCheckpoint } from './staging.js';
import { averagePauseUs, averageTransferPerEpochUs, earlyEpochEndUs, interactiveEpochCapUs, type EpochPolicyOptions } from '../../lib/epoch-policy/index.js';
import type { OutputIdle } from '../../lib/codec/messages.js';

export const TIMER_EPOCH = 'ckpt.epoch';
/** A local epoch's only part: the guest's state, the sign that the guest has ended the epoch. */
const LOCAL_SOURCES: readonly ChunkSource[] = [ChunkSource.STATE];

const TIMER_ACK = 'ckpt.ack';
const TIMER_RESEND = 'ckpt.resend';
/** The wait before a barrier's next repeat doubles per repeat without progress, up to 2^5 resend intervals. */
const MAX_BARRIER_BACKOFF_SHIFT = 5;
/** The timers a primary checkpointer sets; any other timer is not its own. */
export const PRIMARY_TIMERS: ReadonlySet<string> = new Set([TIMER_EPOCH, TIMER_ACK, TIMER_RESEND]);
/** Repeats of each commit: a lost commit is also implied by the next commit. */
const COMMIT_RESENDS = 2;

export interface PrimaryOptions {
  readonly vmId: string;
  /** Its host's subjects: barriers to the guest, parts from the guest and acker, commits to netbuffer and acker. */
  readonly subjects: HostSubjects;
  /** Where a backup host receives checkpoints, over the replication link. */
  readonly ckptDataSubject: (backupHost: string) => string;
  /** The fencing term it runs under (from its host agent's assignment). */
  readonly term: number;
  /** The longest epoch (every epoch, under the fixed policy). */
  readonly epochUs: number;
  /** When epochs end: fixed, or adaptive (docs/adaptive-epochs.md). Absent: fixed. */
  readonly epochPolicy?: EpochPolicyOptions;
  /**
   * What a pause costs the guest, which resumes by itself once its copy is
   * done (a fixed part, then the copy at this speed). The adaptive policy
   * weighs an early end against it. Not barrier to staged: the guest runs
   * again while the other parts (and, over NATS, the bus) are waited for,
   * and in the simulator the guest's copy outlasts that. Absent: barrier to
   * staged stands for it.
   */
  readonly guestPause?: { readonly fixedUs: number; readonly copyBytesPerSec: number };
  readonly maxInflightEpochs: number;
  /** Chunks one source stages at most for one epoch (maxChunksPerSource of the guest's memory); absent: that of the largest guest the config allows. */
  readonly maxChunksPerSource?: number;
  /**
   * Checkpoints, the base included, a new backup takes at most to hold every
   * page (seedEpochs of the guest's memory): it is complete once the last of
   * them is acknowledged, not the base alone. Absent: 1.
   */
  readonly seedEpochs?: number;
  /** The acker contributes its speculative-buffer delta to each checkpoint. */
  readonly speculative: boolean;
  /**
   * No ACK within this time (plus twice the transfer time of the checkpoint at
   * `replicationBytesPerSec`): ask the backup again by resending the manifest.
   * Each further timeout of the same epoch doubles it, up to `maxAckTimeoutUs`.
   */
  readonly ackTimeoutUs: number;
  /** Rate of the replication link; 0 or absent: the timeout does not grow with the checkpoint's size. */
  readonly replicationBytesPerSec?: number;
  /** Round trip of the replication link: a NACK sooner than this after a resend answers an older copy. */
  readonly replicationRttUs?: number;
  /** Cap of the backed-off timeout (default: no backoff). */
  readonly maxAckTimeoutUs?: number;
  /**
   * Bus messages may be lost: a pause barrier not answered within this time
   * is sent again, and each resume and commit is repeated a few times at this
   * interval. 0 or absent: never.
   */
  readonly resendUs?: number;
  /** Commit latencies kept for percentiles; later ones are counted only. */
  readonly maxLatencySamples: number;
  /** A promoted primary continues the epoch numbering after the checkpoint it was restored from. */
  readonly firstEpoch?: number;
  /** The backup host replicated to at start; '' runs unprotected (each epoch commits locally as soon as it is staged). */
  readonly backupHost: string;
  /** The backup joins now (its image is empty): it gets a base epoch, and epochs commit locally until then. */
  readonly backupJoining?: boolean;
  /** The join that made it join (Assignment.joinSeq): the base barrier and manifest name it. */
  readonly joinSeq?: number;
  /**
   * The incarnation of the checkpointer process that runs it: every manifest
   * names it, so that a backup tells this stream from that of a later
   * process on this host, which runs a VM made anew under the same term.
   */
  readonly incarnation: number;
  /**
   * The incarnation of the host agent that assigned it (Assignment.incarnation,
   * the one its lease renewals name): every manifest names it too, and a
   * backup reports the one of the stream it follows, by which a restarted
   * failover service tells the VM the lease protects from one made anew.
   */
  readonly agentIncarnation: number;
  /** Report every epoch's spans (docs/tracing.md); off by default. */
  readonly traceEpochs?: boolean;
}

export interface PrimaryStats {
  checkpoints: number;
  checkpointBytesTotal: number;
  checkpointRawBytesTotal: number;
  commitLatenciesUs: number[];
  /** When each epoch committed (as many as commitLatenciesUs keeps): a run's timeline marks them. */
  committedAtUs: number[];
  /** Every commit latency, however long the run (a log histogram, 2% buckets): what a process reports. */
  commitLatencyHistogram: Histogram;
  /** Every epoch's length as it ran, pause to next pause (a log histogram): the configured epoch plus what the pause and a slow commit add. */
  epochLengthHistogram: Histogram;
  resends: number;
  nacks: number;
  staleChunks: number;
  /** Staged parts whose index and count fit no checkpoint (or disagree with their source's other chunks): forged, refused. */
  malformedChunks: number;
  lastCommittedEpoch: number;
  /** Acknowledgements and staged parts of another term, dropped. */
  staleTermDrops: number;
  /** Epochs committed without a backup (unprotected after a failover): not checkpoints. */
  localCommits: number;
  /** Of those, epochs paused as local (no backup then, nor joining): only the guest's state staged. */
  localEpochs: number;
  /** The newest epoch committed without a backup (or restored from, on a promoted primary). */
  lastLocalCommitEpoch: number;
  /** New backups joined (re-protection): each got a base epoch. */
  backupsJoined: number;
  /** Acknowledgements from a backup that is not (or no longer) this primary's peer, dropped. */
  foreignAcks: number;
  /** Ack timeouts answered by resending the manifest alone (the backup NACKs if it lacks a chunk). */
  probes: number;
  /** Pause barriers sent again while the checkpoint's parts were still missing. */
  barrierResends: number;
  /** NACKs that came too soon after a resend of their epoch (an answer to an older copy), ignored. */
  nacksIgnored: number;
  /** ACKs and NACKs of epochs no longer in flight (committed already: answers to older copies, or repeats), ignored. */
  staleAnswers: number;
  /**
   * Where pauses go, summed over them: from the barrier to each source's
   * part held in full (by ChunkSource), and to the whole checkpoint staged.
   */
  pauseToSourceUsTotal: Record<number, number>;
  pauseToStagedUsTotal: number;
  /** Adaptive epochs: quiet-output reports taken (of this term). */
  outputIdleReports: number;
  /** …of which came for an epoch that had ended already, or while it was ending. */
  outputIdleLate: number;
  /** Epochs the policy ended (or set to end) before epochUs. */
  earlyEpochEnds: number;
  /** Epochs the policy kept shorter than epochUs because the guest answers requests and their transfer would cost more than a pause. */
  interactiveEpochs: number;
  /** Backups joined again because they NACKed an epoch needing a base (their image started over after our base). */
  baseNeededRejoins: number;
}

interface InFlight {
  readonly epoch: number;
  /** Every chunk, the manifest last. */
  readonly chunks: CheckpointChunk[];
  readonly pausedAtUs: number;
  /** How long the epoch ran, start to pause. */
  readonly ranUs: number;
  /** When its transfer started (the checkpoint was staged). */
  readonly stagedAtUs: number;
  /** Bytes on the replication link, for the timeouts. */
  readonly bytes: number;
  /** When all its chunks were last sent again (null: never). */
  resentAtUs: number | null;
  /** Ack timeouts in a row for it (the backoff exponent). */
  timeouts: number;
}

/**
 * The primary side of the checkpointer: drives the epoch machine, collects
 * each checkpoint from the guest (pages, state) and the acker (speculative
 * buffer), models the stop-and-copy cost, ships the checkpoint to the backup
 * with a manifest, and commits epoch N when the backup acknowledges it.
 * CheckpointerCore runs it while its host is primary.
 */
export class PrimaryCheckpointer {
  readonly stats: PrimaryStats = { checkpoints: 0, checkpointBytesTotal: 0, checkpointRawBytesTotal: 0, commitLatenciesUs: [], committedAtUs: [], commitLatencyHistogram: {}, epochLengthHistogram: {}, resends: 0, nacks: 0, staleChunks: 0, malformedChunks: 0, lastCommittedEpoch: 0, staleTermDrops: 0, localCommits: 0, localEpochs: 0, lastLocalCommitEpoch: 0, backupsJoined: 0, foreignAcks: 0, probes: 0, barrierResends: 0, nacksIgnored: 0, staleAnswers: 0, pauseToSourceUsTotal: {}, pauseToStagedUsTotal: 0, outputIdleReports: 0, outputIdleLate: 0, earlyEpochEnds: 0, interactiveEpochs: 0, baseNeededRejoins: 0 };
  #snapshot: SnapshotFrom<typeof epochMachine>;
  readonly #stepper: MachineStepper<typeof epochMachine>;
  #staging: StagedCheckpoint | null = null;
  #pausedAtUs = 0;
  readonly #inflight: InFlight[] = [];
  readonly #expectedSources: ChunkSource[];
  #unprotected: boolean;
  /** A new backup joined: the next checkpoint is its base epoch. */
  #backupJoining = false;
  #baseEpoch = 0;
  /** The join (Assignment.joinSeq) the next (or current) base epoch serves. */
  #joinSeq = 0;
  /** The backup whose acknowledgements commit epochs; a dropped one may live on, cut off, and still answer. */
  #peerHost: string;
  /**
   * The backup that gets the chunks of the checkpoint being staged as they
   * come (null: a local epoch, or the backup was lost meanwhile). Sent on at
   * once, a part need not wait for the slowest: a base (the whole memory and
   * speculative buffer) is on its way while it is still being staged.
   */
  #streamPeer: string | null = null;
  /** The last pause barrier sent, repeated while its checkpoint is incomplete. */
  #barrier: EpochBarrier | null = null;
  #commitResendsLeft = 0;
  #resendArmed = false;
  /** Staged chunks counted at the last look, and when that was: a pause that made progress since is slow, not lost. */
  #chunksAtLastResend = 0;
  #progressCheckedAtUs = 0;
  /** Repeats of the current barrier with nothing staged since: each doubles the wait before the next look. */
  #barrierRepeats = 0;
  /** The running epoch: when it started, and when it is to end. */
  #epochStartUs = 0;
  #epochEndUs = 0;
  /** Running average of the guest's pauses (modelled; barrier to staged without a model; null: none yet): what ending an epoch early costs. */
  #pauseAverageUs: number | null = null;
  /** The newest epoch whose output was reported quiet (it may come before that epoch starts here). */
  #quietEpoch = 0;
  /** When output was last reported quiet (null: never): the guest answers requests. */
  #lastQuietUs: number | null = null;
  /** Running average of transfer (staged to committed) per µs of epoch run (null: none yet). */
  #transferPerEpochUs: number | null = null;
  /** How long the epoch being checkpointed ran. */
  #ranUs = 0;
  readonly term: number;

  constructor(readonly options: PrimaryOptions) {
    assert(options.term > 0, () => `a primary checkpointer runs under a term, not ${options.term}`);
    this.term = options.term;
    assert(Number.isSafeInteger(options.incarnation) && options.incarnation > 0, () => `a primary of incarnation ${options.incarnation}`);
    assert(Number.isSafeInteger(options.agentIncarnation) && options.agentIncarnation > 0, () => `a primary assigned by agent incarnation ${options.agentIncarnation}`);
    this.#expectedSources = options.speculative ? [ChunkSource.PAGES, ChunkSource.STATE, ChunkSource.SPEC] : [ChunkSource.PAGES, ChunkSource.STATE];
    const input = { maxInflight: options.maxInflightEpochs, firstEpoch: options.firstEpoch ?? 1 };
    [this.#snapshot] = initialTransition(epochMachine, input);
    this.#stepper = new MachineStepper(epochMachine, input);
    this.stats.lastCommittedEpoch = (options.firstEpoch ?? 1) - 1;
    this.stats.lastLocalCommitEpoch = this.stats.lastCommittedEpoch;
    this.#unprotected = options.backupHost === '' || options.backupJoining === true;
    this.#peerHost = options.backupHost;
    if (options.backupJoining === true && options.backupHost !== '') this.#gainBackup(options.backupHost, options.joinSeq ?? 0);
  }

  /** The backup whose acknowledgements commit epochs ('' when none). */
  get peerHost(): string {
    return this.#peerHost;
  }

  /** No backup: epochs commit locally. */
  get unprotected(): boolean {
    return this.#unprotected;
  }

  /**
   * A backup holds a complete image: it started with the VM's first image, or
   * acknowledged every checkpoint that seeds its base (the base alone leaves
   * pages owed: its agent took such a backup for complete, halted the
   * primary over a silent acker, and the failover service, which knew the
   * backup was not, could promote nothing).
   */
  get backupSynced(): boolean {
    if (this.#unprotected) return false;
    return this.#baseEpoch === 0 || this.stats.lastCommittedEpoch >= this.#baseEpoch + (this.options.seedEpochs ?? 1) - 1;
  }

  get state(): EpochState {
    return this.#snapshot.value as EpochState;
  }
  get epoch(): number {
    return this.#snapshot.context.epoch;
  }

  /** The first epoch starts now. */
  start(nowUs: number, out: Effect[]): void {
    this.#startEpoch(nowUs, out);
  }

  #startEpoch(nowUs: number, out: Effect[]): void {
    this.#epochStartUs = nowUs;
    this.#epochEndUs = nowUs + Math.min(this.options.epochUs, this.#interactiveCapUs(nowUs));
    out.push({ kind: 'setTimer', name: TIMER_EPOCH, atUs: this.#epochEndUs });
    // Output of this epoch went quiet while the last one was still being staged.
    if (this.#quietEpoch >= this.epoch) this.#outputQuiet(nowUs, out);
  }

  /**
   * Adaptive epochs: the netbuffer or the acker holds output of `epoch` on a
   * connection the guest has gone quiet on. The running epoch may end early;
   * a report for one that ended is late (its output is on its way).
   */
  onOutputIdle(msg: OutputIdle, nowUs: number, out: Effect[]): void {
    if (msg.term !== this.term) {
      this.stats.staleTermDrops++;
      return;
    }
    this.stats.outputIdleReports++;
    if (this.options.epochPolicy?.kind !== 'adaptive') return;
    if (msg.epoch > this.#quietEpoch) this.#quietEpoch = msg.epoch;
    if (msg.epoch < this.epoch || (msg.epoch === this.epoch && this.state !== 'running')) {
      this.stats.outputIdleLate++;
      return;
    }
    // A later epoch's report waits for that epoch to start here (#startEpoch).
    if (msg.epoch === this.epoch) this.#outputQuiet(nowUs, out);
  }

  /** Adaptive epochs: how long an epoch may run while the guest answers requests (infinite: no cap). */
  #interactiveCapUs(nowUs: number): number {
    const policy = this.options.epochPolicy;
    if (policy?.kind !== 'adaptive' || this.#lastQuietUs === null || this.#transferPerEpochUs === null) return Number.POSITIVE_INFINITY;
    if (nowUs - this.#lastQuietUs > policy.interactiveUs) return Number.POSITIVE_INFINITY;
    const capUs = interactiveEpochCapUs({ minEpochUs: policy.minEpochUs, pauseUs: this.#pauseAverageUs ?? 0 }, this.#transferPerEpochUs);
    if (capUs < this.options.epochUs) this.stats.interactiveEpochs++;
    return capUs;
  }

  #outputQuiet(nowUs: number, out: Effect[]): void {
    const policy = this.options.epochPolicy;
    this.#lastQuietUs = nowUs;
    assert(policy?.kind === 'adaptive' && this.state === 'running', () => `output reported quiet to a ${policy?.kind ?? 'fixed'} policy in state ${this.state}`);
    const endUs = earlyEpochEndUs({ startUs: this.#epochStartUs, endUs: this.#epochEndUs }, { minEpochUs: policy.minEpochUs, pauseUs: this.#pauseAverageUs ?? 0 }, nowUs);
    if (endUs === null) return;
    this.stats.earlyEpochEnds++;
    this.#epochEndUs = endUs;
    if (endUs > nowUs) out.push({ kind: 'setTimer', name: TIMER_EPOCH, atUs: endUs });
    else {
      out.push({ kind: 'cancelTimer', name: TIMER_EPOCH });
      this.#send({ type: 'EPOCH_TIMER' }, nowUs, out);
    }
  }

  onTimer(name: string, nowUs: number, out: Effect[]): void {
    if (name === TIMER_EPOCH) this.#send({ type: 'EPOCH_TIMER' }, nowUs, out);
    else if (name === TIMER_ACK) this.#onAckTimeout(nowUs, out);
    else if (name === TIMER_RESEND) this.#onResendTimer(nowUs, out);
  }

  /**
   * The membership changed (a new assignment under the same term): `peerHost`
   * is the backup from now on ('' for none). Every new peer is a new backup
   * with an empty image, even on the host of the old one (it restarted): the
   * backup before it is gone, and the change that said so may have been lost.
   */
  changePeer(peerHost: string, nowUs: number, out: Effect[], joinSeq = 0): void {
    this.#loseBackup(nowUs, out);
    if (peerHost !== '') this.#gainBackup(peerHost, joinSeq);
  }

  #send(event: EpochEvent, nowUs: number, out: Effect[]): void {
    // STAGED and COMMITTED are sent only where they apply (a complete part set while pausing; a checkpoint taken
    // out of flight): one the machine would swallow means the core and the machine disagree. An epoch timer may
    // come late, into a pause, and is then nothing.
    assert(event.type === 'EPOCH_TIMER' || this.#snapshot.can(event), () => `${event.type} in state ${String(this.#snapshot.value)} with ${this.#snapshot.context.inflight} in flight`);
    const epochBefore = this.#snapshot.context.epoch;
    const [next, actions] = this.#stepper.step(this.#snapshot, event);
    this.#snapshot = next;
    for (const action of actions) this.#perform(action.type, epochBefore, nowUs, out);
    assert(this.#snapshot.context.inflight === this.#inflight.length, () => `the epoch machine counts ${this.#snapshot.context.inflight} checkpoints in flight, the checkpointer ${this.#inflight.length}`);
  }

  #perform(action: string, epoch: number, nowUs: number, out: Effect[]): void {
    const s = this.options.subjects;
    switch (action) {
      case 'sendBarrier': {
        if (this.#pausedAtUs > 0) addTo(this.stats.epochLengthHistogram, nowUs - this.#pausedAtUs);
        this.#pausedAtUs = nowUs;
        this.#ranUs = nowUs - this.#epochStartUs;
        this.#chunksAtLastResend = 0;
        this.#progressCheckedAtUs = nowUs;
        this.#barrierRepeats = 0;
        // A joining backup starts at an epoch boundary: every earlier epoch is committed locally.
        const base = this.#backupJoining;
        if (base) {
          this.#backupJoining = false;
          this.#baseEpoch = epoch;
          this.stats.backupsJoined++;
        }
        // No backup receives this epoch: its pages and speculative bytes would be staged for nothing (tens of MB a VM
        // right after a failover, on the cores the re-protection needs). They wait for the base, which carries them.
        const local = this.#unprotected && !base;
        if (local) this.stats.localEpochs++;
        assert(local || this.#peerHost !== '', () => `epoch ${epoch} is replicated with no backup`);
        this.#streamPeer = local ? null : this.#peerHost;
        this.#staging = new StagedCheckpoint(epoch, local ? LOCAL_SOURCES : this.#expectedSources, this.options.maxChunksPerSource ?? MAX_CHUNKS_PER_SOURCE_ANY);
        const barrier: EpochBarrier = { type: 'epochBarrier', vmId: this.options.vmId, term: this.term, epoch, base, stagedSources: 0, joinSeq: base ? this.#joinSeq : 0, local };
        this.#barrier = barrier;
        out.push({ kind: 'send', subject: s.epoch, msg: barrier });
        this.#armResend(nowUs, out);
        return;
      }
      case 'startTransfer': {
        const staged = this.#staging;
        const barrier = this.#barrier;
        assert(staged !== null && barrier !== null, () => `epoch ${epoch}'s transfer started with nothing staged`);
        this.#staging = null;
        // Only a base ends the unprotected stretch, and its barrier comes after this one's transfer.
        assert(!barrier.local || this.#unprotected, () => `local epoch ${epoch} staged while protected`);
        if (this.#unprotected && epoch !== this.#baseEpoch) {
          this.#commit(epoch, this.#pausedAtUs, null, nowUs, out);
          this.#send({ type: 'COMMITTED' }, nowUs, out);
          return;
        }
        const chunks = staged.chunks();
        if (epoch === this.#baseEpoch) this.#unprotected = false; // from here on, output waits for the new backup
        const base = epoch === this.#baseEpoch;
        assert(!base || (barrier.base && barrier.epoch === epoch), () => `base epoch ${epoch} staged under barrier ${barrier.epoch} (base: ${barrier.base})`);
        const manifest = makeManifest({ vmId: this.options.vmId, term: this.term, epoch }, chunks, { base, joinSeq: base ? barrier.joinSeq : 0, primaryIncarnation: this.options.incarnation, primaryAgentIncarnation: this.options.agentIncarnation });
        chunks.push(manifest);
        const inflight: InFlight = { epoch, chunks, pausedAtUs: this.#pausedAtUs, ranUs: this.#ranUs, stagedAtUs: nowUs, bytes: staged.bytes, resentAtUs: null, timeouts: 0 };
        this.#inflight.push(inflight);
        this.stats.checkpointBytesTotal += staged.bytes;
        this.stats.checkpointRawBytesTotal += staged.rawBytes;
        // Every part went to this backup as it was staged (a lost backup makes the epoch local, above): the manifest closes it.
        assert(this.#streamPeer === this.#peerHost, () => `epoch ${epoch} streamed to ${this.#streamPeer ?? 'no backup'}, committed by ${this.#peerHost}`);
        this.#streamPeer = null;
        this.#transmit([manifest], out);
        if (this.#inflight.length === 1) this.#armAckTimer(inflight, nowUs, out);
        return;
      }
      case 'armEpochTimer':
        this.#startEpoch(nowUs, out);
        return;
      default:
        assert(false, () => `no such action: ${action}`);
    }
  }

  #span(epoch: number, name: 'epoch' | 'pause' | 'transfer' | 'commit', parent: 'epoch' | null, startUs: number, endUs: number, attributes: SpanAttributes, out: Effect[]): void {
    if (this.options.traceEpochs !== true) return;
    out.push({ kind: 'span', span: { trace: { kind: 'epoch', vmId: this.options.vmId, epoch }, name, term: this.term, parent: parent === null ? null : { name: parent, term: this.term }, startUs, endUs, attributes } });
  }

  #transmit(chunks: readonly CheckpointChunk[], out: Effect[]): void {
    assert(this.#peerHost !== '', `epoch checkpoint sent without a backup`);
    const subject = this.options.ckptDataSubject(this.#peerHost);
    for (const chunk of chunks) out.push({ kind: 'send', subject, msg: chunk });
  }

  /** A part of the checkpoint being staged, from the guest or the acker. */
  onStaged(chunk: CheckpointChunk, nowUs: number, out: Effect[]): void {
    if (chunk.term !== this.term) {
      this.stats.staleTermDrops++; // a part of another term's checkpoint
      return;
    }
    const staged = this.#staging;
    const completeBefore = staged?.completeSources ?? 0;
    const added = staged === null ? 'foreign' : staged.add(chunk);
    if (staged === null || added === 'foreign') {
      this.stats.staleChunks++;
      return;
    }
    if (added === 'malformed') {
      this.stats.malformedChunks++;
      return;
    }
    // A repeat (the guest answering a repeated barrier) went on already.
    if (this.#streamPeer !== null && added === 'added') out.push({ kind: 'send', subject: this.options.ckptDataSubject(this.#streamPeer), msg: chunk });
    // A local epoch's pause stages no checkpoint: it counts in neither the checkpoints' pause means nor the policy's average.
    const barrier = this.#barrier;
    assert(barrier !== null, () => `a part of epoch ${chunk.epoch} staged without its barrier`);
    const checkpoint = !barrier.local;
    if (checkpoint && staged.completeSources !== completeBefore) {
      const t = this.stats.pauseToSourceUsTotal;
      t[chunk.source] = (t[chunk.source] ?? 0) + (nowUs - this.#pausedAtUs);
    }
    if (staged.complete && this.state === 'pausing') {
      if (checkpoint) {
        this.stats.pauseToStagedUsTotal += nowUs - this.#pausedAtUs;
        this.#pauseAverageUs = averagePauseUs(this.#pauseAverageUs, this.#guestPauseUs(staged.bytes) ?? nowUs - this.#pausedAtUs);
      }
      this.#span(staged.epoch, 'pause', 'epoch', this.#pausedAtUs, nowUs, { stagedBytes: staged.bytes }, out);
      this.#send({ type: 'STAGED' }, nowUs, out);
    }
  }

  /** The backup's answer for an epoch, over the replication link. */
  onAck(ack: CheckpointAck, nowUs: number, out: Effect[]): void {
    if (ack.term !== this.term) {
      this.stats.staleTermDrops++;
      return;
    }
    if (ack.host !== this.#peerHost) {
      this.stats.foreignAcks++; // its image is not the one a failover would promote
      return;
    }
    if (!ack.ok) {
      // Any epoch in flight: the backup NACKs one whose manifest came with chunks missing.
      const nacked = this.#inflight.find((f) => f.epoch === ack.epoch);
      if (nacked === undefined) {
        this.stats.staleAnswers++; // committed already: an answer to an older copy
        return;
      }
      this.stats.nacks++;
      if (ack.needsBase && !this.#unprotected && ack.epoch > this.#baseEpoch) {
        // Its image is gone (it took our base, then its joining assignment came and started it over): join it again.
        this.stats.baseNeededRejoins++;
        this.changePeer(this.#peerHost, nowUs, out, this.#joinSeq);
        return;
      }
      if (nacked.resentAtUs !== null && nowUs < nacked.resentAtUs + (this.options.replicationRttUs ?? 0) + this.#transferUs(nacked.bytes)) {
        this.stats.nacksIgnored++; // it answers a copy older than the resend still on its way
        return;
      }
      this.stats.resends++;
      nacked.resentAtUs = nowUs;
      this.#transmit(nacked.chunks, out);
      if (nacked === this.#inflight[0]) this.#armAckTimer(nacked, nowUs, out);
      return;
    }
    if (!this.#inflight.some((f) => f.epoch === ack.epoch)) {
      this.stats.staleAnswers++; // duplicate or stale
      return;
    }
    // The backup applies in order, so its ACK of N says every epoch up to N is applied (an earlier ACK may be lost).
    while (this.#inflight.length > 0 && this.#inflight[0]!.epoch <= ack.epoch) {
      const oldest = this.#inflight.shift()!;
      this.#commit(oldest.epoch, oldest.pausedAtUs, oldest, nowUs, out);
      this.#send({ type: 'COMMITTED' }, nowUs, out);
    }
    const next = this.#inflight[0];
    if (next !== undefined) this.#armAckTimer(next, nowUs, out);
    else out.push({ kind: 'cancelTimer', name: TIMER_ACK });
  }

  /** `transferred`: the epoch's transfer to the backup; null for one committed locally. */
  #commit(epoch: number, pausedAtUs: number, transferred: InFlight | null, nowUs: number, out: Effect[]): void {
    assert(epoch === this.stats.lastCommittedEpoch + 1, () => `commit ${epoch} after ${this.stats.lastCommittedEpoch}`);
    if (transferred !== null && transferred.ranUs > 0) this.#transferPerEpochUs = averageTransferPerEpochUs(this.#transferPerEpochUs, nowUs - transferred.stagedAtUs, transferred.ranUs);
    if (this.options.traceEpochs === true) {
      if (transferred !== null) this.#span(epoch, 'transfer', 'epoch', transferred.stagedAtUs, nowUs, { bytes: transferred.bytes, resent: transferred.resentAtUs !== null, backup: this.#peerHost }, out);
      this.#span(epoch, 'commit', 'epoch', nowUs, nowUs, {}, out);
      this.#span(epoch, 'epoch', null, pausedAtUs, nowUs, { term: this.term, local: transferred === null }, out);
    }
    this.stats.lastCommittedEpoch = epoch;
    if (this.#unprotected) {
      this.stats.localCommits++;
      this.stats.lastLocalCommitEpoch = epoch;
    } else this.stats.checkpoints++;
    addTo(this.stats.commitLatencyHistogram, nowUs - pausedAtUs);
    if (this.stats.commitLatenciesUs.length < this.options.maxLatencySamples) {
      this.stats.commitLatenciesUs.push(nowUs - pausedAtUs);
      this.stats.committedAtUs.push(nowUs);
    }
    out.push({ kind: 'send', subject: this.options.subjects.commit, msg: { type: 'epochCommit', vmId: this.options.vmId, term: this.term, epoch } });
    this.#commitResendsLeft = COMMIT_RESENDS;
    this.#armResend(nowUs, out);
  }

  /**
   * A new backup joined (re-protection): from the next barrier on, each
   * checkpoint goes to it, the first one as a base epoch (an empty image,
   * the whole speculative buffer). Until that barrier epochs commit locally.
   */
  #gainBackup(host: string, joinSeq: number): void {
    // Both callers come unprotected and not joining: the constructor with a joining backup, changePeer after #loseBackup.
    assert(this.#unprotected && !this.#backupJoining, () => `backup ${host} gained while ${this.#unprotected ? 'joining' : 'protected'}`);
    this.#backupJoining = true;
    this.#peerHost = host;
    this.#joinSeq = joinSeq;
  }

  /** The backup is gone: commit what it never acknowledged, and from now on commit locally. */
  #loseBackup(nowUs: number, out: Effect[]): void {
    this.#backupJoining = false;
    this.#baseEpoch = 0; // a base epoch still being staged commits locally
    this.#peerHost = '';
    this.#streamPeer = null;
    if (this.#unprotected) return;
    this.#unprotected = true;
    out.push({ kind: 'cancelTimer', name: TIMER_ACK });
    while (this.#inflight.length > 0) {
      const oldest = this.#inflight.shift()!;
      this.#commit(oldest.epoch, oldest.pausedAtUs, null, nowUs, out); // no backup acknowledged it
      this.#send({ type: 'COMMITTED' }, nowUs, out);
    }
  }

  /**
   * The manifest alone asks the backup again: it travels behind every chunk
   * still queued on the link, so a backup that lacks one when it arrives
   * NACKs and gets the whole epoch; one that applied it ACKs again. A slow
   * link thus gets probes, not copies of checkpoints it is still carrying.
   */
  #onAckTimeout(nowUs: number, out: Effect[]): void {
    const oldest = this.#inflight[0];
    if (oldest === undefined) return;
    this.stats.probes++;
    oldest.timeouts++;
    out.push({ kind: 'send', subject: this.options.ckptDataSubject(this.#peerHost), msg: oldest.chunks[oldest.chunks.length - 1]! });
    this.#armAckTimer(oldest, nowUs, out);
  }

  /** How long the guest stays paused to copy a checkpoint of `bytes` (null without a model). */
  #guestPauseUs(bytes: number): number | null {
    const model = this.options.guestPause;
    return model === undefined ? null : model.fixedUs + Math.ceil((bytes * US_PER_S) / model.copyBytesPerSec);
  }

  /** Twice the time the link takes to carry `bytes`. */
  #transferUs(bytes: number): number {
    const rate = this.options.replicationBytesPerSec ?? 0;
    return rate > 0 ? Math.ceil((2 * bytes * US_PER_S) / rate) : 0;
  }

  #armAckTimer(inflight: InFlight, nowUs: number, out: Effect[]): void {
    const baseUs = this.options.ackTimeoutUs + this.#transferUs(inflight.bytes);
    const capUs = Math.max(baseUs, this.options.maxAckTimeoutUs ?? baseUs);
    const timeoutUs = Math.min(capUs, baseUs * 2 ** Math.min(inflight.timeouts, 20));
    out.push({ kind: 'setTimer', name: TIMER_ACK, atUs: nowUs + timeoutUs });
  }

  #armResend(nowUs: number, out: Effect[]): void {
    const resendUs = this.options.resendUs ?? 0;
    if (resendUs <= 0 || this.#resendArmed) return;
    this.#resendArmed = true;
    const backoff = this.state === 'pausing' ? 2 ** Math.min(this.#barrierRepeats, MAX_BARRIER_BACKOFF_SHIFT) : 1;
    out.push({ kind: 'setTimer', name: TIMER_RESEND, atUs: nowUs + resendUs * backoff });
  }

  #onResendTimer(nowUs: number, out: Effect[]): void {
    this.#resendArmed = false;
    const s = this.options.subjects;
    // The timer may have been armed for a commit before this pause began: a look counts after a whole interval.
    const looked = nowUs - this.#progressCheckedAtUs >= (this.options.resendUs ?? 0);
    const chunksStaged = this.#staging?.chunksAdded ?? 0;
    const progressed = !looked || chunksStaged > this.#chunksAtLastResend;
    if (looked) {
      this.#chunksAtLastResend = chunksStaged;
      this.#progressCheckedAtUs = nowUs;
      if (progressed) this.#barrierRepeats = 0;
    }
    if (this.state === 'pausing' && this.#barrier !== null && !progressed) {
      // Barrier, EpochEnd or a staged part was lost: the guest answers a repeated barrier with the same parts.
      // Not while parts still arrive: repeating a slow checkpoint would double the load that made it slow.
      // The repeat names the parts held in full, which do not come again.
      // Backs off as TCP's RTO does: a guest too busy to answer in time (many VMs on few cores) would otherwise
      // spend what time it has encoding the same checkpoint again for every interval it stays late.
      this.stats.barrierResends++;
      this.#barrierRepeats++;
      out.push({ kind: 'send', subject: s.epoch, msg: { ...this.#barrier, stagedSources: this.#staging?.completeSources ?? 0 } });
    }
    if (this.#commitResendsLeft > 0 && this.stats.lastCommittedEpoch > 0) {
      this.#commitResendsLeft--;
      out.push({ kind: 'send', subject: s.commit, msg: { type: 'epochCommit', vmId: this.options.vmId, term: this.term, epoch: this.stats.lastCommittedEpoch } });
    }
    if (this.state === 'pausing' || this.#commitResendsLeft > 0) this.#armResend(nowUs, out);
  }
}
