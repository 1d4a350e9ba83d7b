/**
 * Model-based test of the epoch machine: @xstate/graph walks every reachable
 * (state, in-flight count) of the machine for maxInflight 1 and 2; every
 * transition is then replayed, along a shortest path to its source, both on
 * the machine and on the PrimaryCheckpointer that drives it, and the
 * checkpointer's state and effects must follow the machine step by step.
 */
import { getAdjacencyMap, getShortestPaths, type StatePath } from '@xstate/graph';
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type SnapshotFrom } from 'xstate';
import { makeChunks } from '../../../lib/checkpoint/chunks.js';
import { ChunkSource, type EpochBarrier } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import type { Effect } from '../../../lib/runtime/types.js';
import { epochMachine, type EpochEvent, type EpochState } from '../../../services/checkpointer/epoch.machine.js';
import { PrimaryCheckpointer } from '../../../services/checkpointer/primary.js';
import { chunksOn, sentOn, VM } from './support.js';

type Snapshot = SnapshotFrom<typeof epochMachine>;
const s = subjects(VM);
const hs = s.host('host-a');
const TERM = 1;
const EVENT_TYPES: EpochEvent['type'][] = ['EPOCH_TIMER', 'STAGED', 'COMMITTED'];

/**
 * The events the core can produce in a snapshot: COMMITTED only answers an
 * acknowledged in-flight checkpoint, so it needs one in flight.
 */
const events = (snapshot: Snapshot): EpochEvent[] => EVENT_TYPES.filter((type) => type !== 'COMMITTED' || snapshot.context.inflight > 0).map((type) => ({ type }));
const isEpochEvent = (type: string): type is EpochEvent['type'] => (EVENT_TYPES as string[]).includes(type);
/** The epoch number grows without bound; the state and the in-flight count are what the machine branches on. */
const serializeState = (snapshot: Snapshot) => `${String(snapshot.value)}/${snapshot.context.inflight}`;
const traversal = (maxInflight: number) => ({ input: { maxInflight }, events, serializeState });

interface Edge {
  readonly from: string;
  readonly event: EpochEvent['type'];
  readonly to: string;
}

function edges(maxInflight: number): Edge[] {
  const adjacency = getAdjacencyMap(epochMachine, traversal(maxInflight));
  const out: Edge[] = [];
  for (const [from, { transitions }] of Object.entries(adjacency)) {
    for (const { event, state } of Object.values(transitions) as { event: EpochEvent; state: Snapshot }[]) out.push({ from, event: event.type, to: serializeState(state) });
  }
  return out;
}

/** Drives the checkpointer with the call standing for each machine event. */
class CoreDriver {
  readonly core: PrimaryCheckpointer;
  nowUs = 0;
  constructor(maxInflight: number) {
    this.core = new PrimaryCheckpointer({ vmId: VM, subjects: hs, ckptDataSubject: s.ckptData, term: TERM, epochUs: 1_000, maxInflightEpochs: maxInflight, speculative: true, ackTimeoutUs: 10_000, maxLatencySamples: 10, backupHost: 'host-b', incarnation: 1, agentIncarnation: 1 });
  }

  /** One call at the next instant; returns what it pushed. */
  #step(call: (nowUs: number, out: Effect[]) => void): Effect[] {
    this.nowUs += 100;
    const out: Effect[] = [];
    call(this.nowUs, out);
    return out;
  }

  fire(event: EpochEvent['type']): Effect[] {
    switch (event) {
      case 'EPOCH_TIMER':
        return this.#step((now, out) => this.core.onTimer('ckpt.epoch', now, out));
      case 'COMMITTED':
        return this.#step((now, out) => this.core.onAck({ type: 'checkpointAck', vmId: VM, term: TERM, epoch: this.core.stats.lastCommittedEpoch + 1, ok: true, reason: '', host: 'host-b', needsBase: false }, now, out));
      case 'STAGED': {
        const header = { vmId: VM, term: TERM, epoch: this.core.epoch };
        const chunks = [ChunkSource.PAGES, ChunkSource.STATE, ChunkSource.SPEC].flatMap((source) => makeChunks(header, source, { pieces: [new Uint8Array([source])] }));
        return chunks.flatMap((c) => this.#step((now, out) => this.core.onStaged(c, now, out)));
      }
    }
  }
}

