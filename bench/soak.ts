import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { num } from '../cli/run-options.js';
import { vmConfigs } from '../cli/commands/service.js';
import { renderSvg } from '../cli/experiment/plot.js';
import { prepareOutputFolder } from '../cli/validate.js';
import { ConfigError } from '../lib/errors.js';
import { Fleet } from '../cli/launcher/fleet.js';
import { LAYOUTS, plannedProcesses, type Layout } from '../cli/launcher/plan.js';
import { ReportCollector } from '../cli/launcher/reports.js';
import { withNatsTiming } from '../lib/config/nats-profile.js';
import { runConfigSchema, type RunConfig } from '../lib/config/run-config.js';
import { wallClock } from '../lib/runtime/nats/clock.js';
import { connectNats } from '../lib/runtime/nats/connect.js';
import type { FailoverStatus } from '../lib/codec/messages.js';
import type { ClientReport } from '../services/client/main.js';
import { BusAuditor } from '../services/auditor/main.js';
import type { Violation } from '../services/auditor/violations.js';
import { RestartableNatsServer } from './soak/nats-server.js';
import { soakSpec, type SoakEvent } from './soak/plot.js';
import { rssSlopesMiBPerMin, SoakSampler, troughSlopesMiBPerMin, type RssSeries } from './soak/sampler.js';

/**
 * `npm run soak`: protected VMs over a local nats-server for minutes, with
 * the primary host SIGKILLed and brought back as a spare every so often and
 * the nats-server restarted. Reports goodput, failovers, memory and
 * event-loop lag over time, whether every client's stream is exact, and the
 * output-commit auditor's findings; writes bench/results/soak.json and an
 * SVG. Exit code 1 when a stream is not exact, the auditor finds anything, a
 * kill is not recovered, or (when the quiet tail is long enough to judge:
 * `npm run soak:memory`) a process's memory grows faster than the bound
 * after warm-up, on its troughs.
 */
interface SoakFlags {
  durationS: number;
  vms: number;
  rateMbps: number;
  killEveryS: number;
  respawnAfterS: number;
  natsRestartEveryS: number;
  natsDownMs: number;
  quietTailS: number;
  recoveryBoundS: number;
  memoryMib: number;
  dirtyPagesPerS: number;
  specBufferMib: number;
  layout: Layout;
  out: string;
}

const flags = new Command('soak')
  .option('--duration-s <n>', 'how long the clients transfer', num, 600)
  .option('--vms <n>', 'protected VMs at once', num, 8)
  .option('--rate-mbps <n>', 'client link rate of each VM', num, 10)
  .option('--kill-every-s <n>', 'SIGKILL the primary host this often (0: never); a kill waits until every VM is protected', num, 90)
  .option('--respawn-after-s <n>', 'start a killed host again this long after, as a new spare', num, 10)
  .option('--nats-restart-every-s <n>', 'restart the nats-server this often (0: never)', num, 150)
  .option('--nats-down-ms <n>', 'how long the nats-server stays down at a restart', num, 1_000)
  .option('--quiet-tail-s <n>', 'no fault in this last part of the run; memory growth is measured over its last two thirds', num, 180)
  .option('--recovery-bound-s <n>', 'a kill is recovered when every VM is protected again under a newer term within this long; no fault comes later than this before the end', num, 30)
  // Eight guests, their standbys and checkpoints share a laptop's two cores: a small, lightly written guest each.
  .option('--memory-mib <n>', 'guest memory of each VM', num, 16)
  .option('--dirty-pages-per-s <n>', "pages each guest's application dirties per second", num, 500)
  .option('--spec-buffer-mib <n>', 'speculative buffer of each VM (a bulk client slower than the guest keeps it full: a new backup gets all of it)', num, 16)
  .addOption(new Option('--layout <layout>', "service: every service its own process; host: each host's data path in one process, its agent apart").choices(LAYOUTS).default('service'))
  .option('--out <dir>', 'where soak.json and soak.svg go', 'bench/results')
  .parse()
  .opts<SoakFlags>();

