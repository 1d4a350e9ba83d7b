import { describe, expect, it } from 'vitest';
import { HOST_SERVICES, type Segment } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { Rng } from '../../../lib/rng.js';
import { SimRuntime } from '../../../lib/runtime/sim/sim-runtime.js';
import type { Core, Effect, Input } from '../../../lib/runtime/types.js';
import { BUS_SUBJECTS, BusFaultInjector, type BusFaultSpec, type BusSubject } from '../../../sim/bus-faults.js';
import { segment } from '../support/segments.js';

const s = subjects('vm1');
const HOSTS = ['host-a', 'host-b'] as const;
const ha = s.host('host-a');
const hb = s.host('host-b');

/** Publishes one segment per µs-spaced timer on `subject`, and records what arrives on it. */
class Echo implements Core {
  readonly name = 'echo';
  readonly subscriptions: readonly string[];
  readonly arrived: { atUs: number; seq: number }[] = [];
  constructor(
    readonly subject: string,
    readonly count: number,
  ) {
    this.subscriptions = [subject];
  }
  handle(input: Input, nowUs: number): Effect[] {
    if (input.kind === 'start') return Array.from({ length: this.count }, (_, i) => ({ kind: 'setTimer', name: `send.${i}`, atUs: 100 * (i + 1) }) as const);
    if (input.kind === 'timer') return [{ kind: 'send', subject: this.subject, msg: segment({ seq: Number(input.name.slice(5)) }) }];
    if (input.kind === 'message') this.arrived.push({ atUs: nowUs, seq: (input.msg as Segment).seq });
    return [];
  }
}

const fault = (overrides: Partial<BusFaultSpec> = {}): BusFaultSpec => ({ dropRate: 0, duplicateRate: 0, delayRate: 0, maxDelayUs: 0, subjects: [...BUS_SUBJECTS], ...overrides });

function run(spec: BusFaultSpec | null, subject = ha.tx, seed = 1, count = 200) {
  const injector = new BusFaultInjector(s, HOSTS, new Rng(seed, 'bus'));
  if (spec !== null) injector.start(spec);
  const rt = new SimRuntime({ wireCheck: false, busDelayUs: 10, perturb: (subj, msg) => injector.perturb(subj, msg) });
  const echo = new Echo(subject, count);
  rt.addActor(echo);
  rt.runUntil(1_000_000);
  return { echo, rt, injector };
}

describe('bus faults', () => {
  it('change nothing while none is active', () => {
    const { echo, rt } = run(null);
    expect(echo.arrived.map((a) => a.seq)).toEqual([...Array(200).keys()]);
    expect(echo.arrived.every((a, i) => a.atUs === 100 * (i + 1) + 10)).toBe(true);
    expect(rt.messagesDropped).toBe(0);
  });

  it('lose, repeat and delay messages at about their rates, counted by the runtime', () => {
    const { echo, rt, injector } = run(fault({ dropRate: 0.2, duplicateRate: 0.2, delayRate: 0.5, maxDelayUs: 1_000 }), ha.tx, 1, 2_000);
    const { dropped, duplicated, delayed } = injector.stats;
    expect(dropped / 2_000).toBeGreaterThan(0.15);
    expect(dropped / 2_000).toBeLessThan(0.25);
    expect(duplicated).toBeGreaterThan(200);
    expect(delayed).toBeGreaterThan(500);
    expect(rt.messagesDropped).toBe(dropped);
    expect(rt.messagesDuplicated).toBe(duplicated);
    expect(echo.arrived).toHaveLength(2_000 - dropped + duplicated);
    // Delays beyond the 100 µs spacing reorder messages.
    const seqs = echo.arrived.map((a) => a.seq);
    expect(seqs.some((seq, i) => i > 0 && seq < seqs[i - 1]!)).toBe(true);
    expect(Math.max(...echo.arrived.map((a) => a.atUs - 100 * (a.seq + 1) - 10))).toBeLessThanOrEqual(1_000);
  });

  it('touch only the subjects the fault names, and never the client wire', () => {
    const onRx = fault({ dropRate: 1, subjects: ['rx'] });
    expect(run(onRx, ha.tx).echo.arrived).toHaveLength(200);
    expect(run(onRx, ha.rx).echo.arrived).toHaveLength(0);
    expect(run(onRx, hb.rx).echo.arrived).toHaveLength(0);
    expect(run(fault({ dropRate: 1 }), s.wireOut).echo.arrived).toHaveLength(200);
    expect(run(fault({ dropRate: 1 }), s.wireIn).echo.arrived).toHaveLength(200);
    expect(run(fault({ dropRate: 1, subjects: ['heartbeat'] }), s.heartbeat('host-a')).echo.arrived).toHaveLength(0);
    expect(run(fault({ dropRate: 1, subjects: ['control'] }), s.control('host-c')).echo.arrived).toHaveLength(0);
  });

  it('draw from a seeded stream: the same seed hits the same messages', () => {
    const spec = fault({ dropRate: 0.3, duplicateRate: 0.1, delayRate: 0.3, maxDelayUs: 500 });
    expect(run(spec, ha.tx, 7).echo.arrived).toEqual(run(spec, ha.tx, 7).echo.arrived);
    expect(run(spec, ha.tx, 8).echo.arrived).not.toEqual(run(spec, ha.tx, 7).echo.arrived);
  });
  it('classify every host subject by its kind, on any host, and each kind hits its own subjects only', () => {
    const hostSubjectsOf = (host: string): Record<BusSubject, string[]> => {
      const h = s.host(host);
      return {
        tx: [h.tx],
        txEpoch: [h.txEpoch],
        rx: [h.rx],
        epoch: [h.epoch],
        ckptStage: [h.ckptStage],
        ckptData: [s.ckptData(host)],
        ckptAck: [],
        commit: [h.commit],
        heartbeat: [s.heartbeat(host)],
        control: [s.control(host)],
        assign: HOST_SERVICES.map((service) => h.assign(service)),
        status: [h.status],
        permit: [h.permit],
        handover: [h.handover, h.handoverRequest],
      };
    };
    const byKind = new Map<BusSubject, string[]>(BUS_SUBJECTS.map((kind) => [kind, HOSTS.flatMap((host) => hostSubjectsOf(host)[kind])]));
    byKind.get('ckptAck')!.push(s.ckptAck);
    const all = [...byKind.values()].flat();
    expect(new Set(all).size).toBe(all.length);
    for (const kind of BUS_SUBJECTS) {
      const injector = new BusFaultInjector(s, HOSTS, new Rng(1, 'bus'));
      injector.start(fault({ dropRate: 1, subjects: [kind] }));
      for (const [other, list] of byKind) {
        for (const subject of list) expect(injector.perturb(subject, segment()), `${kind} fault on ${subject}`).toEqual(other === kind ? [] : null);
      }
      // The client's wire is the link's to lose, never the bus's.
      for (const subject of [s.wireIn, s.wireOut]) expect(injector.perturb(subject, segment())).toBeNull();
    }
  });

  it("take a host's subjects by their kind whether or not the host is among those given, but ckpt.data only for the given hosts", () => {
    const injector = new BusFaultInjector(s, HOSTS, new Rng(1, 'bus'));
    injector.start(fault({ dropRate: 1 }));
    const other = s.host('host-z');
    for (const subject of [other.tx, other.assign('acker'), other.handoverRequest]) expect(injector.perturb(subject, segment()), subject).toEqual([]);
    expect(injector.perturb(s.ckptData('host-z'), segment())).toBeNull();
    expect(injector.perturb(s.ckptData('host-b'), segment())).toEqual([]);
  });
});
