import type { Rng } from '../lib/rng.js';
import { msToUs } from '../lib/units.js';
import { BUS_SUBJECTS, type BusFaultSpec, type BusSubject } from './bus-faults.js';

export const PRIMARY_SERVICE_NAMES = ['guest', 'netbuffer', 'acker', 'checkpointer'] as const;
export type PrimaryServiceName = (typeof PRIMARY_SERVICE_NAMES)[number];

/**
 * Faults the simulator can inject into a replicated run. Each is a window of
 * simulated time (a crash is a window with no end).
 */
export type Fault =
  /** The host serving the role at that moment dies with all its services. */
  | { readonly kind: 'crash'; readonly role: 'primary' | 'backup'; readonly atMs: number }
  /** The primary host loses the failover service and the lease store (heartbeats and renewals are lost), but still reaches the client. */
  | { readonly kind: 'isolate-primary'; readonly fromMs: number; readonly toMs: number }
  /** The backup host loses the failover service and the lease store, but still reaches the primary over the replication link. */
  | { readonly kind: 'isolate-backup'; readonly fromMs: number; readonly toMs: number }
  /**
   * A host's heartbeats are lost (a congested control network) while it still reaches the lease store: the
   * failover service suspects a primary that goes on renewing its lease, and takes the lease over from it.
   */
  | { readonly kind: 'mute-heartbeats'; readonly role: 'primary' | 'backup'; readonly fromMs: number; readonly toMs: number }
  /**
   * The failover service loses the bus in [fromMs, toMs) (its broker restarts, its link fails): no heartbeat
   * reaches it, no role change leaves it, the lease store does not answer it; its shell tells it so at both ends.
   */
  | { readonly kind: 'cut-off-failover'; readonly fromMs: number; readonly toMs: number }
  /** The failover service is down in [fromMs, toMs), then restarts knowing only its configuration. */
  | { readonly kind: 'restart-failover'; readonly fromMs: number; readonly toMs: number }
  /** The backup's guest process dies and its supervisor restarts it empty (the image is gone): the host is a spare again. */
  | { readonly kind: 'restart-backup'; readonly atMs: number }
  /**
   * The backup host reboots at once: its agent and every service start again with only their configuration,
   * faster than a heartbeat is missed. The configured backup's new agent makes its guest a backup as at the
   * VM's creation: an empty image that calls itself complete.
   */
  | { readonly kind: 'reboot-backup'; readonly atMs: number }
  /**
   * Every host that is down starts again with only its configuration, as an operator restarts a killed host:
   * its agent in the role the VM was created with, its guest empty. It holds no image of the VM and may only
   * join as a spare.
   */
  | { readonly kind: 'revive'; readonly atMs: number }
  /**
   * The host agent of the primary or the backup dies and its supervisor starts it again at once, with only its
   * configuration, while the host's services run on: they take the new agent's assignments.
   */
  | { readonly kind: 'restart-agent'; readonly role: 'primary' | 'backup'; readonly atMs: number }
  /**
   * One service of the primary dies at `fromMs`; its supervisor notices at `toMs` and stops the whole host
   * (a primary-side service cannot restart: the speculative buffer, held output and the guest live in it).
   */
  | { readonly kind: 'crash-primary-service'; readonly service: PrimaryServiceName; readonly fromMs: number; readonly toMs: number }
  /** Nobody reaches the lease store. */
  | { readonly kind: 'lease-outage'; readonly fromMs: number; readonly toMs: number }
  /** The replication link runs `factor` times slower (a congested or degraded NIC): checkpoints queue up, output waits. */
  | { readonly kind: 'slow-replication'; readonly fromMs: number; readonly toMs: number; readonly factor: number }
  /** Messages between services are lost, duplicated or delayed (reordered) on the given subjects. */
  | ({ readonly kind: 'bus'; readonly fromMs: number; readonly toMs: number } & BusFaultSpec);

/** A scheduled change to the world: a fault starting or ending. */
export interface FaultStep {
  readonly atUs: number;
  readonly fault: Fault;
  readonly phase: 'start' | 'end';
}

