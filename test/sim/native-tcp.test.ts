import { describe, expect, it } from 'vitest';
import { ETHERNET_FRAMING_BYTES, TCP_IP_HEADER_BYTES } from '../../lib/link/index.js';
import { sim } from '../support/run.js';

const GBIT = 1e9;

describe('native TCP against analysis', () => {
  it('fills a 1 Gbit/s, 1 ms link to at least 85% of the Ethernet ceiling with large windows (NewReno: without HyStart, slow start overshoots into the queue and SACK recovery repairs the burst of losses)', () => {
    const r = sim({ link: { bandwidthBitsPerSec: GBIT, rttMs: 1 }, tcp: { congestionControl: 'newreno' }, durationS: 10 });
    expect(r.streamVerified).toBe(true);
    expect(r.goodputBitsPerSec).toBeGreaterThanOrEqual(0.85 * GBIT * (1448 / (1448 + TCP_IP_HEADER_BYTES + ETHERNET_FRAMING_BYTES)));
    // Goodput can never exceed the payload share of the link.
    expect(r.goodputBitsPerSec).toBeLessThanOrEqual(GBIT * (1448 / (1448 + TCP_IP_HEADER_BYTES)));
  });

  it.each([1000, 3000])('CUBIC with HyStart (the default) reaches 97–100% of the Ethernet ceiling (941 Mbit/s) at 1 Gbit/s, 1 ms, with a %i-packet queue, without a loss', (queuePackets) => {
    const r = sim({ link: { bandwidthBitsPerSec: GBIT, rttMs: 1, queueBytes: queuePackets * 1500 }, durationS: 10 });
    const ceiling = GBIT * (1448 / (1448 + TCP_IP_HEADER_BYTES + ETHERNET_FRAMING_BYTES));
    expect(r.streamVerified).toBe(true);
    expect(r.goodputBitsPerSec / ceiling).toBeGreaterThanOrEqual(0.97);
    expect(r.goodputBitsPerSec).toBeLessThanOrEqual(ceiling);
    expect(r.retransmits).toBe(0);
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
