import { describe, expect, it } from 'vitest';
import { BUS_SUBJECTS, type BusSubject } from '../../sim/bus-faults.js';
import { buildWorld, primaryHostOf, runWorld } from '../../sim/world.js';
import { config } from '../support/run.js';

/** 10 ms bins of the client's delivery timeline. */
const BIN_MS = 10;
const FAULT = { fromMs: 500, toMs: 1500, dropRate: 0.1, duplicateRate: 0.1, delayRate: 0.3, maxDelayUs: 3_000 } as const;
/**
 * Delivery is back this long after the faults stop: a backed-off TCP
 * retransmission timer, then CUBIC's regrowth. The timeouts during the faults
 * leave remus's guest a W_max of about five segments, and at an epoch-long RTT
 * (20 ms) CUBIC climbs back from there along its TCP-friendly line, not by
 * doubling: at 100 Mbit/s remus delivers a third of its pre-fault rate 1.5 s
 * after the faults and about half (0.49) in the half second after 2 s.
 */
const RECOVERY_MS = 2_000;
/** The share of the pre-fault rate owed in the half second after RECOVERY_MS. */
const RECOVERED_SHARE = 0.4;

function run(mode: 'remus' | 'spec', subjects: readonly BusSubject[]) {
  const world = buildWorld(config({ mode, seed: 11, epochMs: 20, durationS: 4, link: { bandwidthBitsPerSec: 100e6, rttMs: 2 }, guest: { memoryBytes: 8 * 1024 * 1024 } }));
  runWorld(world, undefined, [{ kind: 'bus', ...FAULT, subjects }]); // the auditor checks output commit and one primary on every packet
  const bins = world.client.stats.deliveredPerBin;
  const sum = (fromMs: number, toMs: number) => bins.slice(fromMs / BIN_MS, toMs / BIN_MS).reduce((a, b) => a + b, 0);
  return { world, before: sum(0, FAULT.fromMs), after: sum(FAULT.toMs + RECOVERY_MS, FAULT.toMs + RECOVERY_MS + 500) };
}

describe('bus faults between services: loss, duplication and reordering', () => {
  for (const mode of ['remus', 'spec'] as const) {
    it(`keep the stream exactly-once and recover between the services (${mode})`, () => {
      const { world, before, after } = run(mode, BUS_SUBJECTS.filter((x) => x !== 'heartbeat' && x !== 'control'));
      expect(world.client.stats.streamVerified).toBe(true);
      expect(world.busFaults.stats.dropped).toBeGreaterThan(20);
      expect(world.busFaults.stats.duplicated).toBeGreaterThan(20);
      const primary = primaryHostOf(world)!.services.checkpointer.primary!.stats;
      expect(primary.barrierResends).toBeGreaterThan(0);
      expect(primary.probes + primary.resends).toBeGreaterThan(0);
      expect(world.replication!.failover!.stats.failovers).toBe(0);
      // Back toward speed: the half second after recovery delivers a good share of what the half second before the faults did.
      expect(after).toBeGreaterThan(RECOVERED_SHARE * before);
    });

    it(`stay safe when heartbeats and role changes are lost too, and delivery resumes (${mode})`, () => {
      const { world, after } = run(mode, [...BUS_SUBJECTS]);
      expect(world.client.stats.streamVerified).toBe(true);
      expect(after).toBeGreaterThan(0);
    });
  }
});