export function faultSteps(faults: readonly Fault[]): FaultStep[] {
  const steps: FaultStep[] = [];
  for (const fault of faults) {
    if (fault.kind === 'crash' || fault.kind === 'restart-backup' || fault.kind === 'reboot-backup' || fault.kind === 'revive' || fault.kind === 'restart-agent') steps.push({ atUs: msToUs(fault.atMs), fault, phase: 'start' });
    else {
      steps.push({ atUs: msToUs(fault.fromMs), fault, phase: 'start' });
      steps.push({ atUs: msToUs(fault.toMs), fault, phase: 'end' });
    }
  }
  // Stable: equal times keep the plan's order.
  return steps.map((step, i) => ({ step, i })).sort((a, b) => a.step.atUs - b.step.atUs || a.i - b.i).map((x) => x.step);
}

/** Host-losing faults in one plan: three hosts survive two, once the spare has re-protected the VM in between. */
const MAX_HOST_FAULTS = 2;

/**
 * A seeded fault plan for the safety phase [startMs, endMs): zero to four
 * faults, at most two of them host-losing (a crash, or isolating the
 * primary, which costs it its role), windows inside the phase. Two host
 * faults close together can lose the VM by design (no synced backup left);
 * the runner tells that apart from a liveness failure. Two seeds in three
 * also get one or two bus faults (loss, duplication, delay between
 * services), and 30% of the seeds with a crash start the crashed host again.
 * One in ten, while it may lose a host, has the primary's host crash early
 * in the phase and come back 50-150 ms later, within a cut-off of the
 * failover service; one in ten restarts the agent of the primary or the
 * backup alone; one in twenty has the lease store down from the VM's
 * creation (time 0, before the phase) for 50 ms up to 250 ms past the
 * phase's start.
 */
