/**
 * The soak's short version (70 s), as `npm run soak` runs it for 10 minutes: 4
 * protected VMs (8 there) over a nats-server of its own, the primary host SIGKILLed
 * twice and brought back as a spare, the nats-server restarted once. Every
 * client's stream must end exact, every VM must still deliver at the end,
 * no service may die on its own, the auditor must find nothing and every
 * kill must be recovered (every VM protected again under a newer term).
 * The guests are small and lightly written (8 MiB, 100 pages/s at 2 Mbit/s
 * each) so that 17 processes fit two cores with room for the recoveries.
 * Needs `npm run build` first (npm test does it): it runs dist/bench/soak.js.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { skipWithoutNatsBinary } from './support/nats.js';

const DURATION_S = 70;
/**
 * Four VMs, where `npm run soak` runs eight: CI runs this beside the other integration tests on two cores. (Eight pass
 * here alone, 3 runs in 3, since the handover storm that lost every VM after the first kill was fixed: docs/soak.md.)
 */
const VMS = 4;
/**
 * A kill's recovery: the host back as a spare after 4 s, its processes
 * started, four base images sent. This is a liveness bound, not a speed
 * target (recovery times are `npm run soak`'s to measure, docs/soak.md):
 * measured alone 10–18 s over several days, 15–16 s beside the rest of the
 * integration suite, which missed the 20 s this was on busy minutes. Faults
 * stop a bound before the end: 70 s keeps them going until 45 s, so the NATS
 * restart fits after the second kill's host is back (at 34 s) and has had
 * its 8 s to connect, and the kill at 45 s does not come.
 */
const RECOVERY_BOUND_S = 25;
/** Start-up, the wait for protection, the clients' end and a slow stop on a loaded machine: a hang guard. */
const TIMEOUT_MS = 300_000;
/** A soak still running this long is killed, so that the test reports how it ended rather than vitest's timeout. */
const KILL_AFTER_MS = TIMEOUT_MS - 30_000;
/** Lines of the soak's stderr a failure shows, of its own and of the services'. */
const KEPT_LINES = 40;
/**
 * The failover services' lines (info level: each take-over, re-protection and restart seen, about 50 a run) a failure
 * shows in full: a kill not recovered is told by what the failover service did and did not do after it.
 */
const KEPT_FAILOVER_LINES = 400;

/** A checkpointer's counters a failure shows: how far its epochs and its backup got. */
const CHECKPOINTER_STATS_SHOWN = ['role', 'checkpoints', 'lastCommittedEpoch', 'resends', 'probes', 'barrierResends', 'staleAssignments', 'notPrimaryDrops'];
/** A host agent's counters a failure shows: the role changes it took, refused or stepped down for, and its lease. */
const AGENT_STATS_SHOWN = ['staleRoleChanges', 'roleChangesDeferred', 'roleChangesRefused', 'steppedDown', 'promotionsRefused', 'renewalsUnanswered', 'serviceDeaths', 'silencesWaitedOut'];
const pick = (o: Record<string, unknown>, keys: readonly string[]) => Object.fromEntries(keys.filter((k) => k in o).map((k) => [k, o[k]]));
/** A service's JSON log line without the fields every line has. */
function compactLogLine(line: string): string {
  const at = line.indexOf('{');
  try {
    const { level: _level, role: _role, pid: _pid, name: _name, msg: _msg, vm: _vm, host: _host, ...rest } = JSON.parse(line.slice(at)) as Record<string, unknown>;
    return `${line.slice(0, at)}${JSON.stringify(rest)}`;
  } catch {
    return line.slice(0, 400);
  }
}

interface SoakJson {
  checks: Record<string, boolean | null>;
  kills: { atS: number; host: string; recoveredAfterS: number | null }[];
  natsRestarts: number[];
  streams: { vmId: string; verified: boolean; bytesDelivered: number }[];
  auditViolations: number;
  auditorConnection: unknown;
  violations: { vmId: string; rule: string; host: string | null; detail: string; context: string[]; after: string[] }[];
  samples: { tS: number; protectedVms: number; rssMiBTotal: number }[];
  finalViews: { vmId: string; view: unknown; failover: Record<string, unknown> | null; checkpointers: { host: string; stats: Record<string, unknown> }[]; agents: { host: string; stats: Record<string, unknown> }[] }[];
}

