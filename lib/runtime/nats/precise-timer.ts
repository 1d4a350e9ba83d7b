import type { Clock } from './clock.js';

/**
 * setTimeout counts whole milliseconds: a wait shorter than this is polled
 * instead (I/O keeps flowing between polls), and a longer one sleeps on
 * setTimeout until this much is left, so that 1.01 ms costs 1.01 ms and not 2.
 */
export const POLL_BELOW_US = 1_000;
/**
 * Between polls, when more than POLL_SLEEP_MARGIN_US is left, the process
 * sleeps (Atomics.wait: no CPU) for up to POLL_SLEEP_US, short of the margin,
 * then lets I/O in. Polling alone spent much of a native run's CPU in the
 * client and the guest at 100 Mbit/s; the sleeps took a quarter of the
 * client's off (3.4 → 2.6 CPU seconds in 5 s). A sleep holds the process's
 * other input back by at most POLL_SLEEP_US: 100 µs steps cost native at
 * 1 Gbit/s a few percent, 50 µs ones nothing measurable. The margin covers
 * the kernel's timer slack (50 µs): a sleep never makes a deadline late
 * (docs/nats.md, Links).
 */
export const POLL_SLEEP_US = 50;
export const POLL_SLEEP_MARGIN_US = 50;
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));
/**
 * Node fires a delay beyond this after 1 ms: a deadline weeks ahead (a lease
 * record from a clock set far forward) would spin. Waking at the cap finds
 * the deadline still ahead and waits again.
 */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * The process's timers within POLL_BELOW_US of their deadline. One poll loop
 * serves them all, so the process sleeps once per turn of its event loop
 * however many are waiting.
 */
const polling = new Set<PreciseTimer>();
let poll: NodeJS.Immediate | null = null;

function startPolling(): void {
  poll ??= setImmediate(pollOnce);
}

function pollOnce(): void {
  poll = null;
  let leastLeftUs = Infinity;
  for (const t of polling) leastLeftUs = Math.min(leastLeftUs, t.leftUs());
  if (leastLeftUs > POLL_SLEEP_MARGIN_US && leastLeftUs !== Infinity) Atomics.wait(SLEEPER, 0, 0, Math.min(POLL_SLEEP_US, leastLeftUs - POLL_SLEEP_MARGIN_US) / 1000);
  // A timer's callback may arm or cancel timers: walk a copy.
  for (const t of [...polling]) if (t.leftUs() <= 0) t.fire();
  if (polling.size > 0) startPolling();
}

/**
 * A one-shot deadline to the microsecond of a Clock, on Node's millisecond
 * timers: setTimeout while more than POLL_BELOW_US is left, then the
 * process's poll loop. It never fires early, and never from within `arm`:
 * a deadline already past fires at the next turn of the event loop, not
 * after setTimeout's 1 ms minimum.
 */
export class PreciseTimer {
  #atUs = 0;
  #armed = false;
  #timeout: NodeJS.Timeout | null = null;

  constructor(
    readonly clock: Clock,
    readonly onFire: () => void,
  ) {}

  get armed(): boolean {
    return this.#armed;
  }

  /** The deadline, in the clock's µs (meaningful while armed). */
  get atUs(): number {
    return this.#atUs;
  }

  /** Arms for `atUs`, replacing any deadline armed before. */
  arm(atUs: number): void {
    this.cancel();
    this.#atUs = atUs;
    this.#armed = true;
    this.#schedule();
  }

  cancel(): void {
    if (this.#timeout !== null) clearTimeout(this.#timeout);
    this.#timeout = null;
    polling.delete(this);
    this.#armed = false;
  }

  leftUs(): number {
    return this.#atUs - this.clock.nowUs();
  }

  /** Called by the poll loop once the deadline has come. */
  fire(): void {
    this.cancel();
    this.onFire();
  }

  #schedule(): void {
    const leftUs = this.leftUs();
    if (leftUs < POLL_BELOW_US) {
      polling.add(this);
      startPolling();
      return;
    }
    // setTimeout may fire a loop iteration early or late: wake a millisecond ahead and poll the rest.
    this.#timeout = setTimeout(() => {
      this.#timeout = null;
      this.#schedule();
    }, Math.min(Math.floor((leftUs - POLL_BELOW_US) / 1000), MAX_TIMEOUT_MS));
  }
}
