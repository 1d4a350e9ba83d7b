import { Command } from 'commander';

/** Runs one service core as a process over NATS (filled in by the NATS shell). */
export function serviceCommand(): Command {
  return new Command('service').description('run one service as a process over NATS').argument('<name>', 'guest | client');
}
