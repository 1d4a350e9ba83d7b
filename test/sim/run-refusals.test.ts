/**
 * `specula run` (and `experiment`, `health`, `service`, `up`, `status`,
 * `lease`, `vopr`, `trace`) refuse, before any work, what would fail or mean
 * nothing only after it: an output file it cannot write, a crash after the
 * run's end, a sample rate without the traces it samples, a port that is
 * none, a delay no timer keeps, a VM id no bus has, a flag the command would
 * ignore. Exit 2, the flag named, no stack.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../dist/cli/specula.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'specula-run-refusals-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const aFile = join(dir, 'a-file');
writeFileSync(aFile, '');
mkdirSync(join(dir, 'taken', 'experiment-goodput.svg'), { recursive: true });

const cli = (args: readonly string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('specula run refuses before running', () => {
  it.each([
    [['run', '--trace-out', join(dir, 'missing', 't.json')], '--trace-out', 'does not exist'],
    [['run', '--plot', join(aFile, 'x.svg')], '--plot', 'is not a folder'],
    [['run', '--plot', dir], '--plot', 'is a folder'],
    [['run', '--mode', 'spec', '--crash-primary-at-ms', '5000', '--duration-s', '1'], '--crash-primary-at-ms', "after the run's end"],
    [['run', '--trace-sample', '0.5'], '--trace-sample', 'not given'],
    [['run', '--trace-sample', '2', '--trace-out', join(dir, 't.json')], '--trace-sample', '<=1'],
    [['run', '--queue-packets', '0'], '--queue-packets', 'packets, at least 1 (1500 bytes each)'],
    [['run', '--queue-packets', '1.5'], '--queue-packets', 'a whole number of packets'],
    [['run', '--verbose'], '--verbose', 'the simulator has no processes'],
    [['run', '--seed', '1e20'], '--seed', 'from 0 to 4294967295'],
    [['run', '--bandwidth-mbps', '1e9'], '--bandwidth-mbps', 'at most 400000 (Mbit/s)'],
    [['experiment', '--out', join(aFile, 'sub'), '--modes', 'native'], '--out', 'a part of the path is a file'],
    [['health', '--port', '99999'], '--port', 'from 1 to 65535'],
    // Node fires a timer of 2^31 ms or more, or of 0, after 1 ms: a 30-day lifetime would end at once.
    [['service', 'failover', '--exit-after-s', '2592000'], '--exit-after-s', 'to 2147483647 ms'],
    [['service', 'failover', '--exit-after-s', '0'], '--exit-after-s', 'to 2147483647 ms'],
    [['service', 'failover', '--report-interval-ms', '3000000000'], '--report-interval-ms', 'to 2147483647 ms'],
    [['service', 'failover', '--report-interval-ms', '5'], '--report-interval-ms', 'to 2147483647 ms'],
    [['up', '--exit-after-s', '2592000'], '--exit-after-s', 'to 2147483647 ms'],
    // A folder that takes no new file though its write bit says otherwise (to root): opened as the write would open it.
    [['run', '--plot', '/sys/specula-refusal.svg'], '--plot', 'cannot be written'],
    // Every file the sweep will write, checked before the sweep: before, the run ended in a stack after every point.
    [['experiment', '--out', join(dir, 'taken'), '--modes', 'native', '--epochs-ms', '25'], `--out ${join(dir, 'taken', 'experiment-goodput.svg')}`, 'is a folder'],
    [['status', '--vm', 'a.b'], '--vm', 'subject token'],
    [['lease', 'forget', 'a.b'], "lease forget 'a.b'", 'subject token'],
    [['health', '--port', '80', '--host', 'no such host!'], '--host', 'not a host name'],
    [['health', '--port', '80', '--host', 'a/b'], '--host', 'not a host name'],
    [['vopr', '--seeds', '1', '--events', 'heartbeat'], '--events', 'only with --replay'],
    [['vopr', '--replay', '3', '--seeds', '5'], '--seeds', 'for a run of seeds'],
    [['trace', aFile, '--seq', '-1'], '--seq', 'not a whole number'],
    [['help', 'frob'], "'frob'", 'unknown command'],
    // The failover service watches the configured hosts alone: a typo in --host would wait for a role forever.
    [['service', 'checkpointer', '--mode', 'spec', '--host', 'host-z'], '--host host-z', 'not a host of vm1'],
  ])('%j: exit 2, naming %s', (args, flag, why) => {
    const duration = args.includes('--duration-s') ? args[args.indexOf('--duration-s') + 1]! : '0.2';
    const r = cli(['run', 'experiment'].includes(args[0]!) ? [...args, '--duration-s', duration] : args);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(flag);
    expect(r.stderr).toContain(why);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('leaves no trace file behind a refused run', () => {
    cli(['run', '--trace-sample', '2', '--trace-out', join(dir, 'never.json')]);
    expect(existsSync(join(dir, 'never.json'))).toBe(false);
  });
});