export function planFaults(rng: Rng, startMs: number, endMs: number): Fault[] {
  const faults: Fault[] = [];
  const span = endMs - startMs;
  const at = () => Math.round(startMs + rng.next() * span);
  const window = (maxMs: number) => {
    const from = at();
    return { fromMs: from, toMs: Math.min(endMs, from + Math.round(20 + rng.next() * maxMs)) };
  };
  const count = rng.int(5);
  let hostFaults = 0;
  for (let i = 0; i < count; i++) {
    const pick = rng.int(10);
    if (pick <= 1 && hostFaults < MAX_HOST_FAULTS) {
      hostFaults++;
      faults.push({ kind: 'crash', role: pick === 0 ? 'primary' : 'backup', atMs: at() });
    } else if (pick === 2 && hostFaults < MAX_HOST_FAULTS) {
      hostFaults++;
      faults.push({ kind: 'isolate-primary', ...window(300) });
    } else if (pick === 3 && hostFaults < MAX_HOST_FAULTS) {
      hostFaults++;
      faults.push({ kind: 'isolate-backup', ...window(300) });
    } else if (pick === 4 && hostFaults < MAX_HOST_FAULTS) {
      hostFaults++; // the backup loses its image: the VM is unprotected until it is a backup again
      faults.push({ kind: 'restart-backup', atMs: at() });
    } else if (pick === 5 && hostFaults < MAX_HOST_FAULTS) {
      hostFaults++;
      const fromMs = at();
      // The supervisor checks its services at each heartbeat: up to one interval later (10 ms by default).
      faults.push({ kind: 'crash-primary-service', service: PRIMARY_SERVICE_NAMES[rng.int(PRIMARY_SERVICE_NAMES.length)]!, fromMs, toMs: fromMs + 1 + rng.int(10) });
    } else if (pick === 6) {
      faults.push({ kind: 'restart-failover', ...window(300) });
    } else if (pick === 7) {
      faults.push({ kind: 'slow-replication', ...window(400), factor: [10, 100, 1000][rng.int(3)]! });
    } else {
      faults.push({ kind: 'lease-outage', ...window(200) });
    }
  }
  // Faults added later draw from their own streams, so the plans above stay as they were for each seed.
  const control = rng.fork('control');
  if (hostFaults < MAX_HOST_FAULTS && control.chance(0.15)) {
    const fromMs = Math.round(startMs + control.next() * span);
    faults.push({ kind: 'mute-heartbeats', role: control.chance(0.8) ? 'primary' : 'backup', fromMs, toMs: Math.min(endMs, fromMs + Math.round(20 + control.next() * 300)) });
  }
  const reboot = rng.fork('reboot');
  if (hostFaults < MAX_HOST_FAULTS && reboot.chance(0.1)) {
    faults.push({ kind: 'reboot-backup', atMs: Math.round(startMs + reboot.next() * span) });
  }
  // A crashed host may be started again (an operator, an orchestrator): it comes back as at the VM's creation.
  const revive = rng.fork('revive');
  const crashes = faults.filter((f): f is Extract<Fault, { kind: 'crash' }> => f.kind === 'crash');
  if (crashes.length > 0 && revive.chance(0.3)) {
    const afterMs = Math.min(...crashes.map((c) => c.atMs)) + 50 + Math.round(revive.next() * 500);
    if (afterMs < endMs) faults.push({ kind: 'revive', atMs: afterMs });
  }
  // The failover service cut off from the bus: its silence is not the hosts'.
  const cutOff = rng.fork('cut-off');
  if (cutOff.chance(0.15)) {
    const fromMs = Math.round(startMs + cutOff.next() * span);
    faults.push({ kind: 'cut-off-failover', fromMs, toMs: Math.min(endMs, fromMs + Math.round(20 + cutOff.next() * 600)) });
  }
  // A primary host that crashes and comes back while the failover service hears nothing: it runs a VM made anew, as
  // at the VM's creation, under the old term, and streams it to the backup for as long as the service is away. Early
  // in the phase and for long, so that the new VM's epochs often pass the one the backup held at the crash.
  const unheard = rng.fork('restart-unheard');
  if (hostFaults < MAX_HOST_FAULTS && unheard.chance(0.1)) {
    const atMs = Math.round(startMs + unheard.next() * 200);
    faults.push({ kind: 'cut-off-failover', fromMs: atMs - 5, toMs: Math.min(endMs, atMs + 300 + Math.round(unheard.next() * 600)) });
    faults.push({ kind: 'crash', role: 'primary', atMs });
    faults.push({ kind: 'revive', atMs: atMs + 50 + Math.round(unheard.next() * 100) });
  }
  // A host's agent dies and its supervisor starts it again at once, with only its configuration, while the host's
  // services run on. To the failover service a new agent is a restarted host: the primary loses its role.
  const agent = rng.fork('restart-agent');
  if (hostFaults < MAX_HOST_FAULTS && agent.chance(0.1)) {
    faults.push({ kind: 'restart-agent', role: agent.chance(0.6) ? 'primary' : 'backup', atMs: Math.round(startMs + agent.next() * span) });
  }
  // The lease store down as the VM is created, before the phase: the first primary's agent creates the lease late,
  // while every process starts (a failover service restarted later finds a lease with nothing committed, written by
  // an agent that may have restarted since: test/sim/failover.test.ts).
  const creation = rng.fork('lease-at-creation');
  if (creation.chance(0.05)) faults.push({ kind: 'lease-outage', fromMs: 0, toMs: Math.round(50 + creation.next() * (startMs + 200)) });
  const bus = rng.fork('bus');
  const busCount = [0, 0, 1, 1, 1, 2][bus.int(6)]!;
  for (let i = 0; i < busCount; i++) faults.push(planBusFault(bus, startMs, endMs));
  return faults;
}

/** One bus fault: a window of up to 400 ms on every service subject, or on a few of them. */
function planBusFault(rng: Rng, startMs: number, endMs: number): Fault {
  const fromMs = Math.round(startMs + rng.next() * (endMs - startMs));
  const toMs = Math.min(endMs, fromMs + Math.round(20 + rng.next() * 380));
  let subjects: BusSubject[] = [...BUS_SUBJECTS];
  if (rng.chance(0.5)) {
    subjects = BUS_SUBJECTS.filter(() => rng.chance(0.4));
    if (subjects.length === 0) subjects = [BUS_SUBJECTS[rng.int(BUS_SUBJECTS.length)]!];
  }
  const rate = (max: number) => Math.round(rng.next() * max * 1000) / 1000;
  return { kind: 'bus', fromMs, toMs, dropRate: rate(0.3), duplicateRate: rate(0.2), delayRate: rate(0.5), maxDelayUs: [500, 2000, 5000][rng.int(3)]!, subjects };
}
