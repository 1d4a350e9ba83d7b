import { setup } from 'xstate';

/**
 * What one host is for one protected VM, as its agent sees it.
 *
 *   spare ──join──▶ backup ──promote──▶ promoting ──restored──▶ claiming ──lease granted──▶ primary
 *     ▲               │ ▲                                                                     │  │
 *     └──image lost───┘ └─────────────────────────── join ◀── deposed ◀──── lease lost ──────┘  │
 *                                                    (claiming, too, is deposed when the lease moves on)  │
 *                                                                                              │
 *   promoting, claiming, primary, deposed ──a service restarted──▶ halted ◀────────────────────┘
 *   any state ──a service stopped reporting──▶ halted
 *
 * Pure: the core feeds events (role changes from the failover service,
 * service reports, lease answers) and performs the named actions (send
 * assignments to its services, renew the lease, halt). Time enters only as
 * the core's timers.
 */
export type HostAgentEvent =
  /** The failover service made this host the backup (a first or a new join). */
  | { type: 'JOIN' }
  /** The failover service made this host, a backup, the primary. */
  | { type: 'PROMOTE' }
  /** The failover service changed the backup of this primary. */
  | { type: 'PEER_CHANGED' }
  /** The guest and the acker restored from the backup image and are ready to run. */
  | { type: 'RESTORED' }
  /** This host's own renewal of the lease for the new term succeeded. */
  | { type: 'LEASE_GRANTED' }
  /** The lease names another host or a newer term. */
  | { type: 'DEPOSED' }
  /** The backup's guest restarted: its image is gone. */
  | { type: 'IMAGE_LOST' }
  /** A service of a primary restarted: the VM's state in it is gone. */
  | { type: 'SERVICE_RESTARTED' }
  /** A service stopped reporting: the host cannot serve any role. */
  | { type: 'SERVICE_DIED' };

export type HostAgentState = 'booting' | 'spare' | 'backup' | 'promoting' | 'claiming' | 'primary' | 'deposed' | 'halted';

export const hostAgentMachine = setup({
  types: {
    context: {} as { readonly initialRole: 'primary' | 'backup' | 'spare' },
    events: {} as HostAgentEvent,
    input: {} as { initialRole: 'primary' | 'backup' | 'spare' },
  },
  guards: {
    startsPrimary: ({ context }) => context.initialRole === 'primary',
    startsBackup: ({ context }) => context.initialRole === 'backup',
  },
  actions: {
    // Performed by the core; the machine only names them.
    assignPrimary: () => undefined,
    assignBackup: () => undefined,
    assignPromoting: () => undefined,
    assignSpare: () => undefined,
    claimLease: () => undefined,
    halt: () => undefined,
    refusePromotion: () => undefined,
  },
}).createMachine({
  id: 'hostAgent',
  context: ({ input }) => ({ initialRole: input.initialRole }),
  initial: 'booting',
  // A host with a dead service cannot run, back up or take over the VM: it takes itself down (shared fate).
  on: { SERVICE_DIED: { target: '.halted', actions: 'halt' } },
  states: {
    /** The layout the VM was created with: the first primary and backup start in their roles. */
    booting: {
      always: [
        { guard: 'startsPrimary', target: 'primary', actions: 'assignPrimary' },
        { guard: 'startsBackup', target: 'backup', actions: 'assignBackup' },
        { target: 'spare', actions: 'assignSpare' },
      ],
    },
    spare: {
      on: {
        JOIN: { target: 'backup', actions: 'assignBackup' },
        // Chosen as a backup, then lost the image (restarted): nothing to run from.
        PROMOTE: { actions: 'refusePromotion' },
      },
    },
    backup: {
      on: {
        JOIN: { target: 'backup', reenter: true, actions: 'assignBackup' },
        PROMOTE: { target: 'promoting', actions: 'assignPromoting' },
        IMAGE_LOST: { target: 'spare', actions: 'assignSpare' },
      },
    },
    /** The backup image is frozen; the guest restores from it and the acker takes its speculative buffer. */
    promoting: {
      on: {
        RESTORED: { target: 'claiming', actions: 'claimLease' },
        SERVICE_RESTARTED: { target: 'halted', actions: 'halt' },
        // This host holds the only image (the primary is gone): a silent service is waited for, not halted over.
        SERVICE_DIED: {},
      },
    },
    /** Runs nothing until its own renewal of the lease the failover service took for it succeeds. */
    claiming: {
      on: {
        LEASE_GRANTED: { target: 'primary', actions: 'assignPrimary' },
        // The lease moved on while this host claimed it (a newer take-over): it never runs as primary.
        DEPOSED: { target: 'deposed' },
        SERVICE_RESTARTED: { target: 'halted', actions: 'halt' },
        // The only image, as while promoting.
        SERVICE_DIED: {},
      },
    },
    /** Halts for a dead service only once its backup holds a complete image (the core knows; docs/failover.md). */
    primary: {
      on: {
        PEER_CHANGED: { actions: 'assignPrimary' },
        DEPOSED: { target: 'deposed' },
        SERVICE_RESTARTED: { target: 'halted', actions: 'halt' },
      },
    },
    /** Another host holds the lease: no more renewals or permits; only a new role brings it back. */
    deposed: {
      on: {
        JOIN: { target: 'backup', actions: 'assignBackup' },
        SERVICE_RESTARTED: { target: 'halted', actions: 'halt' },
      },
    },
    /** The host took itself down: no heartbeats, renewals or permits; its services are stopped. */
    halted: { on: { SERVICE_DIED: {} } },
  },
});
