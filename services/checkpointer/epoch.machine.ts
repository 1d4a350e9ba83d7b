import { assign, setup } from 'xstate';

/**
 * The primary's epoch lifecycle (Remus): the guest runs for an epoch, is
 * paused while its dirty state is copied into a staging buffer, and resumes
 * while that checkpoint travels to the backup, so epoch N+1 runs while N is
 * in flight. The guest resumes by itself once its copy is done; the
 * checkpointer stays `pausing` until every part of the checkpoint (the
 * guest's, and the acker's in speculative modes) is staged, and starts the
 * next epoch's timer then. With too many checkpoints in flight the next
 * pause waits (throttled) instead of piling up memory.
 *
 * The machine is pure: the core feeds it events and performs the named
 * actions it returns (timers and messages are the core's effects).
 */
export type EpochEvent =
  | { type: 'EPOCH_TIMER' }
  | { type: 'STAGED' }
  | { type: 'COMMITTED' };

export interface EpochContext {
  /** The epoch running, or being checkpointed while paused. */
  epoch: number;
  /** Checkpoints transferred and not yet acknowledged by the backup. */
  inflight: number;
  readonly maxInflight: number;
}

export const epochMachine = setup({
  types: {
    context: {} as EpochContext,
    events: {} as EpochEvent,
    input: {} as { maxInflight: number; firstEpoch?: number },
  },
  guards: {
    hasCapacity: ({ context }) => context.inflight < context.maxInflight,
    hasInflight: ({ context }) => context.inflight > 0,
  },
  actions: {
    // Performed by the core; the machine only names them.
    sendBarrier: () => undefined,
    startTransfer: () => undefined,
    armEpochTimer: () => undefined,
    nextEpoch: assign({ epoch: ({ context }) => context.epoch + 1, inflight: ({ context }) => context.inflight + 1 }),
    committed: assign({ inflight: ({ context }) => context.inflight - 1 }),
  },
}).createMachine({
  id: 'epoch',
  initial: 'running',
  context: ({ input }) => ({ epoch: input.firstEpoch ?? 1, inflight: 0, maxInflight: input.maxInflight }),
  on: {
    COMMITTED: { guard: 'hasInflight', actions: 'committed' },
  },
  states: {
    running: {
      on: {
        EPOCH_TIMER: [{ guard: 'hasCapacity', target: 'pausing', actions: 'sendBarrier' }, { target: 'throttled' }],
      },
    },
    throttled: {
      on: {
        COMMITTED: { target: 'pausing', actions: ['committed', 'sendBarrier'] },
      },
    },
    pausing: {
      on: { STAGED: { target: 'running', actions: ['startTransfer', 'nextEpoch', 'armEpochTimer'] } },
    },
  },
});

export type EpochState = 'running' | 'throttled' | 'pausing';
