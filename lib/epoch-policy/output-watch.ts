import { assert } from '../assert.js';
import type { OutputIdle } from '../codec/messages.js';
import type { Effect } from '../runtime/types.js';
import type { OutputWatchOptions } from './options.js';

/** Where the watch's effects go: the core's effect list. */
type EffectSink = { push(effect: Effect): unknown };

/** The watch's timer, in the netbuffer's and the acker's timer names. */
export const TIMER_OUTPUT_IDLE = 'output.idle';

export interface OutputWatchStats {
  /** Quiet output reported to the checkpointer. */
  idleReports: number;
  /** Connections not watched because maxConnections were watched already; their output waits for the epoch's end. */
  unwatchedConnections: number;
  /** Quiet connections not reported because committed output still waited in front of theirs. */
  backloggedChecks: number;
}

const NOTHING_BACKLOGGED = (): boolean => false;

interface Watched {
  /** The newest epoch the connection has output held in. */
  epoch: number;
  lastOutputUs: number;
  /** The newest epoch reported quiet (0: none). */
  reportedEpoch: number;
}

/**
 * The holder's side of adaptive epochs (netbuffer in remus, acker in the
 * speculative modes): it notes when each connection last had output held,
 * and reports a connection whose held output has had no successor for
 * `quietUs`, once per epoch. One timer for all connections; a committed
 * epoch's connections are forgotten, so the map holds only connections with
 * output waiting, at most `maxConnections`.
 */
export class OutputWatch {
  readonly stats: OutputWatchStats = { idleReports: 0, unwatchedConnections: 0, backloggedChecks: 0 };
  readonly #watched = new Map<number, Watched>();
  #timerAtUs: number | null = null;

  constructor(
    readonly vmId: string,
    readonly options: OutputWatchOptions,
  ) {
    assert(options.quietUs > 0 && options.maxConnections > 0, () => `output watch options out of range: ${JSON.stringify(options)}`);
  }

  /** Connections with output waiting that are watched now. */
  get watchedConnections(): number {
    return this.#watched.size;
  }

  /** Output of `connId` in `epoch` is held now. */
  held(connId: number, epoch: number, nowUs: number, out: EffectSink): void {
    let w = this.#watched.get(connId);
    if (w === undefined) {
      if (this.#watched.size >= this.options.maxConnections) {
        this.stats.unwatchedConnections++;
        return;
      }
      w = { epoch, lastOutputUs: nowUs, reportedEpoch: 0 };
      this.#watched.set(connId, w);
    }
    if (epoch > w.epoch) w.epoch = epoch;
    w.lastOutputUs = nowUs;
    if (this.#timerAtUs === null) this.#arm(nowUs + this.options.quietUs, out);
  }

  /**
   * The watch's timer fired: report what is quiet, wait on for the rest.
   * `backlogged(connId)`: committed output of the connection still waits to
   * be sent; its held output could not leave sooner if the epoch ended now,
   * so it is looked at again after another quiet interval instead.
   */
  onTimer(term: number, heldBytes: number, nowUs: number, out: EffectSink, backlogged: (connId: number) => boolean = NOTHING_BACKLOGGED): void {
    this.#timerAtUs = null;
    let nextUs = Infinity;
    for (const [connId, w] of this.#watched) {
      if (w.reportedEpoch >= w.epoch) continue;
      const quietAtUs = w.lastOutputUs + this.options.quietUs;
      if (quietAtUs > nowUs) {
        nextUs = Math.min(nextUs, quietAtUs);
        continue;
      }
      if (backlogged(connId)) {
        this.stats.backloggedChecks++;
        nextUs = Math.min(nextUs, nowUs + this.options.quietUs);
        continue;
      }
      w.reportedEpoch = w.epoch;
      this.stats.idleReports++;
      const msg: OutputIdle = { type: 'outputIdle', vmId: this.vmId, term, epoch: w.epoch, connId, heldBytes };
      out.push({ kind: 'send', subject: this.options.subject, msg });
    }
    if (nextUs < Infinity) this.#arm(nextUs, out);
  }

  /** Every epoch up to `epoch` is committed: connections with nothing later held are no longer watched. */
  committed(epoch: number): void {
    for (const [connId, w] of this.#watched) if (w.epoch <= epoch) this.#watched.delete(connId);
  }

  /** A new term or role: nothing held is watched, and the timer is cancelled. */
  reset(out: EffectSink): void {
    this.#watched.clear();
    if (this.#timerAtUs !== null) out.push({ kind: 'cancelTimer', name: TIMER_OUTPUT_IDLE });
    this.#timerAtUs = null;
  }

  #arm(atUs: number, out: EffectSink): void {
    assert(Number.isFinite(atUs), () => `output watch timer at ${atUs}`);
    this.#timerAtUs = atUs;
    out.push({ kind: 'setTimer', name: TIMER_OUTPUT_IDLE, atUs });
  }
}
