import { describe, expect, it } from 'vitest';
import type { Segment, WireMessage } from '../../../lib/codec/messages.js';
import { DecodeError, InvariantError, UnknownSubjectError } from '../../../lib/errors.js';
import { Rng } from '../../../lib/rng.js';
import { HostClock, type HostClockSpec } from '../../../lib/runtime/sim/host-clock.js';
import { DROPPED, SimRuntime, type Hop, type Publisher, type SimLogEntry, type SimRuntimeOptions } from '../../../lib/runtime/sim/sim-runtime.js';
import type { Core, Effect, Input } from '../../../lib/runtime/types.js';
import { segment } from '../support/segments.js';

const WIRE = 'specula.vm1.wire.out';

/** A core whose behaviour is a function of (input, now), recording every input it sees. */
class ScriptCore implements Core {
  readonly seen: { atUs: number; input: Input }[] = [];
  constructor(
    readonly name: string,
    readonly subscriptions: readonly string[],
    readonly script: (input: Input, nowUs: number) => Effect[] = () => [],
  ) {}
  handle(input: Input, nowUs: number): Effect[] {
    this.seen.push({ atUs: nowUs, input });
    return this.script(input, nowUs);
  }
  /** Times at which timer `name` fired. */
  firings(name: string): number[] {
    return this.seen.filter((s) => s.input.kind === 'timer' && s.input.name === name).map((s) => s.atUs);
  }
  /** Segments received, in order, with their arrival times. */
  messages(): { atUs: number; subject: string; msg: Segment }[] {
    return this.seen.flatMap((s) => (s.input.kind === 'message' && s.input.msg.type === 'segment' ? [{ atUs: s.atUs, subject: s.input.subject, msg: s.input.msg }] : []));
  }
}

const runtime = (options: Partial<SimRuntimeOptions> = {}) => new SimRuntime({ wireCheck: false, busDelayUs: 10, ...options });
const setTimer = (name: string, atUs: number): Effect => ({ kind: 'setTimer', name, atUs });
const cancelTimer = (name: string): Effect => ({ kind: 'cancelTimer', name });
const send = (subject: string, msg: Segment): Effect => ({ kind: 'send', subject, msg });
/** The sequence number of a segment; the tests here publish nothing else. */
const seqOf = (msg: WireMessage): number => (msg.type === 'segment' ? msg.seq : -1);

/** A core that applies `plan[t]` at start (t = 0) and when its driver timer fires at t. */
function plannedCore(plan: Record<number, Effect[]>): ScriptCore {
  const times = Object.keys(plan).map(Number).filter((t) => t > 0);
  return new ScriptCore('planned', [], (input, nowUs) => {
    if (input.kind === 'start') return [...(plan[0] ?? []), ...times.map((t) => setTimer(`drive.${t}`, t))];
    if (input.kind === 'timer' && input.name.startsWith('drive.')) return plan[nowUs] ?? [];
    return [];
  });
}

