#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { SpeculaError } from '../lib/errors.js';
import { configDocsCommand } from './commands/config-docs.js';
import { experimentCommand } from './commands/experiment.js';
import { healthCommand } from './commands/health.js';
import { traceCommand } from './commands/trace.js';
import { runCommand } from './commands/run.js';
import { serviceCommand } from './commands/service.js';
import { statusCommand } from './commands/status.js';
import { upCommand } from './commands/up.js';
import { voprCommand } from './commands/vopr.js';
import { EXIT_FAILED, EXIT_USAGE } from './exit-codes.js';

const program = new Command('specula')
  .description('Epoch checkpoint replication with speculative TCP ACKs and replication-aware congestion control')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  .exitOverride();
program.addCommand(runCommand().exitOverride());
program.addCommand(experimentCommand().exitOverride());
program.addCommand(serviceCommand().exitOverride());
program.addCommand(upCommand().exitOverride());
program.addCommand(statusCommand().exitOverride());
program.addCommand(voprCommand().exitOverride());
program.addCommand(healthCommand().exitOverride());
program.addCommand(traceCommand().exitOverride());
program.addCommand(configDocsCommand().exitOverride());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Help and version end in a CommanderError too, with exit code 0.
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
  } else if (err instanceof SpeculaError && err.code === 'CONFIG') {
    process.stderr.write(`specula: invalid option: ${err.message}\n`);
    process.exitCode = EXIT_USAGE;
  } else if (err instanceof SpeculaError && err.code !== 'INVARIANT') {
    // An expected failure (transport, decode): its message says what to fix.
    process.stderr.write(`specula: ${err.message}\n`);
    process.exitCode = EXIT_FAILED;
  } else {
    // A bug or a broken invariant: the stack is for the report.
    process.stderr.write(`specula: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = EXIT_FAILED;
  }
}
