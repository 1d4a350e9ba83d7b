/**
 * The auditor as a NATS subscriber (BusAuditor), on a fake connection: on
 * one server it judges each message as it arrives; on a cluster, where a
 * message may overtake the one that caused it, it holds commits and wire
 * output for a reorder window and judges them after it.
 */
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it } from 'vitest';
import { encode } from '../../../lib/codec/codec.js';
import type { WireMessage } from '../../../lib/codec/messages.js';
import { runConfigSchema } from '../../../lib/config/run-config.js';
import { HEADER_CLOCK_US, HEADER_HOST } from '../../../lib/runtime/nats/shell.js';
import { BusAuditor, CLUSTER_REORDER_WINDOW_MS, SERVER_REORDER_WINDOW_MS } from '../../../services/auditor/main.js';
import type { Violation } from '../../../services/auditor/violations.js';
import { A, ack, assignment, B, commit, data, releasePermit, S, VM } from './support.js';

/** A connection that hands published messages to the subscriptions whose subject matches (`*` is one token). */
class FakeConnection {
  readonly subs: { readonly pattern: RegExp; readonly callback: (err: Error | null, m: Msg) => void; closed: boolean }[] = [];

  constructor(readonly info: { cluster?: string } = {}) {}

  subscribe(subject: string, opts: { callback: (err: Error | null, m: Msg) => void }) {
    const pattern = new RegExp(`^${subject.replace(/\./g, '\\.').replace(/\*/g, '[^.]+')}$`);
    const sub = { pattern, callback: opts.callback, closed: false };
    this.subs.push(sub);
    return { unsubscribe: () => void (sub.closed = true) };
  }

  /** `stampedBy`: the publishing host's stamp, as the shell puts it on wire output (with its clock reading). */
  deliver(subject: string, msg: WireMessage, stampedBy?: string): void {
    const stamp: Record<string, string> = stampedBy === undefined ? {} : { [HEADER_HOST]: stampedBy, [HEADER_CLOCK_US]: String(Date.now() * 1000) };
    const headers = stampedBy === undefined ? undefined : { get: (key: string) => stamp[key] ?? '' };
    const m = { subject, data: encode(msg), headers } as unknown as Msg;
    for (const s of this.subs) if (!s.closed && s.pattern.test(subject)) s.callback(null, m);
  }

  /** A message whose headers nats.js cannot decode: it throws when they are first read. */
  deliverMalformedHeaders(subject: string, msg: WireMessage): void {
    const m = { subject, data: encode(msg) } as unknown as Msg;
    Object.defineProperty(m, 'headers', { get: () => { throw new Error('invalid header name'); } });
    for (const s of this.subs) if (!s.closed && s.pattern.test(subject)) s.callback(null, m);
  }

  get nc(): NatsConnection {
    return this as unknown as NatsConnection;
  }