/** RSS growth allowed after warm-up, MiB per minute: under 1 MiB/min. */
const RSS_SLOPE_MAX_MIB_PER_MIN = 1;
/**
 * Growth is judged on the troughs of each process's RSS (troughSlopesMiBPerMin): stretches this long, each holding
 * a whole tooth of the sawtooth a Node process's memory draws (about 100 s here), and at least this many of them in
 * the measured part of the quiet tail. A shorter tail is not judged: no line through a part of a sawtooth tells a
 * 1 MiB/min leak from where the window fell.
 */
const RSS_STRETCH_S = 150;
const RSS_MIN_STRETCHES = 4;
/**
 * A process's memory is judged from this long after its start: in the 25-minute run, processes started again after
 * a kill levelled off 7–8 minutes later (their troughs then flat within 0.4 MiB/min); before, they still climb
 * (docs/soak.md has the sweep).
 */
const RSS_WARM_UP_S = 450;
/** Every VM must deliver in this last share of the run: the system is still alive at the end. */
const LIVE_TAIL_SHARE = 0.2;
const SAMPLE_EVERY_MS = 1_000;
/**
 * The nats-server is not restarted while a restarted host starts: not until every service it ran reports again as a new
 * process, and at least this long after its start (its processes connect at their own pace; one that finds no server
 * at start-up exits, as it should). A fixed 8 s guard was too short on a loaded machine: a host agent still starting
 * lost its server to the restart and exited.
 */
const STARTUP_GUARD_S = 8;
/** A host whose services never all report again (one died at start) stops guarding the restart after this long. */
const STARTUP_GUARD_MAX_S = 45;
/** The services report this often (as `specula run --runtime nats`): a killed process's last counters are at most this old. */
const REPORT_INTERVAL_MS = 250;
const PROTECTION_WAIT_MS = 120_000;
/** Beyond the transfer: the clients' end, the last reports, a slow stop. */
const GRACE_S = 90;
/** soak.json keeps this many of the auditor's findings in full. */
const MAX_VIOLATIONS_KEPT = 50;
/** Control messages kept after each finding: a cause that came after its effect shows there. */
const FOLLOWING_KEPT = 24;

interface KillRecord {
  readonly atS: number;
  readonly host: string;
  readonly processes: number;
  /** How long past its schedule the kill came: it waits for every VM to be protected. */
  readonly deferredS: number;
  /** When every VM the kill hit was protected again; null: not within flags.recoveryBoundS. */
  recoveredAfterS: number | null;
  /** Per VM: what the killed host was to it, and the failover's term and re-protections then. */
  readonly before: readonly { readonly role: 'primary' | 'backup' | 'none'; readonly term: number; readonly reprotections: number }[];
}

/**
 * A VM is over a kill when its failover service protects it again: after a
 * take-over (the killed host was its primary: a newer term), or after a
 * re-protection (its backup: the term stays). A VM the host was a spare to
 * was not hit.
 */
function recoveredFrom(before: KillRecord['before'][number], view: FailoverStatus | undefined, reprotections: number): boolean {
  if (before.role === 'none') return true;
  if (view === undefined || view.state !== 'protected') return false;
  return view.term > before.term || (before.role === 'backup' && reprotections > before.reprotections);
}

/** Per VM and service, the process incarnations that reported from `host` so far. */
function incarnationsOf(collector: ReportCollector, vmIds: readonly string[], host: string): Map<string, Set<number>> {
  const seen = new Map<string, Set<number>>();
  for (const vm of vmIds) {
    for (const { report } of collector.reports(vm).filter((e) => e.report.host === host)) {
      const key = `${vm}/${report.service}`;
      seen.set(key, (seen.get(key) ?? new Set()).add(report.incarnation));
    }
  }
  return seen;
}

/** Every service that reported from `host` before its restart reports again, as a new process. */
function reportedAgain(collector: ReportCollector, vmIds: readonly string[], host: string, before: Map<string, Set<number>>): boolean {
  const now = incarnationsOf(collector, vmIds, host);
  return [...before].every(([key, old]) => [...(now.get(key) ?? [])].some((incarnation) => !old.has(incarnation)));
}

