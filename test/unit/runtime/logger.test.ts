import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { createLogger, vmLogger } from '../../../lib/runtime/nats/logger.js';

/** The raw lines a logger writes: JSON.parse would hide a key written twice. */
function capture(): { lines: string[]; destination: { write(line: string): void } } {
  const lines: string[] = [];
  return { lines, destination: { write: (line: string) => void lines.push(line.trimEnd()) } };
}

const occurrences = (line: string, key: string) => line.split(`"${key}":`).length - 1;

describe('service logger', () => {
  it('binds the specula host as host and the machine as hostname', () => {
    const out = capture();
    createLogger({ role: 'guest', host: 'host-a', vms: ['vm1'] }, 'info', out.destination).info({ event: 'x' }, 'x');
    const line = JSON.parse(out.lines[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({ role: 'guest', host: 'host-a', vm: 'vm1', hostname: hostname(), pid: process.pid, event: 'x' });
  });

  it('leaves host out for a process of no host (the failover service, the client)', () => {
    const out = capture();
    createLogger({ role: 'failover', host: null, vms: ['vm1'] }, 'info', out.destination).warn({ event: 'failover.promoting' }, 'failover.promoting');
    expect(JSON.parse(out.lines[0]!)).not.toHaveProperty('host');
  });

  it('writes vm once in a line of a one-VM process, through its shell logger too', () => {
    const out = capture();
    const vms = ['vm1'];
    const logger = createLogger({ role: 'acker', host: 'host-b', vms }, 'info', out.destination);
    vmLogger(logger, vms, 'vm1').info({ event: 'x' }, 'x');
    expect(occurrences(out.lines[0]!, 'vm')).toBe(1);
    expect(occurrences(out.lines[0]!, 'vms')).toBe(0);
  });

  it('names each VM of a several-VM process in its own shell lines', () => {
    const out = capture();
    const vms = ['vm1', 'vm2'];
    const logger = createLogger({ role: 'acker', host: 'host-b', vms }, 'info', out.destination);
    vmLogger(logger, vms, 'vm2').info({ event: 'x' }, 'x');
    logger.info({ event: 'y' }, 'y');
    expect(JSON.parse(out.lines[0]!)).toMatchObject({ vms: 'vm1,vm2', vm: 'vm2' });
    expect(occurrences(out.lines[0]!, 'vm')).toBe(1);
    expect(JSON.parse(out.lines[1]!)).not.toHaveProperty('vm');
  });
});