  readonly #statusWaiters: ((s: { type: string }) => void)[] = [];
  /** The connection's status events, as nats.js yields them; `reconnect()` sends one. */
  async *status(): AsyncGenerator<{ type: string }> {
    for (;;) yield await new Promise<{ type: string }>((resolve) => this.#statusWaiters.push(resolve));
  }

  /** The connection came back after the server was gone: what was published meanwhile never arrived. */
  reconnect(): void {
    for (const w of this.#statusWaiters.splice(0)) w({ type: 'reconnect' });
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A, primary of term 1 backed by B, has emitted epoch 1 (bytes [0, 100)) and holds a permit. */
function protectedPrimary(windowMs: number): { bus: FakeConnection; auditor: BusAuditor; seen: Violation[] } {
  const bus = new FakeConnection();
  const seen: Violation[] = [];
  const auditor = new BusAuditor(bus.nc, VM, (v) => seen.push(v), { reorderWindowMs: windowMs });
  bus.deliver(S.host(A).assign('checkpointer'), assignment(A, 'primary', 1, 1, { peerHost: B }));
  bus.deliver(S.host(B).assign('checkpointer'), assignment(B, 'backup', 1, 1, { peerHost: A }));
  bus.deliver(S.host(A).permit, releasePermit(A, 1));
  bus.deliver(S.host(A).tx, data(1, 1, 0, 100));
  return { bus, auditor, seen };
}

describe('BusAuditor', () => {
  it('counts a message whose headers are malformed and goes on judging: thrown, it ended the read loop, and the audit saw nothing more', () => {
    const { bus, auditor, seen } = protectedPrimary(0);
    expect(() => bus.deliverMalformedHeaders(S.host(A).commit, commit(1, 1))).not.toThrow();
    expect(auditor.counters.undecodable).toBe(1);
    bus.deliver(S.host(A).commit, commit(1, 1));
    expect(seen.map((v) => v.rule)).toEqual(['commit-without-ack']);
    auditor.close();
  });

  it('on one server (no window) judges a commit as it arrives: one before its acknowledgement is a violation', () => {
    const { bus, auditor, seen } = protectedPrimary(0);
    bus.deliver(S.host(A).commit, commit(1, 1));
    bus.deliver(S.ckptAck, ack(B, 1, 1));
    expect(seen.map((v) => v.rule)).toEqual(['commit-without-ack']);
    expect(auditor.counters.held).toBe(0);
    auditor.close();
  });

  it('with a window, a commit and output that overtook their acknowledgement are judged after it arrived: no violation', async () => {
    const { bus, auditor, seen } = protectedPrimary(40);
    bus.deliver(S.host(A).commit, commit(1, 1));
    bus.deliver(S.wireOut, data(1, 1, 0, 100), A);
    // Right after them, well within the window however slow the machine: a pause here could outlast the window.
    bus.deliver(S.ckptAck, ack(B, 1, 1));
    expect(auditor.counters.held).toBe(2);
    expect(auditor.auditor.stats.segmentsChecked).toBe(0);
    await sleep(100);
    expect(auditor.auditor.stats.segmentsChecked).toBe(1);
    expect(auditor.auditor.stats.bytesReleasedEnd).toBe(100);
    expect(seen).toEqual([]);
    auditor.close();
  });

  it('after its connection comes back, tells the auditor it missed messages: a commit published meanwhile is not read as output released early', async () => {
    const { bus, auditor, seen } = protectedPrimary(0);
    await sleep(0); // the connection watcher is waiting for a status
    bus.reconnect(); // meanwhile B acknowledged epoch 1 and A committed it
    await sleep(0);
    expect(auditor.counters.reconnects).toBe(1);
    bus.deliver(S.wireOut, data(1, 1, 0, 100), A);
    expect(seen).toEqual([]);
    expect(auditor.auditor.stats.releasesUnjudged).toBe(1);
    auditor.close();
  });

  it('with a window, a commit whose acknowledgement never comes is still a violation, once the window has passed', async () => {
    const { bus, auditor, seen } = protectedPrimary(20);
    bus.deliver(S.host(A).commit, commit(1, 1));
    expect(seen).toEqual([]);
    await sleep(80);
    expect(seen.map((v) => v.rule)).toEqual(['commit-without-ack']);
    auditor.close();
  });

  it('flush() judges what it holds at once (a run reads the violations after it); close() flushes too', () => {
    const { bus, auditor, seen } = protectedPrimary(60_000);
    bus.deliver(S.wireOut, data(1, 1, 0, 100), A);
    expect(seen).toEqual([]);
    auditor.flush();
    expect(seen.map((v) => v.rule)).toEqual(['segment-before-commit']);
    bus.deliver(S.host(A).commit, commit(1, 2));
    auditor.close();
    expect(seen.map((v) => v.rule)).toEqual(['segment-before-commit', 'commit-without-ack']);
  });

  it('forVm holds effects for CLUSTER_REORDER_WINDOW_MS when its server belongs to a cluster, SERVER_REORDER_WINDOW_MS otherwise', () => {
    const config = runConfigSchema.parse({ vmId: VM, mode: 'spec' });
    for (const info of [{ cluster: 'specula-test' }, {}]) {
      const bus = new FakeConnection(info);
      const auditor = BusAuditor.forVm(bus.nc, config, () => undefined)!;
      bus.deliver(S.host(A).commit, commit(1, 1));
      expect(auditor.counters.held).toBe(1);
      auditor.close();
    }
    expect(CLUSTER_REORDER_WINDOW_MS).toBeGreaterThan(SERVER_REORDER_WINDOW_MS);
    expect(SERVER_REORDER_WINDOW_MS).toBeGreaterThan(0);
    expect(BusAuditor.forVm(new FakeConnection({ cluster: 'c' }).nc, runConfigSchema.parse({ vmId: VM, mode: 'native' }), () => undefined)).toBeNull();
  });

  it('keeps the control messages around a finding: those before it, and the next ones as they come', () => {
    const bus = new FakeConnection();
    const found: { context: readonly string[]; after: readonly string[] }[] = [];
    const watched = new BusAuditor(bus.nc, VM, () => found.push({ context: watched.recent(), after: watched.following(2) }));
    bus.deliver(S.host(A).assign('checkpointer'), assignment(A, 'primary', 1, 1, { peerHost: B }));
    bus.deliver(S.host(A).commit, commit(1, 1));
    bus.deliver(S.ckptAck, ack(B, 1, 1));
    bus.deliver(S.ckptAck, ack(B, 1, 2));
    bus.deliver(S.ckptAck, ack(B, 1, 3));
    expect(found).toHaveLength(1);
    expect(found[0]!.context.at(-1)).toMatch(/commit t1 e1$/);
    expect(found[0]!.after).toHaveLength(2);
    expect(found[0]!.after[0]).toMatch(/ack t1 e1 ok from host-b$/);
    expect(found[0]!.after[1]).toMatch(/ack t1 e2 ok from host-b$/);
    watched.close();
  });
});