/** A series per process, one point in ten (one per 10 s), rounded to whole seconds and MiB. */
const everyTenth = (series: RssSeries) => Object.fromEntries([...series].map(([key, points]) => [key, points.filter((_, i) => i % 10 === 0).map(([t, m]) => [Math.round(t), Math.round(m)])]));

const log = (line: string) => process.stderr.write(`soak: ${line}\n`);

async function main(): Promise<number> {
  // Made and checked before the run: a folder that cannot be written would otherwise lose ten minutes of results.
  let outDir: string;
  try {
    outDir = prepareOutputFolder('--out', flags.out);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`soak: ${err.message}\n`);
    return 2;
  }
  const server = await RestartableNatsServer.start();
  const nc = await connectNats({ servers: server.url, name: 'specula-soak', maxReconnectAttempts: -1, reconnectTimeWaitMs: 200 });
  const config: RunConfig = withNatsTiming(
    runConfigSchema.parse({
      mode: 'spec',
      epochMs: 25,
      vmId: `soak-${randomUUID().slice(0, 8)}`,
      durationS: flags.durationS,
      link: { bandwidthBitsPerSec: flags.rateMbps * 1e6, rttMs: 2 },
      guest: { memoryBytes: flags.memoryMib * 1024 * 1024, appDirtyPagesPerSec: flags.dirtyPagesPerS },
      buffers: { specBufferBytes: flags.specBufferMib * 1024 * 1024 },
    }),
  );
  const configs = vmConfigs(config, flags.vms);
  const vmIds = configs.map((c) => c.vmId);
  const collector = new ReportCollector(nc, vmIds);
  const violations: (Violation & { vmId: string; context: readonly string[]; segments: readonly string[]; after: readonly string[] })[] = [];
  let violationCount = 0;
  const auditors: (BusAuditor | null)[] = [];
  for (const c of configs) {
    const auditorOf = () => auditors[configs.indexOf(c)] ?? null;
    auditors.push(
      BusAuditor.forVm(nc, c, (v) => {
        violationCount++;
        // The first ones, with their context, are what a reader needs; the rest are counted.
        if (violations.length < MAX_VIOLATIONS_KEPT) violations.push({ vmId: c.vmId, ...v, context: auditorOf()?.recent() ?? [], segments: auditorOf()?.recentSegments() ?? [], after: auditorOf()?.following(FOLLOWING_KEPT) ?? [] });
      }),
    );
  }
  await nc.flush();
  // The auditors see the bus through this connection: a gap in it (a slow consumer cut off, not a planned restart) is reported.
  const auditorDisconnects: number[] = [];
  let soakStartedMs = performance.now();
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') auditorDisconnects.push((performance.now() - soakStartedMs) / 1000);
    }
  })();
  const fleet = await Fleet.start({ natsUrl: server.url, config, vms: flags.vms, layout: flags.layout, exitAfterS: flags.durationS + GRACE_S + PROTECTION_WAIT_MS / 1000, reportIntervalMs: REPORT_INTERVAL_MS, onLog: (line) => log(line) });
  const kills: KillRecord[] = [];
  const events: SoakEvent[] = [];
  const sampler = new SoakSampler(collector, vmIds, 3 * SAMPLE_EVERY_MS);
  const clock = wallClock();
  try {
    log(`${flags.vms} VMs over ${server.url}: waiting for every VM to be protected`);
    if (!(await collector.waitForState(vmIds, 'protected', PROTECTION_WAIT_MS))) throw new Error(`the VMs were not protected within ${PROTECTION_WAIT_MS} ms`);
    const client = await fleet.add({ services: ['client'], host: null });
    const t0 = performance.now();
    soakStartedMs = t0;
    const elapsedS = () => (performance.now() - t0) / 1000;
    let clientDone = false;
    const clientExit = client.exited((flags.durationS + GRACE_S) * 1000).finally(() => (clientDone = true));
    let nextKillS = flags.killEveryS > 0 ? flags.killEveryS : Infinity;
    let killDeferred = false;
    let nextRestartS = flags.natsRestartEveryS > 0 ? flags.natsRestartEveryS : Infinity;
    const respawns: { atS: number; host: string }[] = [];
    let starting: { host: string; atS: number; before: Map<string, Set<number>> } | null = null;
    // Faults end early enough for the last kill to be recovered, and for a quiet tail in which memory is measured.
    const lastFaultS = flags.durationS - Math.max(flags.recoveryBoundS, flags.quietTailS);
    const reprotectionsOf = (vm: string) => Number(collector.reports(vm, 'failover')[0]?.stats.reprotections ?? 0);
    while (!clientDone && elapsedS() < flags.durationS + GRACE_S) {
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_EVERY_MS));
      const tS = elapsedS();
      const s = sampler.sample(tS, clock.toUnixUs(clock.nowUs()));
      for (const k of kills) {
        if (k.recoveredAfterS !== null) continue;
        const recovered = vmIds.every((vm, i) => recoveredFrom(k.before[i]!, collector.view(vm), reprotectionsOf(vm)));
        if (recovered) k.recoveredAfterS = tS - k.atS;
      }
      if (Math.round(tS) % 10 === 0) log(`${tS.toFixed(0)} s: ${s.goodputMbps.toFixed(1)} Mbit/s, ${s.protectedVms}/${vmIds.length} protected, RSS ${s.rssMiBTotal.toFixed(0)} MiB, lag ≤ ${s.lagMsMax.toFixed(0)} ms`);
      for (const r of respawns.filter((x) => x.atS <= tS)) {
        respawns.splice(respawns.indexOf(r), 1);
        starting = { host: r.host, atS: tS, before: incarnationsOf(collector, vmIds, r.host) };
        for (const plan of plannedProcesses(config, fleet.options.layout).filter((p) => p.host === r.host)) fleet.spawn(plan);
        log(`${r.host} started again`);
      }
      if (starting !== null && tS - starting.atS >= STARTUP_GUARD_S && (reportedAgain(collector, vmIds, starting.host, starting.before) || tS - starting.atS >= STARTUP_GUARD_MAX_S)) starting = null;
      // One failure at a time, the fault model of any primary-backup pair: a kill waits for the last one's recovery and
      // for every VM to be protected. Killing an unprotected VM's primary loses the VM by design, and every kill after
      // it finds nothing to recover: a recovery slower than the kill interval on a loaded machine failed so (docs/soak.md).
      const everyVmProtected = vmIds.every((vm) => collector.view(vm)?.state === 'protected');
      const lastKillRecovered = kills.every((k) => k.recoveredAfterS !== null);
      if (tS >= nextKillS && tS < lastFaultS && !(everyVmProtected && lastKillRecovered)) {
        if (!killDeferred) log(`kill deferred: ${vmIds.filter((vm) => collector.view(vm)?.state === 'protected').length}/${vmIds.length} VMs protected${lastKillRecovered ? '' : ', the last kill not recovered yet'}`);
        killDeferred = true;
      }
      if (tS >= nextKillS && tS < lastFaultS && everyVmProtected && lastKillRecovered) {
        killDeferred = false;
        const deferredS = tS - nextKillS;
        nextKillS = tS + flags.killEveryS;
        const host = collector.view(vmIds[0]!)?.primaryHost ?? config.hosts.primary;
        const before = vmIds.map((vm) => {
          const view = collector.view(vm);
          const role = view?.primaryHost === host ? 'primary' : view?.backupHost === host ? 'backup' : 'none';
          return { role, term: view?.term ?? 0, reprotections: reprotectionsOf(vm) } as const;
        });
        fleet.markKilled(host);
        const processes = fleet.killHost(host, 'SIGKILL');
        kills.push({ atS: tS, host, processes, deferredS, recoveredAfterS: null, before });
        events.push({ tS, kind: 'kill', label: host });
        respawns.push({ atS: tS + flags.respawnAfterS, host });
        log(`SIGKILL ${host} (${processes} processes)`);
      }
      // Not while a host starts: a service that finds no server at start-up exits, as it should (an operator restarts it).
      const hostStarting = respawns.length > 0 || starting !== null;
      if (tS >= nextRestartS && !hostStarting && tS < lastFaultS) {
        nextRestartS += flags.natsRestartEveryS;
        events.push({ tS, kind: 'nats-restart', label: 'nats-server' });
        log('restarting the nats-server');
        await server.restart(flags.natsDownMs);
      }
    }
    await clientExit.catch(() => undefined);
    const unexpectedExits = fleet.unexpectedExits().map((e) => e.message);
    await fleet.stop();
    await nc.flush();
    await new Promise((resolve) => setTimeout(resolve, 500));
    for (const a of auditors) a?.flush();
    const streams = vmIds.map((vm) => {
      const c = collector.reports(vm, 'client')[0]?.stats as unknown as ClientReport | undefined;
      const bins = c?.deliveredPerBin ?? [];
      const tailBytes = bins.slice(Math.floor(bins.length * (1 - LIVE_TAIL_SHARE))).reduce((a, b) => a + b, 0);
      // The client's last report must be of the run's end: one from before a client lost the bus says nothing of the end.
      const reportEndS = (c?.endUs ?? 0) / 1e6;
      const fresh = reportEndS >= flags.durationS * (1 - LIVE_TAIL_SHARE);
      return { vmId: vm, connected: c?.connected ?? false, verified: c?.streamVerified ?? false, bytesDelivered: c?.bytesDelivered ?? 0, tailBytes, reportEndS, fresh, firstMismatchOffset: c?.firstMismatchOffset ?? null };
    });
    // The last two thirds of the quiet tail (the first lets the last roles take their memory), for processes that lived
    // through it (one sample a second; a few may be stale).
    const measuredS = (flags.quietTailS * 2) / 3;
    const slopes = rssSlopesMiBPerMin(sampler.rss, flags.durationS - measuredS, Math.floor(measuredS * 0.8));
    const troughSlopes = troughSlopesMiBPerMin(sampler.rss, flags.durationS - measuredS, RSS_STRETCH_S, RSS_MIN_STRETCHES, RSS_WARM_UP_S);
    const worstSlope = Math.max(0, ...troughSlopes.values());
    const rssJudged = measuredS >= RSS_MIN_STRETCHES * RSS_STRETCH_S && troughSlopes.size > 0;
    const checks = {
      everyStreamExact: streams.every((s) => s.fresh && s.connected && s.verified),
      everyVmDeliveringAtTheEnd: streams.every((s) => s.fresh && s.tailBytes > 0),
      noProcessDiedOnItsOwn: unexpectedExits.length === 0,
      noAuditViolation: violationCount === 0,
      // Zero violations from an auditor that saw nothing would prove nothing.
      auditSawTheBus: auditors.every((a) => a === null || a.incompleteness === null),
      everyKillRecovered: kills.every((k) => k.recoveredAfterS !== null && k.recoveredAfterS <= flags.recoveryBoundS),
      rssGrowthBounded: rssJudged ? worstSlope < RSS_SLOPE_MAX_MIB_PER_MIN : null,
    };
    const result = {
      machine: { node: process.version, cores: (await import('node:os')).cpus().length },
      flags,
      checks,
      kills,
      natsRestarts: events.filter((e) => e.kind === 'nats-restart').map((e) => e.tS),
      streams,
      unexpectedExits,
      auditViolations: violationCount,
      // Disconnects of the auditors' connection (s since the clients started; a NATS restart makes one each) and the
      // server's count of slow consumers it cut off: a violation found after a gap may be a message the auditor missed.
      // Guest bytes the auditors never saw emitted (messages published while their connection was down) and the
      // releases of such bytes, judged by their segment's epoch alone.
      auditorConnection: {
        disconnectsAtS: auditorDisconnects,
        serverSlowConsumers: await server.slowConsumers().catch(() => null),
        unseenGuestBytes: auditors.reduce((n, a) => n + (a?.auditor.unseenGuestBytes ?? 0), 0),
        releasesOfUnseenBytes: auditors.reduce((n, a) => n + (a?.auditor.stats.releasesOfUnseenBytes ?? 0), 0),
        // After each reconnect: releases not judged until the primary's next commit, and those commits, taken as made.
        gaps: auditors.reduce((n, a) => n + (a?.auditor.stats.gaps ?? 0), 0),
        releasesUnjudged: auditors.reduce((n, a) => n + (a?.auditor.stats.releasesUnjudged ?? 0), 0),
        commitsTrusted: auditors.reduce((n, a) => n + (a?.auditor.stats.commitsTrusted ?? 0), 0),
        // Releases whose permit was not judged: after a reconnect, no permit of their host seen again yet; or a permit
        // lost on the way to the auditor alone (a number skipped) could cover them.
        permitsUnjudged: auditors.reduce((n, a) => n + (a?.auditor.stats.permitsUnjudged ?? 0), 0),
        permitsMissed: auditors.reduce((n, a) => n + (a?.auditor.stats.permitsMissed ?? 0), 0),
      },
      // Messages naming another VM that checkpointers and guests dropped (latest reports of the processes alive at the end).
      otherVmMessages: Object.fromEntries((['checkpointer', 'guest'] as const).map((service) => [service, vmIds.reduce((n, vm) => n + collector.reports(vm, service).reduce((m, r) => m + Number(r.stats.otherVmMessages ?? 0), 0), 0)])),
      // Each VM's failover view and counters at the end, and of the checkpointers alive then: where an unrecovered kill stopped.
      finalViews: vmIds.map((vm) => ({ vmId: vm, view: collector.view(vm) ?? null, failover: collector.reports(vm, 'failover')[0]?.stats ?? null, checkpointers: collector.reports(vm, 'checkpointer').map((r) => ({ host: r.report.host, stats: r.stats })), agents: collector.reports(vm, 'host-agent').map((r) => ({ host: r.report.host, stats: r.stats })), ackers: collector.reports(vm, 'acker').map((r) => ({ host: r.report.host, stats: r.stats })) })),
      firstViolation: violations[0] ?? null,
      violations,
      // Judged on troughs; the straight line through every reading is there to compare (it reads the sawtooth).
      rssSlopeMiBPerMin: { worst: worstSlope, judged: rssJudged, judgedOn: 'troughs', stretchS: RSS_STRETCH_S, warmUpS: RSS_WARM_UP_S, perProcess: Object.fromEntries(troughSlopes), linePerProcess: Object.fromEntries(slopes) },
      // Every process's RSS, MiB, one point per 10 s: where the memory went.
      rssMiBPerProcess: everyTenth(sampler.rss),
      heapUsedMiBPerProcess: everyTenth(sampler.heap),
      samples: sampler.samples,
    };
    writeFileSync(join(outDir, 'soak.json'), JSON.stringify(result, null, 2) + '\n');
    writeFileSync(join(outDir, 'soak.svg'), await renderSvg(soakSpec(sampler.samples, events, `soak: ${flags.vms} VMs (spec, ${flags.rateMbps} Mbit/s each), ${kills.length} host kills, ${server.restarts} NATS restarts`)));
    const failed = Object.entries(checks).filter(([, ok]) => ok === false).map(([name]) => name);
    process.stdout.write(`${JSON.stringify({ checks, kills: kills.map((k) => ({ atS: Math.round(k.atS), host: k.host, recoveredAfterS: k.recoveredAfterS })), natsRestarts: server.restarts, streams: streams.filter((s) => !s.verified).length === 0 ? 'all exact' : streams, rssWorstSlopeMiBPerMin: Number(worstSlope.toFixed(3)) })}\n`);
    if (failed.length > 0) log(`FAILED: ${failed.join(', ')}`);
    return failed.length === 0 ? 0 : 1;
  } finally {
    await fleet.stop();
    collector.close();
    for (const a of auditors) a?.close();
    await nc.close().catch(() => undefined);
    await server.stop();
  }
}

process.exitCode = await main();
