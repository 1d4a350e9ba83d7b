import { describe, expect, it } from 'vitest';
import { EXIT_FAILED, EXIT_UNAVAILABLE, EXIT_USAGE, EXIT_VM_RUNNING, exitCodeOf } from '../../../cli/exit-codes.js';
import { ConfigError, DecodeError, InvariantError, NotProtectedError, TransportError, VmRunningError } from '../../../lib/errors.js';
import { LeaseStoreUnavailableError } from '../../../lib/lease/errors.js';
import { ServiceProcessError } from '../../../cli/launcher/service-process-error.js';

describe('exitCodeOf: the kind of failure, for scripts that must not read stderr', () => {
  it('gives each class of expected failure its own code, and every other error 1', () => {
    expect(exitCodeOf(new ConfigError('bad flag'))).toBe(EXIT_USAGE);
    expect(exitCodeOf(new TransportError('cannot connect'))).toBe(EXIT_UNAVAILABLE);
    expect(exitCodeOf(new LeaseStoreUnavailableError('no JetStream'))).toBe(EXIT_UNAVAILABLE);
    expect(exitCodeOf(new VmRunningError('vm1 is running'))).toBe(EXIT_VM_RUNNING);
    expect(exitCodeOf(new DecodeError('malformed'))).toBe(EXIT_FAILED);
    expect(exitCodeOf(new InvariantError('a bug'))).toBe(EXIT_FAILED);
    expect(exitCodeOf(new NotProtectedError('vm1 is not protected'))).toBe(EXIT_FAILED);
  });

  it("gives a launched service's failure the child's own code when that code says the bus is unfit or the VM runs elsewhere", () => {
    const ended = (code: number | null, signal: NodeJS.Signals | null = null) => new ServiceProcessError('host-a netbuffer exited', { label: 'host-a netbuffer', pid: 1 }, { code, signal });
    expect(exitCodeOf(ended(EXIT_UNAVAILABLE))).toBe(EXIT_UNAVAILABLE);
    expect(exitCodeOf(ended(EXIT_VM_RUNNING))).toBe(EXIT_VM_RUNNING);
    for (const other of [ended(EXIT_FAILED), ended(EXIT_USAGE), ended(null, 'SIGKILL'), new ServiceProcessError('no report from the client')]) expect(exitCodeOf(other)).toBe(EXIT_FAILED);
  });

  it('keeps the codes apart from each other and from a signal’s (128 + n)', () => {
    const codes = [EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_VM_RUNNING];
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toBeGreaterThan(0);
    for (const code of codes) expect(code).toBeLessThan(128);
  });
});
