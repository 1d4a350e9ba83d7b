import { describe, expect, it } from 'vitest';
import { Child, ServiceProcessError } from '../../../cli/launcher/child.js';
import { isFinalLine, isReadyLine } from '../../../lib/runtime/nats/service-process.js';

const READY = { kind: 'ready', service: 'guest', host: 'host-a', vms: ['vm1'], pid: 42 };

/** A child that prints `lines` on stdout, one every 20 ms, then stays up for `stayMs`. */
function printer(lines: readonly string[], stayMs = 0): Child {
  const script = `const l = ${JSON.stringify(lines)}; let i = 0; const t = setInterval(() => { if (i < l.length) console.log(l[i++]); else { clearInterval(t); setTimeout(() => {}, ${stayMs}); } }, 20);`;
  return new Child({ label: 'printer', args: ['-e', script], executable: process.execPath });
}

describe('Child: JSON lines on stdout', () => {
  it('takes the ready line by its parsed kind, not a line that merely contains its text', async () => {
    const decoy = JSON.stringify({ kind: 'log', msg: '"kind":"ready"' });
    const child = printer(['starting', decoy, JSON.stringify({ kind: 'ready', service: 'guest' }), JSON.stringify(READY)]);
    await expect(child.waitForJson(isReadyLine, 5_000, 'to start')).resolves.toEqual(READY);
    await child.exited(5_000);
  });

  it('fails with a ServiceProcessError when the child exits before its ready line', async () => {
    const child = printer([JSON.stringify({ kind: 'log', msg: '"kind":"ready"' })]);
    const ready = child.waitForJson(isReadyLine, 5_000, 'to start');
    await expect(ready).rejects.toBeInstanceOf(ServiceProcessError);
    await expect(ready).rejects.toThrow(/exited .* before managing to start/);
  });

  it('fails with a ServiceProcessError when the ready line does not come in time', async () => {
    const child = printer(['not yet'], 2_000);
    await expect(child.waitForJson(isReadyLine, 100, 'to start')).rejects.toBeInstanceOf(ServiceProcessError);
    child.kill('SIGKILL');
    await child.exited(5_000);
  });

  it('finds the last final line and skips lines that are not JSON', async () => {
    const first = { kind: 'final', service: 'client', host: null, reason: 'done', vms: [{ vmId: 'vm1', stats: { n: 1 }, shell: {} }] };
    const last = { ...first, vms: [{ vmId: 'vm1', stats: { n: 2 }, shell: {} }] };
    const child = printer([JSON.stringify(first), JSON.stringify(last), 'bye', JSON.stringify({ kind: 'final', vms: [{}] })]);
    await child.exited(5_000);
    expect(child.lastJson(isFinalLine)).toEqual(last);
  });
});

describe('stdout line guards', () => {
  it('accept only lines of their shape', () => {
    expect(isReadyLine(READY)).toBe(true);
    expect(isReadyLine({ ...READY, host: null })).toBe(true);
    expect(isReadyLine({ ...READY, pid: '42' })).toBe(false);
    expect(isReadyLine({ ...READY, vms: [1] })).toBe(false);
    expect(isReadyLine({ ...READY, kind: 'final' })).toBe(false);
    expect(isReadyLine(null)).toBe(false);
    expect(isReadyLine('{"kind":"ready"}')).toBe(false);
    expect(isFinalLine({ kind: 'final', vms: [{ vmId: 'vm1' }] })).toBe(true);
    expect(isFinalLine({ kind: 'final', vms: [{ id: 'vm1' }] })).toBe(false);
    expect(isFinalLine({ kind: 'final' })).toBe(false);
  });
});
