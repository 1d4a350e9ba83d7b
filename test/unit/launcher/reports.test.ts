import type { NatsConnection } from '@nats-io/transport-node';
import { describe, expect, it, vi } from 'vitest';
import { encode } from '../../../lib/codec/codec.js';
import type { ServiceReport } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { MAX_INCARNATIONS_KEPT, MAX_PROCESSES_KEPT, ReportCollector } from '../../../cli/launcher/reports.js';

type Callback = (err: Error | null, m: { data: Uint8Array }) => void;

/** Just enough of a connection: subscriptions whose callbacks the test calls. */
function fakeConnection(): { nc: NatsConnection; deliver: (subject: string, err: Error | null, data?: Uint8Array) => void } {
  const callbacks = new Map<string, Callback>();
  const nc = { subscribe: (subject: string, opts: { callback: Callback }) => (callbacks.set(subject, opts.callback), { unsubscribe: () => undefined }) };
  return { nc: nc as unknown as NatsConnection, deliver: (subject, err, data = new Uint8Array()) => callbacks.get(subject)!(err, { data }) };
}

const report = (vmId: string, incarnation: number, atUs: number): ServiceReport => ({ type: 'serviceReport', vmId, host: 'host-a', service: 'guest', incarnation, atUs, final: false, statsJson: JSON.stringify({ checkpoints: atUs }) });

describe('ReportCollector', () => {
  it('stops waiting for a state once its signal aborts, at its next poll, long before its bound', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'performance'] });
    try {
      const { nc } = fakeConnection();
      const collector = new ReportCollector(nc, ['vm1']);
      const abort = new AbortController();
      let outcome: boolean | null = null;
      void collector.waitForState(['vm1'], 'protected', 60_000, abort.signal, 5).then((v) => (outcome = v));
      await vi.advanceTimersByTimeAsync(20);
      expect(outcome).toBeNull(); // still waiting: the view never came
      abort.abort('SIGINT');
      await vi.advanceTimersByTimeAsync(5);
      expect(outcome).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps the newest report of each incarnation, for the VM of its subject only', () => {
    const { nc, deliver } = fakeConnection();
    const collector = new ReportCollector(nc, ['vm1', 'vm2']);
    deliver(subjects('vm1').report, null, encode(report('vm1', 1, 20)));
    deliver(subjects('vm1').report, null, encode(report('vm1', 1, 10)));
    deliver(subjects('vm1').report, null, encode(report('vm1', 2, 5)));
    // A report naming another VM than its subject's is not taken for either.
    deliver(subjects('vm2').report, null, encode(report('vm1', 3, 30)));
    expect(collector.reports('vm1').map((e) => [e.report.incarnation, e.report.atUs])).toEqual([
      [1, 20],
      [2, 5],
    ]);
    expect(collector.reports('vm2')).toEqual([]);
    expect(collector.dropped).toBe(1);
  });

  it('counts what does not decode and subscription errors, and keeps at most MAX_INCARNATIONS_KEPT incarnations', () => {
    const { nc, deliver } = fakeConnection();
    const collector = new ReportCollector(nc, ['vm1']);
    deliver(subjects('vm1').report, null, new Uint8Array([0xff, 0xff, 0xff]));
    deliver(subjects('vm1').failover, new Error('permissions violation'));
    expect(collector.malformed).toBe(1);
    expect(collector.subscriptionErrors).toBe(1);
    for (let i = 0; i < MAX_INCARNATIONS_KEPT + 10; i++) deliver(subjects('vm1').report, null, encode(report('vm1', i, 1)));
    expect(collector.reports('vm1')).toHaveLength(MAX_INCARNATIONS_KEPT);
    expect(collector.dropped).toBe(10);
    // A kept incarnation still takes its newer reports.
    deliver(subjects('vm1').report, null, encode(report('vm1', 0, 99)));
    expect(collector.reports('vm1').find((e) => e.report.incarnation === 0)!.report.atUs).toBe(99);
  });

  it('keeps at most MAX_PROCESSES_KEPT processes: a host name is free text, and forged ones are dropped and counted', () => {
    const { nc, deliver } = fakeConnection();
    const collector = new ReportCollector(nc, ['vm1']);
    const fromHost = (host: string, atUs: number): ServiceReport => ({ ...report('vm1', 1, atUs), host });
    for (let i = 0; i < MAX_PROCESSES_KEPT + 5; i++) deliver(subjects('vm1').report, null, encode(fromHost(`forged-${i}`, 1)));
    expect(collector.reports('vm1')).toHaveLength(MAX_PROCESSES_KEPT);
    expect(collector.dropped).toBe(5);
    // A process it keeps still takes its newer reports.
    deliver(subjects('vm1').report, null, encode(fromHost('forged-0', 2)));
    expect(collector.reports('vm1').find((e) => e.report.host === 'forged-0')!.report.atUs).toBe(2);
  });
});