/** What the core must emit for a machine step from `before` to `after` on `event`. */
function expectEffects(effects: Effect[], event: EpochEvent['type'], before: Snapshot, after: Snapshot): void {
  const entered = (state: EpochState) => before.value !== state && after.value === state;
  const barriers = sentOn(effects, hs.epoch) as EpochBarrier[];
  // The guest resumes by itself; the checkpointer sends pause barriers only.
  expect(barriers.map((b) => b.epoch)).toEqual(entered('pausing') ? [before.context.epoch] : []);
  const staged = event === 'STAGED' && before.value === 'pausing';
  const timers = effects.filter((e) => e.kind === 'setTimer').map((e) => (e as { name: string }).name);
  expect(timers.includes('ckpt.epoch')).toBe(staged);
  const transferred = chunksOn(effects, s.ckptData('host-b'));
  if (staged) {
    expect(transferred.map((c) => c.source)).toEqual([ChunkSource.PAGES, ChunkSource.STATE, ChunkSource.SPEC, ChunkSource.MANIFEST]);
    expect(transferred.every((c) => c.epoch === before.context.epoch)).toBe(true);
  } else {
    expect(transferred).toEqual([]);
  }
  expect(sentOn(effects, hs.commit)).toHaveLength(event === 'COMMITTED' ? 1 : 0);
}

/** Replays `path` then `last` on a fresh machine and core, checking the core against the machine at every step. */
function replay(maxInflight: number, path: StatePath<Snapshot, EpochEvent>, last?: EpochEvent['type']): void {
  const driver = new CoreDriver(maxInflight);
  let [snapshot] = initialTransition(epochMachine, { maxInflight });
  // The first step of a path is the machine's own initialization.
  const steps = [...path.steps.map((st) => st.event.type).filter(isEpochEvent), ...(last === undefined ? [] : [last])];
  for (const type of steps) {
    const [next] = transition(epochMachine, snapshot, { type });
    const effects = driver.fire(type);
    expect(driver.core.state, `after ${steps.join(' → ')}`).toBe(next.value);
    expect(driver.core.epoch).toBe(next.context.epoch);
    expectEffects(effects, type, snapshot, next);
    snapshot = next;
  }
  expect(snapshot.context.inflight).toBeGreaterThanOrEqual(0);
  expect(snapshot.context.inflight).toBeLessThanOrEqual(maxInflight);
}

describe('epochMachine, model-based', () => {
  for (const maxInflight of [1, 2]) {
    describe(`maxInflight ${maxInflight}`, () => {
      const paths = getShortestPaths(epochMachine, traversal(maxInflight));
      const pathTo = new Map(paths.map((p) => [serializeState(p.state), p]));
      const all = edges(maxInflight);

      it('reaches every state, throttled only with maxInflight checkpoints in flight', () => {
        const reached = [...pathTo.keys()].sort();
        const expected = ['throttled/' + maxInflight];
        for (let n = 0; n <= maxInflight; n++) expected.push(`running/${n}`);
        for (let n = 0; n < maxInflight; n++) expected.push(`pausing/${n}`);
        expect(reached).toEqual(expected.sort());
      });

      it('has every transition of the machine, each guard branch taken', () => {
        const changing = all.filter((e) => e.from !== e.to).map((e) => `${e.from} -${e.event}-> ${e.to}`);
        const expected: string[] = [];
        for (let n = 0; n < maxInflight; n++) {
          expected.push(`running/${n} -EPOCH_TIMER-> pausing/${n}`); // hasCapacity
          expected.push(`pausing/${n} -STAGED-> running/${n + 1}`);
        }
        expected.push(`running/${maxInflight} -EPOCH_TIMER-> throttled/${maxInflight}`); // no capacity
        expected.push(`throttled/${maxInflight} -COMMITTED-> pausing/${maxInflight - 1}`);
        for (let n = 1; n <= maxInflight; n++) {
          expected.push(`running/${n} -COMMITTED-> running/${n - 1}`);
          if (n < maxInflight) expected.push(`pausing/${n} -COMMITTED-> pausing/${n - 1}`);
        }
        expect(changing.sort()).toEqual(expected.sort());
      });

      it('drives the core along a shortest path to every state', () => {
        for (const path of paths) replay(maxInflight, path);
      });

      it('drives the core through every transition, including events a state ignores', () => {
        // Every event the core can produce, in every reachable state (ignored ones included).
        expect(all.length).toBe(paths.reduce((n, p) => n + events(p.state).length, 0));
        for (const edge of all) replay(maxInflight, pathTo.get(edge.from)!, edge.event);
      });
    });
  }
});