describe('SimRuntime timers', () => {
  it('fires a timer once, exactly at its deadline', () => {
    const core = plannedCore({ 0: [setTimer('t', 1000)] });
    const rt = runtime();
    rt.addActor(core);
    rt.runUntil(999);
    expect(core.firings('t')).toEqual([]);
    rt.runUntil(100_000);
    expect(core.firings('t')).toEqual([1000]);
  });

  it('fires only at the later deadline when a timer is re-set later', () => {
    const core = plannedCore({ 0: [setTimer('t', 1000)], 500: [setTimer('t', 2000)] });
    const rt = runtime();
    rt.addActor(core);
    rt.runUntil(100_000);
    expect(core.firings('t')).toEqual([2000]);
  });

  it('fires only at the earlier deadline when a timer is re-set earlier', () => {
    const core = plannedCore({ 0: [setTimer('t', 2000)], 500: [setTimer('t', 1000)] });
    const rt = runtime();
    rt.addActor(core);
    rt.runUntil(100_000);
    expect(core.firings('t')).toEqual([1000]);
  });

  it('follows the last of several re-sets that move the deadline both ways', () => {
    const core = plannedCore({ 0: [setTimer('t', 5000)], 100: [setTimer('t', 1000)], 200: [setTimer('t', 3000)], 300: [setTimer('t', 2000)] });
    const rt = runtime();
    rt.addActor(core);
    rt.runUntil(100_000);
    expect(core.firings('t')).toEqual([2000]);
  });

  it('never fires a cancelled timer', () => {
    const core = plannedCore({ 0: [setTimer('t', 1000)], 500: [cancelTimer('t')] });
    const rt = runtime();
    rt.addActor(core);
    rt.runUntil(100_000);
    expect(core.firings('t')).toEqual([]);
  });

  it('fires a timer set again after cancellation at the new deadline only', () => {
    const core = plannedCore({ 0: [setTimer('t', 1000)], 500: [cancelTimer('t')], 600: [setTimer('t', 3000)] });
    const rt = runtime();
    rt.addActor(core);
    rt.runUntil(100_000);
    expect(core.firings('t')).toEqual([3000]);
  });

  it('fires a timer again when its own handler re-arms it', () => {
    const core = new ScriptCore('periodic', [], (input, nowUs) => {
      if (input.kind === 'start') return [setTimer('tick', 100)];
      if (input.kind === 'timer' && nowUs < 400) return [setTimer('tick', nowUs + 100)];
      return [];
    });
    const rt = runtime();
    rt.addActor(core);
    rt.runUntil(10_000);
    expect(core.firings('tick')).toEqual([100, 200, 300, 400]);
  });

  it('fires a timer set in the past at the current time', () => {
    const core = plannedCore({ 700: [setTimer('t', 10)] });
    const rt = runtime();
    rt.addActor(core);
    rt.runUntil(100_000);
    expect(core.firings('t')).toEqual([700]);
  });

  it('keeps timers of different actors apart even when they share a name', () => {
    const a = plannedCore({ 0: [setTimer('t', 1000)] });
    const b = plannedCore({ 0: [setTimer('t', 2000)], 500: [cancelTimer('t')] });
    const rt = runtime();
    rt.addActor(a);
    rt.addActor(b);
    rt.runUntil(100_000);
    expect(a.firings('t')).toEqual([1000]);
    expect(b.firings('t')).toEqual([]);
  });

  it('rejects a timer at a fractional microsecond', () => {
    const rt = runtime();
    rt.addActor(plannedCore({ 0: [setTimer('t', 10.5)] }));
    expect(() => rt.runUntil(100)).toThrow(InvariantError);
  });

  it('advances the clock to the end of runUntil even when no event is due', () => {
    const rt = runtime();
    rt.runUntil(12_345);
    expect(rt.nowUs).toBe(12_345);
  });
});

describe('SimRuntime message delivery', () => {
  it('delivers messages on a subject in publication order after the bus delay', () => {
    const msgs = [1, 2, 3].map((seq) => segment({ seq }));
    const rt = runtime({ busDelayUs: 25 });
    const rx = new ScriptCore('rx', ['s']);
    rt.addActor(new ScriptCore('tx', [], (input) => (input.kind === 'start' ? msgs.map((m) => send('s', m)) : [])));
    rt.addActor(rx);
    rt.runUntil(1000);
    expect(rx.messages().map((m) => [m.atUs, m.msg.seq])).toEqual([
      [25, 1],
      [25, 2],
      [25, 3],
    ]);
  });

  it('delivers to every subscriber of a subject, in the order they were added', () => {
    const order: string[] = [];
    const sub = (name: string) => new ScriptCore(name, ['s'], (input) => (input.kind === 'message' && order.push(name), []));
    const rt = runtime();
    rt.addActor(new ScriptCore('tx', [], (input) => (input.kind === 'start' ? [send('s', segment())] : [])));
    rt.addActor(sub('b'));
    rt.addActor(sub('a'));
    rt.runUntil(1000);
    expect(order).toEqual(['b', 'a']);
  });

  it('does not deliver a message to actors subscribed to other subjects', () => {
    const rx = new ScriptCore('rx', ['other']);
    const rt = runtime();
    rt.addActor(new ScriptCore('tx', [], (input) => (input.kind === 'start' ? [send('s', segment())] : [])));
    rt.addActor(rx);
    rt.runUntil(1000);
    expect(rx.messages()).toEqual([]);
    expect(rt.messagesPublished).toBe(1);
  });

  it('runs a message and a timer due at the same instant in the order they were scheduled', () => {
    const rx = new ScriptCore('rx', ['s'], (input) => (input.kind === 'start' ? [setTimer('t', 10)] : []));
    const rt = runtime({ busDelayUs: 10 });
    // rx starts (and arms its timer) before tx publishes.
    rt.addActor(rx);
    rt.addActor(new ScriptCore('tx', [], (input) => (input.kind === 'start' ? [send('s', segment())] : [])));
    rt.runUntil(1000);
    expect(rx.seen.map((s) => [s.atUs, s.input.kind])).toEqual([
      [0, 'start'],
      [10, 'timer'],
      [10, 'message'],
    ]);
  });
});

