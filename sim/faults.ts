import type { Rng } from '../lib/rng.js';
import { msToUs } from '../lib/units.js';

/**
 * Faults the simulator can inject into a replicated run. Each is a window of
 * simulated time (a crash is a window with no end).
 */
export type Fault =
  /** The host serving the role at that moment dies with all its services. */
  | { readonly kind: 'crash'; readonly role: 'primary' | 'backup'; readonly atMs: number }
  /** The primary host loses the failover service and the lease store (heartbeats and renewals are lost), but still reaches the client. */
  | { readonly kind: 'isolate-primary'; readonly fromMs: number; readonly toMs: number }
  /** Nobody reaches the lease store. */
  | { readonly kind: 'lease-outage'; readonly fromMs: number; readonly toMs: number }
  /** The replication link runs `factor` times slower (a congested or degraded NIC): checkpoints queue up, output waits. */
  | { readonly kind: 'slow-replication'; readonly fromMs: number; readonly toMs: number; readonly factor: number };

/** A scheduled change to the world: a fault starting or ending. */
export interface FaultStep {
  readonly atUs: number;
  readonly fault: Fault;
  readonly phase: 'start' | 'end';
}

export function faultSteps(faults: readonly Fault[]): FaultStep[] {
  const steps: FaultStep[] = [];
  for (const fault of faults) {
    if (fault.kind === 'crash') steps.push({ atUs: msToUs(fault.atMs), fault, phase: 'start' });
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
 * the runner tells that apart from a liveness failure.
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
    const pick = rng.int(5);
    if (pick <= 1 && hostFaults < MAX_HOST_FAULTS) {
      hostFaults++;
      faults.push({ kind: 'crash', role: pick === 0 ? 'primary' : 'backup', atMs: at() });
    } else if (pick === 2 && hostFaults < MAX_HOST_FAULTS) {
      hostFaults++;
      faults.push({ kind: 'isolate-primary', ...window(300) });
    } else if (pick === 3) {
      faults.push({ kind: 'slow-replication', ...window(400), factor: [10, 100, 1000][rng.int(3)]! });
    } else {
      faults.push({ kind: 'lease-outage', ...window(200) });
    }
  }
  return faults;
}
