export { monotonicClock, wallClock, type Clock } from './clock.js';
export { connectNats, parseServers } from './connect.js';
export { emulatedLink, replicationLink, type LinkSide } from './emulated-link.js';
export { LeaseEffectRunner, type LeaseRunnerCounters } from './lease-runner.js';
export { LinkGate, type LinkGateCounters } from './link-gate.js';
export { createLogger, DEFAULT_LOG_LEVEL, type Logger } from './logger.js';
export { DEFAULT_NATS_URL, natsConnectionOptionsSchema, natsShellLimitsSchema, type NatsConnectionOptions, type NatsConnectionOptionsInput, type NatsShellLimits } from './options.js';
export { NatsShell, type InboundLink, type NatsShellOptions, type ShellCounters, type ShellState } from './shell.js';
export { drainOnSignals } from './signals.js';
