/**
 * A hostile publisher on a live bus: while a spec-mode VM runs as separate
 * processes over NATS (runOnNats), a connection with access to every subject
 * copies the messages between services and publishes forgeries of them
 * (sim/hostile-bus.ts: one field changed) and, now and then, random bytes on
 * their subjects. Every service process must stay up to the end (runOnNats
 * fails on a process that exits early), and the services count what they
 * refused: undecodable payloads in their shells, foreign assignments and
 * refused promotions, heartbeats and messages naming another host or VM,
 * forged checkpoint epochs in the backup.
 * test/sim/hostile-bus.test.ts holds the same over many seeds in the simulator.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { decodeBatch } from '../../lib/codec/batch.js';
import { decode, encode } from '../../lib/codec/codec.js';
import type { ServiceReport, WireMessage } from '../../lib/codec/messages.js';
import { DecodeError } from '../../lib/errors.js';
import { messageTypeOf } from '../../lib/codec/subjects.js';
import { runConfigSchema } from '../../lib/config/run-config.js';
import { Rng } from '../../lib/rng.js';
import { HEADER_BATCH } from '../../lib/runtime/nats/shell.js';
import { connectNats } from '../../lib/runtime/nats/connect.js';
import { runOnNats } from '../../cli/launcher/nats-run.js';
import { HostileBus } from '../../sim/hostile-bus.js';
import { withNats } from './support/nats.js';

/** Share of the observed messages between services that get a forged copy. */
const FORGED_SHARE = 0.05;
/** Share of the forgeries sent as random bytes instead (a payload no decoder takes). */
const GARBAGE_SHARE = 0.2;
/** Acknowledgements forged to name another VM: each must be refused (counted in otherVmMessages). */
const OTHER_VM_FORGERIES = 3;
/** Forgeries sent at most: a bound on the hostile publisher's own work. */
const MAX_FORGERIES = 5_000;
const RUN_TIMEOUT_MS = 90_000;
/** Subjects left alone: the client's wire (a forged segment is the application lying) and what observers read. */
const UNTOUCHED = /\.(wire\.(out|in)|report|failover)$/;

const nats = await withNats();
afterAll(async () => {
  await nats?.stop();
});

const config = runConfigSchema.parse({ mode: 'spec', vmId: 'hostile', seed: 1, durationS: 5, epochMs: 25, guest: { memoryBytes: 16 * 1024 * 1024 }, link: { bandwidthBitsPerSec: 100e6, rttMs: 2 }, workload: { kind: 'bulk', totalBytes: 0 } });