describe('SimRuntime hops', () => {
  /** A hop that drops every message whose seq is odd and delays the others by `delayUs`. */
  const oddDropper = (delayUs: number): Hop => ({ transit: (msg, nowUs) => (seqOf(msg) % 2 === 1 ? DROPPED : nowUs + delayUs) });

  it('counts a message its hop drops and never delivers it', () => {
    const rx = new ScriptCore('rx', ['s']);
    const rt = runtime();
    rt.addHop('s', oddDropper(0));
    rt.addActor(new ScriptCore('tx', [], (input) => (input.kind === 'start' ? [0, 1, 2, 3, 4].map((seq) => send('s', segment({ seq }))) : [])));
    rt.addActor(rx);
    rt.runUntil(1000);
    expect(rx.messages().map((m) => m.msg.seq)).toEqual([0, 2, 4]);
    expect(rt.messagesDropped).toBe(2);
    expect(rt.messagesPublished).toBe(5);
  });

  it('delivers a message at the arrival time its hop returns, not after the bus delay', () => {
    const rx = new ScriptCore('rx', ['s']);
    const rt = runtime({ busDelayUs: 10 });
    rt.addHop('s', oddDropper(7_000));
    rt.addActor(plannedCore({ 300: [send('s', segment({ seq: 2 }))] }));
    rt.addActor(rx);
    rt.runUntil(7_299);
    expect(rx.messages()).toEqual([]);
    rt.runUntil(100_000);
    expect(rx.messages().map((m) => m.atUs)).toEqual([7_300]);
  });

  it('routes only its own subject through a hop', () => {
    const rx = new ScriptCore('rx', ['plain']);
    const rt = runtime({ busDelayUs: 10 });
    rt.addHop('s', oddDropper(7_000));
    rt.addActor(new ScriptCore('tx', [], (input) => (input.kind === 'start' ? [send('plain', segment({ seq: 1 }))] : [])));
    rt.addActor(rx);
    rt.runUntil(100_000);
    expect(rx.messages().map((m) => m.atUs)).toEqual([10]);
    expect(rt.messagesDropped).toBe(0);
  });

  it('refuses a hop that delivers into the past', () => {
    const rt = runtime();
    rt.addHop('s', { transit: (_msg, nowUs) => nowUs - 1 });
    rt.addActor(plannedCore({ 100: [send('s', segment())] }));
    expect(() => rt.runUntil(1000)).toThrow(InvariantError);
  });

  it('refuses a second hop on the same subject', () => {
    const rt = runtime();
    rt.addHop('s', oddDropper(0));
    expect(() => rt.addHop('s', oddDropper(0))).toThrow(InvariantError);
  });
});

