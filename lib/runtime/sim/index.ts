export { SimRuntime, DROPPED, type Hop, type SimRuntimeOptions, type SimLogEntry } from './sim-runtime.js';
export { EventQueue, type QueuedEvent } from './event-queue.js';
