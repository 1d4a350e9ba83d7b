import { describe, expect, it } from 'vitest';
import { ETHERNET_FRAMING_BYTES, TCP_IP_HEADER_BYTES } from '../../lib/link/index.js';
import { sim } from '../support/run.js';

const GBIT = 1e9;

describe('native TCP against analysis', () => {
  it('NewReno, without HyStart, overshoots in slow start: its own NIC pushes back (no loss, the ceiling); a router queue instead drops the overshoot and SACK recovery repairs it (≥ 85%)', () => {
    const ceiling = GBIT * (1448 / (1448 + TCP_IP_HEADER_BYTES + ETHERNET_FRAMING_BYTES));
    const config = { link: { bandwidthBitsPerSec: GBIT, rttMs: 1 }, tcp: { congestionControl: 'newreno' as const }, durationS: 10 };
    const local = sim(config);
    expect(local.streamVerified).toBe(true);
    expect([local.linkQueueDrops, local.retransmits]).toEqual([0, 0]);
    expect(local.goodputBitsPerSec / ceiling).toBeGreaterThanOrEqual(0.99);
    const router = sim({ ...config, link: { ...config.link, localBackpressure: false } });
    expect(router.streamVerified).toBe(true);
    expect(router.linkQueueDrops).toBeGreaterThan(0);
    expect(router.goodputBitsPerSec).toBeGreaterThanOrEqual(0.85 * ceiling);
    // Goodput can never exceed the payload share of the link.
    expect(router.goodputBitsPerSec).toBeLessThanOrEqual(GBIT * (1448 / (1448 + TCP_IP_HEADER_BYTES)));
  });

  it.each([1000, 3000])('CUBIC with HyStart (the default) reaches 97–100% of the Ethernet ceiling (941 Mbit/s) at 1 Gbit/s, 1 ms, with a %i-packet queue, without a loss', (queuePackets) => {
    const r = sim({ link: { bandwidthBitsPerSec: GBIT, rttMs: 1, queueBytes: queuePackets * 1500 }, durationS: 10 });
    const ceiling = GBIT * (1448 / (1448 + TCP_IP_HEADER_BYTES + ETHERNET_FRAMING_BYTES));
    expect(r.streamVerified).toBe(true);
    expect(r.goodputBitsPerSec / ceiling).toBeGreaterThanOrEqual(0.97);
    expect(r.goodputBitsPerSec).toBeLessThanOrEqual(ceiling);
    expect(r.retransmits).toBe(0);
  });

  it.each([10, 30, 100])('pushes back instead of dropping at a %i-packet device queue (TCP small queues, a qdisc pushing back): no loss, 97–100% of the ceiling', (queuePackets) => {
    const ceiling = GBIT * (1448 / (1448 + TCP_IP_HEADER_BYTES + ETHERNET_FRAMING_BYTES));
    const config = { link: { bandwidthBitsPerSec: GBIT, rttMs: 1, queueBytes: queuePackets * 1500 }, durationS: 3 };
    const r = sim(config);
    expect(r.streamVerified).toBe(true);
    expect([r.linkQueueDrops, r.retransmits]).toEqual([0, 0]);
    expect(r.goodputBitsPerSec / ceiling).toBeGreaterThanOrEqual(0.97);
    // The same queue as a router's (no local backpressure) drops the slow start's overshoot.
    const dropping = sim({ ...config, link: { ...config.link, localBackpressure: false } });
    expect(dropping.streamVerified).toBe(true);
    expect(dropping.linkQueueDrops).toBeGreaterThan(0);
  });

  it('the acker’s wire side in spec pushes back at a 10-packet device queue as well: no loss, the paper point’s goodput', () => {
    const config = { mode: 'spec' as const, epochMs: 25, link: { bandwidthBitsPerSec: GBIT, rttMs: 1, queueBytes: 10 * 1500 }, durationS: 1 };
    const r = sim(config);
    expect(r.streamVerified).toBe(true);
    expect([r.linkQueueDrops, r.retransmits]).toEqual([0, 0]);
    const deep = sim({ ...config, link: { ...config.link, queueBytes: 1000 * 1500 } });
    expect(r.goodputBitsPerSec / deep.goodputBitsPerSec).toBeGreaterThanOrEqual(0.99);
    const dropping = sim({ ...config, link: { ...config.link, localBackpressure: false } });
    expect(dropping.linkQueueDrops).toBeGreaterThan(0);
  });

  it('is window-limited to window/RTT with a 64 KiB window and no scaling at 100 Mbit/s, 50 ms', () => {
    const windowBytes = 65_535;
    const rttMs = 50;
    const r = sim({ link: { bandwidthBitsPerSec: 100e6, rttMs }, tcp: { rcvBufBytes: windowBytes, windowScaling: false }, durationS: 20 });
    const expected = (windowBytes * 8) / (rttMs / 1000);
    expect(r.streamVerified).toBe(true);
    expect(Math.abs(r.goodputBitsPerSec - expected) / expected).toBeLessThan(0.05);
  });
});