/** Sum of a stats field over the newest report of each service process. */
function total(reports: ReadonlyMap<string, Record<string, unknown>>, pick: (stats: Record<string, unknown>) => number): number {
  let n = 0;
  for (const stats of reports.values()) n += pick(stats);
  return n;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

/**
 * Decoded messages refused as forged, by the counters only a forgery moves: assignments no agent sends, promotions
 * the protocol never sends, heartbeats naming another host or VM than their subject's, messages naming another VM.
 * (Stale terms and epochs are left out: a failover makes those too.)
 */
const forgeriesRefused = (s: Record<string, unknown>): number =>
  num(s.foreignAssignments) + num(s.assignmentsRefused) + num(s.foreignHeartbeats) + num(s.otherVmMessages);

describe.skipIf(nats === null)('a hostile publisher on the bus of a spec-mode VM over NATS (runOnNats)', () => {
  it('forges copies of the messages between services: every process stays up, and the services count what they refused', { timeout: RUN_TIMEOUT_MS + 30_000 }, async () => {
    const url = nats!.url;
    const hostileConnection = await connectNats({ servers: url, name: 'hostile-publisher' });
    const rng = new Rng(7);
    const forger = new HostileBus(rng.fork('forge'), ['host-a', 'host-b', 'host-c'], 1);
    let forged = 0;
    let garbage = 0;
    let otherVmForgeries = 0;
    const reports = new Map<string, Record<string, unknown>>();
    // The run's VM id has a per-run suffix: every subject of any VM named hostile-….
    hostileConnection.subscribe('specula.>', {
      callback: (_err, m) => {
        if (!m.subject.startsWith(`specula.${config.vmId}-`)) return;
        if (m.subject.endsWith('.report')) {
          const r = decode('serviceReport', m.data) as ServiceReport;
          reports.set(`${r.host}/${r.service}/${r.incarnation}`, JSON.parse(r.statsJson) as Record<string, unknown>);
          return;
        }
        // A few forgeries of a known kind besides the random ones: the first acknowledgements, copied to name another
        // VM, which the primary's checkpointer must refuse and count, so that a refusal is asserted on every run.
        if (otherVmForgeries < OTHER_VM_FORGERIES && messageTypeOf(m.subject) === 'checkpointAck') {
          const ack = decode('checkpointAck', m.headers?.get(HEADER_BATCH) ? decodeBatch(m.data)[0]! : m.data);
          if (ack.type === 'checkpointAck' && ack.vmId !== 'another-vm') {
            hostileConnection.publish(m.subject, encode({ ...ack, vmId: 'another-vm' }));
            otherVmForgeries++;
          }
          return;
        }
        // The random forgeries start once those are out: one of them (a forged barrier or assignment) can stop the
        // checkpoints before the first acknowledgement, and then no refusal of a known kind would be asserted (a CI run).
        if (otherVmForgeries < OTHER_VM_FORGERIES) return;
        if (UNTOUCHED.test(m.subject) || forged + garbage >= MAX_FORGERIES || !rng.chance(FORGED_SHARE)) return;
        const type = messageTypeOf(m.subject);
        if (type === 'segment') return;
        if (rng.chance(GARBAGE_SHARE)) {
          const bytes = new Uint8Array(1 + rng.int(64));
          for (let i = 0; i < bytes.length; i++) bytes[i] = rng.int(256);
          hostileConnection.publish(m.subject, bytes);
          garbage++;
          return;
        }
        let original: WireMessage;
        try {
          const parts = m.headers?.get(HEADER_BATCH) ? decodeBatch(m.data) : [m.data];
          original = decode(type, parts[rng.int(parts.length)]!);
        } catch (err) {
          if (err instanceof DecodeError) return; // one of its own random payloads, heard back
          throw err;
        }
        hostileConnection.publish(m.subject, encode(forger.tamper(m.subject, original)));
        forged++;
      },
    });
    await hostileConnection.flush();
    try {
      // Throws if a service process exits before the run is over.
      const [r] = await runOnNats(config, { natsUrl: url });
      await new Promise((resolve) => setTimeout(resolve, 500)); // the final reports
      console.log(
        `nats-hostile: ${forged} forgeries and ${garbage} random payloads; goodput ${(r!.goodputBitsPerSec / 1e6).toFixed(2)} Mbit/s, verified ${r!.streamVerified}, failovers ${r!.failovers}, ` +
          `audit findings (forged commits, acks and permits are believed) ${r!.auditViolations}; refused: ` +
          `decode errors ${total(reports, (s) => num((s.shell as Record<string, unknown> | undefined)?.decodeErrors))}, foreign assignments ${total(reports, (s) => num(s.foreignAssignments))}, ` +
          `promotions and assignments ${total(reports, (s) => num(s.assignmentsRefused))}, foreign heartbeats ${total(reports, (s) => num(s.foreignHeartbeats))}, ` +
          `other VMs' messages ${total(reports, (s) => num(s.otherVmMessages))}`,
      );
      expect(forged).toBeGreaterThan(50);
      expect(garbage).toBeGreaterThan(10);
      // Random payloads on the services' subjects: each counted by the shell that got it, none fatal.
      expect(total(reports, (s) => num((s.shell as Record<string, unknown> | undefined)?.decodeErrors))).toBeGreaterThan(0);
      // Forgeries that decode, refused by the services they reached: the acknowledgements naming another VM at least.
      expect(otherVmForgeries).toBe(OTHER_VM_FORGERIES);
      expect(total(reports, forgeriesRefused)).toBeGreaterThanOrEqual(OTHER_VM_FORGERIES);
      // Whether bytes still flow is not asked: a forged barrier or commit far ahead is believed (no signatures), and can stall the VM.
    } finally {
      await hostileConnection.close();
    }
  });
});
