import { describe, expect, it } from 'vitest';
import type { Segment, WireMessage } from '../../../lib/codec/messages.js';
import { DecodeError, InvariantError, UnknownSubjectError } from '../../../lib/errors.js';
import { Rng } from '../../../lib/rng.js';
import { DROPPED, SimRuntime, type Hop, type SimLogEntry, type SimRuntimeOptions } from '../../../lib/runtime/sim/sim-runtime.js';
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
