#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { constants as osConstants } from 'node:os';
import { ConfigError, InterruptedError, InvariantError, SpeculaError } from '../lib/errors.js';
import { EXIT_FAILED, EXIT_USAGE, exitCodeOf } from './exit-codes.js';

/**
 * Each command's module, loaded only when that command runs (or for the
 * top-level help): a fleet starts 16 `specula service` processes at once,
 * and loading every command's dependencies (the plotting, the simulator,
 * the launcher) cost each of them as much again as its own.
 */
const COMMANDS: Readonly<Record<string, () => Promise<Command>>> = {
  run: async () => (await import('./commands/run.js')).runCommand(),
  experiment: async () => (await import('./commands/experiment.js')).experimentCommand(),
  service: async () => (await import('./commands/service.js')).serviceCommand(),
  up: async () => (await import('./commands/up.js')).upCommand(),
  status: async () => (await import('./commands/status.js')).statusCommand(),
  vopr: async () => (await import('./commands/vopr.js')).voprCommand(),
  health: async () => (await import('./commands/health.js')).healthCommand(),
  lease: async () => (await import('./commands/lease.js')).leaseCommand(),
  trace: async () => (await import('./commands/trace.js')).traceCommand(),
  'config-docs': async () => (await import('./commands/config-docs.js')).configDocsCommand(),
};

const program = new Command('specula')
  .description('Epoch checkpoint replication with speculative TCP ACKs and replication-aware congestion control')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();
const named = process.argv[2];
const wanted = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
for (const name of wanted) program.addCommand((await COMMANDS[name]!()).exitOverride());

// Commander's `help NAME` prints the whole usage for a name it does not know, and says nothing of it.
const helpFor = named === 'help' ? process.argv[3] : undefined;
if (helpFor !== undefined && !helpFor.startsWith('-') && !Object.hasOwn(COMMANDS, helpFor)) process.stderr.write(`specula: unknown command '${helpFor}'\n`);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version end in a CommanderError too, with exit code 0.
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
  } else if (err instanceof InterruptedError) {
    process.stderr.write(`specula: ${err.message}\n`);
    process.exitCode = 128 + (osConstants.signals[err.signal] ?? 15);
  } else if (err instanceof ConfigError) {
    process.stderr.write(`specula: invalid option: ${err.message}\n`);
    process.exitCode = EXIT_USAGE;
  } else if (err instanceof SpeculaError && !(err instanceof InvariantError)) {
    // An expected failure (transport, decode): its message says what to fix, its exit code what kind it is.
    process.stderr.write(`specula: ${err.message}\n`);
    process.exitCode = exitCodeOf(err);
  } else {
    // A bug or a broken invariant: the stack is for the report. The process ends here: what the failed command left
    // open (a connection, a timer) would otherwise keep it alive past its own --exit-after-s.
    process.stderr.write(`specula: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(EXIT_FAILED);
  }
}