const skip = skipWithoutNatsBinary('soak: the 70 s soak');
const out = mkdtempSync(join(tmpdir(), 'specula-soak-test-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe.skipIf(skip)(`soak, ${DURATION_S} s`, () => {
  it(`${VMS} VMs through two host kills and a NATS restart: every stream exact, every kill recovered, no violation`, { timeout: TIMEOUT_MS }, async () => {
    const args = ['dist/bench/soak.js', '--duration-s', String(DURATION_S), '--vms', String(VMS), '--rate-mbps', '2', '--memory-mib', '8', '--dirty-pages-per-s', '100', '--kill-every-s', '15', '--respawn-after-s', '4', '--nats-restart-every-s', '30', '--recovery-bound-s', String(RECOVERY_BOUND_S), '--quiet-tail-s', '10', '--out', out];
    // In a process group of its own: a hung soak is killed with the nats-server and service processes it started.
    // Services at info level: the failover services' decisions are what a failure is diagnosed from.
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: { ...process.env, SPECULA_LOG_LEVEL: 'info' } });
    // The soak's own lines (progress every 10 s, kills, restarts) and the services' warnings, the last of each.
    const soakLines: string[] = [];
    const serviceLines: string[] = [];
    const failoverLines: string[] = [];
    let partial = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        if (/"event":"failover\./.test(line)) failoverLines.push(line);
        else if (/^soak: \[/.test(line)) {
          // The services' warnings and errors (pino levels 40 and up), not their info lines.
          if (!/"level":30,/.test(line)) serviceLines.push(line);
        } else soakLines.push(line);
      }
      failoverLines.splice(0, Math.max(0, failoverLines.length - KEPT_FAILOVER_LINES));
      soakLines.splice(0, Math.max(0, soakLines.length - KEPT_LINES));
      serviceLines.splice(0, Math.max(0, serviceLines.length - KEPT_LINES));
    });
    let killed = false;
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      const timer = setTimeout(() => {
        killed = true;
        try {
          process.kill(-child.pid!, 'SIGKILL');
        } catch {
          child.kill('SIGKILL'); // the group is gone already: the soak alone, if it is still there
        }
      }, KILL_AFTER_MS);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('close', (exitCode, exitSignal) => {
        clearTimeout(timer);
        resolve({ code: exitCode, signal: exitSignal });
      });
    });
    const exit = `the soak exited with code ${code}${signal === null ? '' : `, signal ${signal}`}${killed ? ` (killed after ${KILL_AFTER_MS} ms)` : ''}`;
    const lastWords = `the soak said:\n${soakLines.join('\n')}\nthe services' last lines:\n${serviceLines.slice(-15).map((l) => l.slice(0, 400)).join('\n')}`;
    // 0: every check passed, 1: some failed (soak.json says which). Anything else, or no soak.json, is a crash or a kill.
    expect([0, 1], `${exit}\n${lastWords}`).toContain(code);
    expect(existsSync(join(out, 'soak.json')), `${exit} without writing soak.json\n${lastWords}`).toBe(true);
    const result = JSON.parse(readFileSync(join(out, 'soak.json'), 'utf8')) as SoakJson;
    const failed = Object.entries(result.checks).filter(([, ok]) => ok === false);
    const diagnosis = [
      `the soak said:\n${soakLines.join('\n')}`,
      `kills: ${JSON.stringify(result.kills.map((k) => ({ atS: Math.round(k.atS), host: k.host, recoveredAfterS: k.recoveredAfterS })))}; NATS restarts at ${JSON.stringify(result.natsRestarts.map(Math.round))} s`,
      `auditor: ${result.auditViolations} violations, connection ${JSON.stringify(result.auditorConnection)}`,
      ...result.violations.slice(0, 3).map((v) => `violation: ${JSON.stringify({ vmId: v.vmId, rule: v.rule, host: v.host, detail: v.detail })}\n  before: ${v.context.slice(-12).join('\n    ')}\n  after: ${v.after.slice(0, 12).join('\n    ')}`),
      `protected VMs per second: ${result.samples.map((x) => x.protectedVms).join(' ')}`,
      `at the end: ${result.finalViews.map((v) => JSON.stringify({ vmId: v.vmId, view: v.view, failover: v.failover, checkpointers: v.checkpointers.map((c) => ({ host: c.host, ...pick(c.stats, CHECKPOINTER_STATS_SHOWN) })), agents: v.agents.map((a) => ({ host: a.host, ...pick(a.stats, AGENT_STATS_SHOWN) })) })).join('\n')}`,
      `the failover services said:\n${failoverLines.map((l) => compactLogLine(l)).join('\n')}`,
      `the services' last lines:\n${serviceLines.slice(-15).map((l) => l.slice(0, 400)).join('\n')}`,
    ].join('\n');
    expect(failed, `failed checks\n${diagnosis}`).toEqual([]);
    expect(code, `${exit}\n${lastWords}`).toBe(0);
    expect(result.kills.length).toBe(2);
    expect(result.kills.every((k) => k.recoveredAfterS !== null)).toBe(true);
    expect(result.natsRestarts.length).toBe(1);
    expect(result.auditViolations).toBe(0);
    expect(result.streams).toHaveLength(VMS);
    for (const s of result.streams) {
      expect(s.verified).toBe(true);
      expect(s.bytesDelivered).toBeGreaterThan(0);
    }
    console.log(`soak: kills recovered after ${result.kills.map((k) => `${k.recoveredAfterS?.toFixed(1)} s`).join(', ')}; RSS ${Math.round(result.samples.at(-1)?.rssMiBTotal ?? 0)} MiB at the end`);
  });
});
