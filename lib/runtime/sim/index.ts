export { SimRuntime, DROPPED, type Hop, type Placement, type Publisher, type SimRuntimeOptions, type SimLogEntry } from './sim-runtime.js';
export { EventQueue, type QueuedEvent } from './event-queue.js';
export { HostClock, MAX_DRIFT_PPM, TRUE_CLOCK, type HostClockSpec } from './host-clock.js';
