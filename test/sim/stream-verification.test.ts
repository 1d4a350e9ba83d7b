import { describe, expect, it } from 'vitest';
import { ByteGenerator, StreamVerifier } from '../../services/guest/workload/byte-generator.js';
import type { Segment } from '../../lib/codec/messages.js';
import { sim } from '../support/run.js';

const small = { link: { bandwidthBitsPerSec: 100e6, rttMs: 2 }, durationS: 1, workload: { kind: 'bulk', totalBytes: 2_000_000 } } as const;

describe('every delivered byte is checked against the generator', () => {
  it('verifies a clean bulk transfer byte for byte, to its end', () => {
    const r = sim(small);
    expect(r.streamVerified).toBe(true);
    expect(r.bytesDelivered).toBe(2_000_000);
  });

  it('detects one corrupted byte in one segment on the wire', () => {
    let corrupted = false;
    const r = sim(small, {
      tamper: (subject, msg) => {
        if (corrupted || msg.type !== 'segment' || !subject.endsWith('wire.out') || msg.payload.length === 0 || msg.seq < 500_000) return msg;
        corrupted = true;
        const payload = msg.payload.slice();
        payload[17] = payload[17]! ^ 0xff;
        return { ...msg, payload } satisfies Segment;
      },
    });
    expect(corrupted).toBe(true);
    expect(r.streamVerified).toBe(false);
  });

  it('detects chunks delivered to the application out of order', () => {
    const gen = new ByteGenerator(1, 'test');
    const a = new Uint8Array(1000);
    const b = new Uint8Array(1000);
    gen.fill(a, 0);
    gen.fill(b, 1000);
    const inOrder = new StreamVerifier(gen);
    inOrder.check(a);
    inOrder.check(b);
    expect(inOrder.ok).toBe(true);
    const swapped = new StreamVerifier(gen);
    swapped.check(b);
    swapped.check(a);
    expect(swapped.ok).toBe(false);
    expect(swapped.firstMismatchOffset).toBe(0);
  });
});

describe('request/response workload', () => {
  it('completes requests whose latency is at least one RTT and verifies both streams', () => {
    const r = sim({ link: { bandwidthBitsPerSec: 1e9, rttMs: 5 }, durationS: 2, workload: { kind: 'rr', requestBytes: 100, responseBytes: 20_000 } });
    expect(r.streamVerified).toBe(true);
    expect(r.requestsCompleted).toBeGreaterThan(100);
    expect(r.latencyMsP50!).toBeGreaterThanOrEqual(5);
    // Two round trips at most at steady state: the request, then a 14-segment response in one window.
    expect(r.latencyMsP99!).toBeLessThan(12);
  });
});
