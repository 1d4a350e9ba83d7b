import { assign, setup } from 'xstate';

/**
 * The failover service's view of one protected VM.
 *
 *   protected ──primary late──▶ suspect ──silent (miss count)──▶ failingOver
 *       ▲   └──backup silent──▶ unprotected ◀── promoted ──────┘
 *       │                          │  spare available
 *       └──── backup synced ── reprotecting
 *
 * Pure: the core feeds events (heartbeat verdicts, lease outcomes) and
 * performs the named actions (take the lease, send role changes).
 */
export type FailoverEvent =
  | { type: 'PRIMARY_LATE' }
  | { type: 'PRIMARY_SILENT' }
  | { type: 'PRIMARY_ALIVE' }
  | { type: 'BACKUP_SILENT' }
  | { type: 'LEASE_TAKEN'; term: number }
  | { type: 'LEASE_LOST' }
  | { type: 'PROMOTED' }
  | { type: 'SPARE_READY' }
  | { type: 'BACKUP_SYNCED' };

export interface FailoverContext {
  term: number;
  failovers: number;
}

export const failoverMachine = setup({
  types: {
    context: {} as FailoverContext,
    events: {} as FailoverEvent,
    input: {} as { term: number },
  },
  actions: {
    // Performed by the core.
    takeLease: () => undefined,
    promoteBackup: () => undefined,
    dropBackup: () => undefined,
    startReprotection: () => undefined,
    recordTerm: assign({ term: ({ context, event }) => (event.type === 'LEASE_TAKEN' ? event.term : context.term) }),
    countFailover: assign({ failovers: ({ context }) => context.failovers + 1 }),
  },
}).createMachine({
  id: 'failover',
  initial: 'protected',
  context: ({ input }) => ({ term: input.term, failovers: 0 }),
  states: {
    protected: {
      on: {
        PRIMARY_LATE: { target: 'suspect' },
        PRIMARY_SILENT: { target: 'failingOver', actions: 'takeLease' },
        BACKUP_SILENT: { target: 'unprotected', actions: 'dropBackup' },
      },
    },
    /** A heartbeat is late: a slow host or a dead one; act only when it stays silent. */
    suspect: {
      on: {
        PRIMARY_ALIVE: { target: 'protected' },
        PRIMARY_SILENT: { target: 'failingOver', actions: 'takeLease' },
        BACKUP_SILENT: { target: 'unprotected', actions: 'dropBackup' },
      },
    },
    failingOver: {
      on: {
        LEASE_TAKEN: { target: 'promoting', actions: ['recordTerm', 'countFailover', 'promoteBackup'] },
        // Someone else holds a newer term, or the store is unreachable: retry on the next verdict.
        LEASE_LOST: { target: 'suspect' },
      },
    },
    promoting: {
      on: { PROMOTED: { target: 'unprotected' } },
    },
    unprotected: {
      on: { SPARE_READY: { target: 'reprotecting', actions: 'startReprotection' } },
    },
    reprotecting: {
      on: {
        BACKUP_SYNCED: { target: 'protected' },
        BACKUP_SILENT: { target: 'unprotected', actions: 'dropBackup' },
      },
    },
  },
});

export type FailoverState = 'protected' | 'suspect' | 'failingOver' | 'promoting' | 'unprotected' | 'reprotecting';
