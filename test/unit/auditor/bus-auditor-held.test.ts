/**
 * BusAuditor's reorder window holds at most MAX_HELD_MESSAGES effects: past
 * that, the oldest is judged at once (counted). On a fake connection, as in
 * bus-auditor.test.ts.
 */
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { encode } from '../../../lib/codec/codec.js';
import type { WireMessage } from '../../../lib/codec/messages.js';
import { HEADER_CLOCK_US, HEADER_HOST } from '../../../lib/runtime/nats/shell.js';
import { BusAuditor, MAX_HELD_MESSAGES } from '../../../services/auditor/main.js';
import type { Violation } from '../../../services/auditor/violations.js';
import { A, ack, assignment, B, commit, data, releasePermit, S, VM } from './support.js';

/** A connection that hands each published message to the subscriptions whose subject matches (`*` is one token). */
class FakeConnection {
  readonly subs: { readonly pattern: RegExp; readonly callback: (err: Error | null, m: Msg) => void }[] = [];
  readonly info = {};

  subscribe(subject: string, opts: { callback: (err: Error | null, m: Msg) => void }) {
    this.subs.push({ pattern: new RegExp(`^${subject.replace(/\./g, '\\.').replace(/\*/g, '[^.]+')}$`), callback: opts.callback });
    return { unsubscribe: () => undefined };
  }

  /** `stampedBy`: the publishing host's stamp, as the shell puts it on wire output. */
  deliver(subject: string, msg: WireMessage, stampedBy?: string): void {
    const stamp: Record<string, string> = stampedBy === undefined ? {} : { [HEADER_HOST]: stampedBy, [HEADER_CLOCK_US]: String(Date.now() * 1000) };
    const headers = stampedBy === undefined ? undefined : { get: (key: string) => stamp[key] ?? '' };
    const m = { subject, data: encode(msg), headers } as unknown as Msg;
    for (const s of this.subs) if (s.pattern.test(subject)) s.callback(null, m);
  }

  get nc(): NatsConnection {
    return this as unknown as NatsConnection;
  }

  /** No status ever comes. */
  async *status(): AsyncGenerator<{ type: string }> {
    yield await new Promise<{ type: string }>(() => undefined);
  }
}

/** A, primary of term 1 backed by B, has emitted bytes [0, MAX_HELD_MESSAGES) of epoch 1 and holds a permit; a window of a minute. */
function protectedPrimary(): { bus: FakeConnection; auditor: BusAuditor; seen: Violation[] } {
  const bus = new FakeConnection();
  const seen: Violation[] = [];
  const auditor = new BusAuditor(bus.nc, VM, (v) => seen.push(v), { reorderWindowMs: 60_000 });
  bus.deliver(S.host(A).assign('checkpointer'), assignment(A, 'primary', 1, 1, { peerHost: B }));
  bus.deliver(S.host(B).assign('checkpointer'), assignment(B, 'backup', 1, 1, { peerHost: A }));
  bus.deliver(S.host(A).permit, releasePermit(A, 1));
  bus.deliver(S.host(A).tx, data(1, 1, 0, MAX_HELD_MESSAGES));
  return { bus, auditor, seen };
}

describe('BusAuditor: effects held for the reorder window', () => {
  it('holds MAX_HELD_MESSAGES; past them it judges the oldest at once, in arrival order, and counts it', () => {
    const { bus, auditor, seen } = protectedPrimary();
    bus.deliver(S.ckptAck, ack(B, 1, 1)); // not an effect: judged at once
    bus.deliver(S.host(A).commit, commit(1, 1)); // held
    for (let i = 0; i < MAX_HELD_MESSAGES - 1; i++) bus.deliver(S.wireOut, data(1, 1, i, 1), A);
    expect(auditor.counters).toMatchObject({ held: MAX_HELD_MESSAGES, heldJudgedEarly: 0 });
    const judged = auditor.auditor.stats.messagesSeen;
    // One more: the commit, the oldest, is judged now.
    bus.deliver(S.wireOut, data(1, 1, MAX_HELD_MESSAGES - 1, 1), A);
    expect(auditor.counters.heldJudgedEarly).toBe(1);
    expect(auditor.auditor.stats.messagesSeen).toBe(judged + 1);
    expect(auditor.auditor.stats.segmentsChecked).toBe(0); // it was the commit
    // And another: the first output, byte 0.
    bus.deliver(S.wireOut, data(1, 1, MAX_HELD_MESSAGES, 1), A);
    expect(auditor.counters.heldJudgedEarly).toBe(2);
    expect(auditor.auditor.stats.segmentsChecked).toBe(1);
    expect(auditor.auditor.stats.bytesReleasedEnd).toBe(1);
    expect(seen).toEqual([]);
    auditor.close(); // the rest, judged in order: the last byte was never emitted
    expect(auditor.auditor.stats.segmentsChecked).toBe(MAX_HELD_MESSAGES + 1);
    expect(seen.map((v) => v.rule)).toEqual(['byte-never-emitted']);
  });

  it('judged before its window is out, a commit may be taken for one without its acknowledgement: a false alarm, never a missed one', () => {
    const { bus, auditor, seen } = protectedPrimary();
    bus.deliver(S.host(A).commit, commit(1, 1));
    for (let i = 0; i < MAX_HELD_MESSAGES; i++) bus.deliver(S.wireOut, data(1, 1, i, 1), A);
    expect(auditor.counters.heldJudgedEarly).toBe(1);
    bus.deliver(S.ckptAck, ack(B, 1, 1)); // the acknowledgement the window would have waited for
    expect(seen.map((v) => v.rule)).toEqual(['commit-without-ack']);
    auditor.close();
  });
});