describe('SimRuntime bus jitter', () => {
  /** Jitter that hands out `delaysUs` in turn on subject 'j' and leaves every other subject alone. */
  const scripted = (delaysUs: number[]) => {
    let next = 0;
    return (subject: string) => (subject === 'j' ? delaysUs[next++ % delaysUs.length]! : null);
  };
  const burst = (subject: string, seqs: number[]) => new ScriptCore('tx', [], (input) => (input.kind === 'start' ? seqs.map((seq) => send(subject, segment({ seq }))) : []));

  it('delays each message by its draw, and a later one never overtakes an earlier one on its subject', () => {
    const rx = new ScriptCore('rx', ['j']);
    const rt = runtime({ busDelayUs: 10, jitterUs: scripted([500, 0, 300, 900]) });
    rt.addActor(burst('j', [1, 2, 3, 4]));
    rt.addActor(rx);
    rt.runUntil(100_000);
    // Drawn 510, 10, 310, 910: the second and third wait behind the first, as one publisher's messages do on NATS.
    expect(rx.messages().map((m) => [m.msg.seq, m.atUs])).toEqual([[1, 510], [2, 510], [3, 510], [4, 910]]);
  });

  it('adds to the arrival a hop computes', () => {
    const rx = new ScriptCore('rx', ['j']);
    const rt = runtime({ jitterUs: scripted([250]) });
    rt.addHop('j', { transit: (_msg, nowUs) => nowUs + 7_000 });
    rt.addActor(burst('j', [1]));
    rt.addActor(rx);
    rt.runUntil(100_000);
    expect(rx.messages().map((m) => m.atUs)).toEqual([7_250]);
  });

  it('leaves a subject without jitter to the bus delay, and keeps subjects apart', () => {
    const rx = new ScriptCore('rx', ['j', 'plain']);
    const rt = runtime({ busDelayUs: 10, jitterUs: scripted([5_000]) });
    rt.addActor(new ScriptCore('tx', [], (input) => (input.kind === 'start' ? [send('j', segment({ seq: 1 })), send('plain', segment({ seq: 2 }))] : [])));
    rt.addActor(rx);
    rt.runUntil(100_000);
    expect(rx.messages().map((m) => [m.subject, m.atUs])).toEqual([['plain', 10], ['j', 5_010]]);
  });

  it('refuses a jitter that is not a whole, non-negative number of µs', () => {
    const rt = runtime({ jitterUs: () => -1 });
    rt.addActor(burst('j', [1]));
    expect(() => rt.runUntil(1000)).toThrow(InvariantError);
  });
});

describe('SimRuntime wireCheck', () => {
  const publishOnce = (rt: SimRuntime, subject: string, msg: Segment) => rt.addActor(new ScriptCore('tx', [], (input) => (input.kind === 'start' ? [send(subject, msg)] : [])));

  it('makes publish throw DecodeError for a message the codec would reject', () => {
    const rt = runtime({ wireCheck: true });
    publishOnce(rt, WIRE, segment({ window: 70_000 }));
    expect(() => rt.runUntil(1000)).toThrow(DecodeError);
  });

  it('passes the same out-of-range message through untouched when wireCheck is off', () => {
    const rx = new ScriptCore('rx', [WIRE]);
    const rt = runtime({ wireCheck: false });
    publishOnce(rt, WIRE, segment({ window: 70_000 }));
    rt.addActor(rx);
    rt.runUntil(1000);
    expect(rx.messages().map((m) => m.msg.window)).toEqual([70_000]);
  });

  it('delivers a decoded copy equal to what was published, not the published object', () => {
    const original = segment({ seq: 12, ack: 34, window: 500, flags: 16, payload: new Uint8Array([1, 2, 3]), wscale: 7, tsValUs: 99 });
    const rx = new ScriptCore('rx', [WIRE]);
    const rt = runtime({ wireCheck: true });
    publishOnce(rt, WIRE, original);
    rt.addActor(rx);
    rt.runUntil(1000);
    const [got] = rx.messages();
    expect(got!.msg).not.toBe(original);
    expect({ ...got!.msg, payload: Array.from(got!.msg.payload) }).toEqual({ ...original, payload: [1, 2, 3] });
  });

  it('throws UnknownSubjectError for a subject with no message type', () => {
    const rt = runtime({ wireCheck: true });
    publishOnce(rt, 'not.a.known.subject', segment());
    expect(() => rt.runUntil(1000)).toThrow(UnknownSubjectError);
  });
});

describe('SimRuntime determinism', () => {
  /**
   * Two chatty actors whose timers and messages depend on a seeded Rng; every
   * input either sees is logged. The trace is the log.
   */
  function trace(seed: number): SimLogEntry[] {
    const entries: SimLogEntry[] = [];
    const rt = runtime({ onLog: (e) => entries.push(e) });
    const rng = new Rng(seed);
    const hopRng = rng.fork('hop');
    rt.addHop('a2b', { transit: (_m, nowUs) => (hopRng.chance(0.2) ? DROPPED : nowUs + 1 + hopRng.int(500)) });
    const actor = (name: string, inbox: string, outbox: string) => {
      const r = rng.fork(name);
      let seq = 0;
      return new ScriptCore(name, [inbox], (input, nowUs) => {
        const log: Effect = { kind: 'log', level: 'info', event: input.kind, fields: input.kind === 'message' ? { seq: seqOf(input.msg) } : input.kind === 'timer' ? { name: input.name } : {} };
        if (nowUs > 200_000) return [log];
        const effects: Effect[] = [log, setTimer(`t${r.int(3)}`, nowUs + 1 + r.int(2_000))];
        if (input.kind !== 'start' && r.chance(0.5)) effects.push(send(outbox, segment({ seq: seq++ })));
        if (r.chance(0.1)) effects.push(cancelTimer(`t${r.int(3)}`));
        return effects;
      });
    };
    rt.addActor(actor('a', 'b2a', 'a2b'));
    rt.addActor(actor('b', 'a2b', 'b2a'));
    rt.runUntil(300_000);
    return entries;
  }

  it('produces identical traces from two runs with the same actors and seed', () => {
    const first = trace(7);
    expect(first.length).toBeGreaterThan(100);
    expect(trace(7)).toEqual(first);
  });

  it('produces a different trace from a different seed', () => {
    expect(trace(8)).not.toEqual(trace(7));
  });
});

/** What a clock reads at true time `t`, from the definition (local = true + offset + ⌊true·drift/10⁶⌋). */
const reading = (spec: HostClockSpec, t: number): number => t + spec.offsetUs + Math.floor((t * spec.driftPpm) / 1e6);
/** The first true instant whose reading is at least `local`, by bisection over the definition. */
function firstTrueAt(spec: HostClockSpec, local: number): number {
  let lo = 0;
  let hi = 2 * local + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (reading(spec, mid) >= local) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

describe('SimRuntime clocks', () => {
  it('gives an actor on an offset clock its local time, and fires its timer at the true instant its clock reaches the deadline', () => {
    const rt = runtime();
    const trueAt: number[] = [];
    const core = new ScriptCore('skewed', [], (input, nowUs) => {
      trueAt.push(rt.nowUs);
      return input.kind === 'start' ? [setTimer('t', nowUs + 1_000)] : [];
    });
    rt.addActor(core, { clock: new HostClock({ offsetUs: 5_000, driftPpm: 0 }) });
    rt.runUntil(999);
    expect(core.firings('t')).toEqual([]);
    rt.runUntil(100_000);
    // It started at true 0 reading 5 000, and asked for its local 6 000: true 1 000.
    expect(core.seen.map((s) => s.atUs)).toEqual([5_000, 6_000]);
    expect(trueAt).toEqual([0, 1_000]);
  });

  for (const driftPpm of [37_000, -37_000]) {
    it(`fires a timer on a clock drifting ${driftPpm > 0 ? 'fast' : 'slow'} (${driftPpm} ppm) at the first true instant whose local reading reaches its deadline`, () => {
      const spec: HostClockSpec = { offsetUs: 1_234, driftPpm };
      const clock = new HostClock(spec);
      const deadlines = [1_235, 5_000, 5_001, 10_000, 123_457, 1_000_000, 1_000_001];
      const rt = runtime();
      const fired = new Map<string, { localUs: number; trueUs: number }>();
      const core = new ScriptCore('drifting', [], (input, nowUs) => {
        if (input.kind === 'start') return deadlines.map((l) => setTimer(`t${l}`, l));
        if (input.kind === 'timer') fired.set(input.name, { localUs: nowUs, trueUs: rt.nowUs });
        return [];
      });
      rt.addActor(core, { clock });
      rt.runUntil(2_000_000);
      expect(core.seen[0]!.atUs).toBe(1_234); // started at true 0
      for (const l of deadlines) {
        const at = fired.get(`t${l}`)!;
        const expected = firstTrueAt(spec, l);
        expect(at.trueUs, `deadline ${l}`).toBe(expected);
        expect(at.trueUs).toBe(clock.trueUs(l));
        expect(at.localUs).toBe(reading(spec, expected));
        expect(at.localUs).toBe(clock.localUs(at.trueUs));
        expect(at.localUs).toBeGreaterThanOrEqual(l);
        expect(reading(spec, at.trueUs - 1)).toBeLessThan(l);
      }
    });
  }

  it('gives two actors on different clocks their own readings of the same delivery', () => {
    const clocks = [new HostClock(), new HostClock({ offsetUs: 2_500, driftPpm: 50_000 }), new HostClock({ offsetUs: 40, driftPpm: -20_000 })];
    const rt = runtime({ busDelayUs: 10 });
    const subscribers = clocks.map((clock, i) => {
      const core = new ScriptCore(`rx${i}`, ['s']);
      rt.addActor(core, { clock });
      return core;
    });
    rt.addActor(plannedCore({ 100_000: [send('s', segment({ seq: 9 }))] }));
    rt.runUntil(200_000);
    const seen = subscribers.map((core) => core.messages().map((m) => m.atUs));
    expect(seen).toEqual(clocks.map((clock) => [clock.localUs(100_010)]));
    expect(seen.flat()).toEqual([100_010, 100_010 + 2_500 + 5_000, 100_010 + 40 - 2_001]);
  });

  it('fires at once a timer set for a local time its clock has already passed', () => {
    const rt = runtime();
    const trueAt: number[] = [];
    const core = new ScriptCore('ahead', [], (input) => {
      if (input.kind === 'timer') trueAt.push(rt.nowUs);
      return input.kind === 'start' ? [setTimer('t', 10)] : [];
    });
    rt.addActor(core, { clock: new HostClock({ offsetUs: 1_000, driftPpm: 0 }) });
    rt.runUntil(100_000);
    expect(trueAt).toEqual([0]);
    expect(core.firings('t')).toEqual([1_000]);
  });

  it('tells the local time of a running actor, and refuses one that is not running', () => {
    const rt = runtime();
    const clock = new HostClock({ offsetUs: 300, driftPpm: 10_000 });
    const core = new ScriptCore('a', []);
    rt.addActor(core, { clock });
    rt.runUntil(50_000);
    expect(rt.localNowUs(core)).toBe(50_000 + 300 + 500);
    rt.removeActor(core);
    expect(() => rt.localNowUs(core)).toThrow(InvariantError);
    expect(() => rt.localNowUs(new ScriptCore('never', []))).toThrow(InvariantError);
  });
});

/** A core whose subscriptions `change(input)` may replace (a new array) while it handles an input. */
class ResubscribingCore implements Core {
  subscriptions: readonly string[];
  readonly received: { atUs: number; subject: string; seq: number }[] = [];
  constructor(
    readonly name: string,
    initial: readonly string[],
    readonly change: (input: Input, core: ResubscribingCore) => Effect[] = () => [],
  ) {
    this.subscriptions = initial;
  }
  handle(input: Input, nowUs: number): Effect[] {
    if (input.kind === 'message') this.received.push({ atUs: nowUs, subject: input.subject, seq: seqOf(input.msg) });
    return this.change(input, this);
  }
}

describe('SimRuntime dynamic subscriptions', () => {
  /** Sends seq n on each subject at 100, 300, 500, … (n counts up across subjects and rounds). */
  const publisher = (subjects: readonly string[], rounds: number) => {
    let seq = 0;
    const plan: Record<number, Effect[]> = {};
    for (let r = 0; r < rounds; r++) plan[100 + 200 * r] = subjects.map((subject) => send(subject, segment({ seq: ++seq })));
    return plannedCore(plan);
  };

  it('delivers on the subjects a core took up during handle() from then on, and nothing more on those it dropped', () => {
    const rt = runtime({ busDelayUs: 10 });
    const core = new ResubscribingCore('switcher', [], (input, self) => {
      if (input.kind === 'start') {
        self.subscriptions = ['a']; // taken up while starting
        return [setTimer('switch', 200)];
      }
      if (input.kind === 'timer') self.subscriptions = ['b', 'c'];
      if (input.kind === 'message' && input.subject === 'c') self.subscriptions = ['b'];
      return [];
    });
    rt.addActor(core);
    rt.addActor(publisher(['a', 'b', 'c'], 3));
    rt.runUntil(10_000);
    // Round 1 (110): a only. Round 2 (310): b and c, and c is dropped there. Round 3 (510): b only.
    expect(core.received).toEqual([
      { atUs: 110, subject: 'a', seq: 1 },
      { atUs: 310, subject: 'b', seq: 5 },
      { atUs: 310, subject: 'c', seq: 6 },
      { atUs: 510, subject: 'b', seq: 8 },
    ]);
  });

  it('completes a delivery in progress to every subscriber when one of them drops its subject', () => {
    const rt = runtime({ busDelayUs: 10 });
    const dropper = new ResubscribingCore('dropper', ['s'], (input, self) => {
      if (input.kind === 'message') self.subscriptions = [];
      return [];
    });
    const other = new ResubscribingCore('other', ['s']);
    rt.addActor(dropper);
    rt.addActor(other);
    rt.addActor(publisher(['s'], 2));
    rt.runUntil(10_000);
    expect(dropper.received.map((m) => m.seq)).toEqual([1]);
    expect(other.received.map((m) => m.seq)).toEqual([1, 2]);
  });

  it('gives a removed actor nothing on the subjects it took up while running', () => {
    const rt = runtime({ busDelayUs: 10 });
    const core = new ResubscribingCore('crashes', [], (input, self) => {
      if (input.kind === 'start') self.subscriptions = ['a'];
      return [];
    });
    const witness = new ResubscribingCore('witness', ['a']);
    rt.addActor(core);
    rt.addActor(witness);
    rt.addActor(publisher(['a'], 3));
    rt.runUntil(200);
    expect(core.received.map((m) => m.seq)).toEqual([1]);
    rt.removeActor(core);
    rt.runUntil(10_000);
    expect(core.received.map((m) => m.seq)).toEqual([1]);
    expect(witness.received.map((m) => m.seq)).toEqual([1, 2, 3]);
  });
});

describe('SimRuntime onPublish', () => {
  it('reports each publication at true time with the publishing actor, its host and its clock', () => {
    const published: { subject: string; nowUs: number; seq: number; from: Publisher }[] = [];
    const rt = runtime({ onPublish: (subject, msg, nowUs, from) => published.push({ subject, nowUs, seq: seqOf(msg), from }) });
    const clock = new HostClock({ offsetUs: 7_000, driftPpm: 0 });
    // On host-a, its clock 7 ms ahead: it publishes when its clock reads 9 000, at true 2 000.
    rt.addActor(
      new ScriptCore('guest.host-a', [], (input) => (input.kind === 'start' ? [setTimer('go', 9_000)] : input.kind === 'timer' ? [send('s', segment({ seq: 1 }))] : [])),
      { host: 'host-a', clock },
    );
    // Off the hosts, on true time.
    rt.addActor(plannedCore({ 3_000: [send('t', segment({ seq: 2 }))] }));
    rt.runUntil(10_000);
    expect(published).toHaveLength(2);
    expect(published[0]).toMatchObject({ subject: 's', nowUs: 2_000, seq: 1, from: { actor: 'guest.host-a', host: 'host-a' } });
    expect(published[0]!.from.clock).toBe(clock);
    expect(published[1]).toMatchObject({ subject: 't', nowUs: 3_000, seq: 2, from: { actor: 'planned', host: null } });
    expect(published[1]!.from.clock.exact).toBe(true);
  });
});
