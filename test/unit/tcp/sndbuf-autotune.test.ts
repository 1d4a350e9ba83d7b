import { describe, expect, it } from 'vitest';
import { SnapshotError } from '../../../lib/errors.js';
import { TcpEndpoint } from '../../../lib/tcp/endpoint.js';
import { defaultTcpOptions } from '../../../lib/tcp/options.js';
import { TcpPair } from './tcp-pair.js';

/*
 * The send buffer grows with the window as Linux's does (tcp_sndbuf_expand,
 * tcp_init_buffer_space, tcp_check_space): at MSS 1448 a segment's memory is
 * 4 KiB, so the buffer holds 2 × max(10, cwnd) × 4 KiB, from 80 KiB at
 * establishment up to sndBufBytes, and never shrinks.
 */
const MSS = 1448;
const SEGMENT_MEMORY_BYTES = 4096;
const MiB = 1024 * 1024;
const autotuned = { mssBytes: MSS, sndBufBytes: 4 * MiB, rcvBufBytes: 6 * MiB };
const pair = (a: object = {}, oneWayUs = 5_000) => new TcpPair({ a: { ...autotuned, sndBufAutotune: true, ...a }, b: { ...autotuned } }, oneWayUs);

const expected = (cwndBytes: number, capBytes = 4 * MiB) => Math.min(capBytes, 2 * Math.max(10, Math.ceil(cwndBytes / MSS)) * SEGMENT_MEMORY_BYTES);

/** Runs `durationUs`, the application on a writing whatever fits every 100 µs; calls `check` after every step. */
function bulk(p: TcpPair, durationUs: number, check: () => void = () => undefined): void {
  const end = p.nowUs + durationUs;
  // Each round moves the clock 100 µs on; the steps of a round are bounded as runUntil bounds its own.
  for (let rounds = 0; p.nowUs < end; rounds++) {
    if (rounds > durationUs / 100 + 1) throw new Error('runaway: the clock did not move on');
    p.write('a', Number.MAX_SAFE_INTEGER);
    const until = Math.min(end, p.nowUs + 100);
    for (let steps = 0; p.step(until); steps++) {
      if (steps > 1_000_000) throw new Error('runaway loop');
      check();
    }
    p.runUntil(until);
  }
}

describe('send buffer autotuning', () => {
  it('starts at 16 KiB and holds 2 × 10 segments of memory (80 KiB) once established', () => {
    const p = pair();
    expect(p.a.sndBufLimitBytes).toBe(16 * 1024);
    p.open();
    expect(p.a.sndBufLimitBytes).toBe(20 * SEGMENT_MEMORY_BYTES);
    expect(p.write('a', 4 * MiB)).toBe(20 * SEGMENT_MEMORY_BYTES);
    expect(p.write('a', 1)).toBe(0);
  });

  it('grows only when an ACK leaves the window not full, to 2 × cwnd segments, and reaches sndBufBytes on a long fat path', () => {
    const p = pair({ sndBufBytes: MiB }, 20_000).open();
    const limits: number[] = [p.a.sndBufLimitBytes];
    bulk(p, 400_000, () => {
      const limit = p.a.sndBufLimitBytes;
      if (limit === limits.at(-1)) return;
      // It grew in this step: the window was not full after sending, and the limit is the window's.
      expect(p.a.flightBytes).toBeLessThan(p.a.cc.cwndBytes);
      expect(limit).toBe(expected(p.a.cc.cwndBytes, MiB));
      limits.push(limit);
    });
    // 80 KiB, a step each time the buffer ran dry, then the cap.
    expect(limits.length).toBeGreaterThanOrEqual(3);
    expect(limits).toEqual([...limits].sort((x, y) => x - y));
    expect(limits.at(-1)).toBe(MiB);
  });

  it('tells the application when it grew, so a writer that found it full writes again', () => {
    const p = pair().open();
    p.write('a', 4 * MiB);
    const freedBefore = p.io.a.sendSpaceFreedCalls;
    const limitBefore = p.a.sndBufLimitBytes;
    p.runFor(50_000);
    expect(p.a.sndBufLimitBytes).toBeGreaterThan(limitBefore);
    expect(p.io.a.sendSpaceFreedCalls).toBeGreaterThan(freedBefore);
    const roomBytes = p.a.sndBufLimitBytes - p.a.sendBuffer.usedBytes;
    expect(roomBytes).toBeGreaterThan(0);
    expect(p.write('a', 4 * MiB)).toBe(roomBytes);
  });

  it('does not shrink when a loss halves the window', () => {
    const p = pair({ congestionControl: 'newreno' }).open();
    bulk(p, 40_000);
    const grown = p.a.sndBufLimitBytes;
    expect(grown).toBeGreaterThan(expected(0));
    expect(grown).toBeLessThan(4 * MiB);
    let dropped = false;
    p.filter = (from, seg) => {
      if (!dropped && from === 'a' && seg.payload.length > 0) {
        dropped = true;
        return null;
      }
      return seg;
    };
    const cwndBefore = p.a.cc.cwndBytes;
    let lowestCwndBytes = cwndBefore;
    bulk(p, 40_000, () => {
      lowestCwndBytes = Math.min(lowestCwndBytes, p.a.cc.cwndBytes);
      expect(p.a.sndBufLimitBytes).toBeGreaterThanOrEqual(grown);
    });
    expect(p.a.stats.fastRetransmits).toBe(1);
    // The window came down to where it would size a smaller buffer than the one kept.
    expect(lowestCwndBytes).toBeLessThan(cwndBefore);
    expect(expected(lowestCwndBytes)).toBeLessThan(grown);
  });

  it('is capped by sndBufBytes', () => {
    const p = pair({ sndBufBytes: 64 * 1024 }).open();
    expect(p.a.sndBufLimitBytes).toBe(64 * 1024);
    bulk(p, 100_000);
    expect(p.a.sndBufLimitBytes).toBe(64 * 1024);
  });

  it('off: the whole of sndBufBytes from the start, and no limit in the snapshot', () => {
    const p = pair({ sndBufAutotune: false });
    expect(p.a.sndBufLimitBytes).toBe(4 * MiB);
    p.open();
    expect(p.write('a', 8 * MiB)).toBe(4 * MiB);
    bulk(p, 50_000);
    expect(p.a.sndBufLimitBytes).toBe(4 * MiB);
    expect(p.a.snapshot()).not.toHaveProperty('sndBufLimitBytes');
  });

  it('a snapshot carries the limit, and one over the capacity or under what the buffer holds is refused', () => {
    const p = pair().open();
    bulk(p, 30_000);
    const snapshot = p.a.snapshot();
    expect(snapshot.sndBufLimitBytes).toBe(p.a.sndBufLimitBytes);
    const fresh = () => new TcpEndpoint(defaultTcpOptions({ ...autotuned, sndBufAutotune: true }), p.a.identity, p.io.a);
    const restored = fresh();
    restored.restore(JSON.parse(JSON.stringify(snapshot)));
    expect(restored.sndBufLimitBytes).toBe(snapshot.sndBufLimitBytes);
    expect(() => fresh().restore({ ...snapshot, sndBufLimitBytes: 4 * MiB + 1 })).toThrow(SnapshotError);
    const used = snapshot.sendBuffer.endSeq - snapshot.sendBuffer.startSeq;
    expect(used).toBeGreaterThan(1);
    expect(() => fresh().restore({ ...snapshot, sndBufLimitBytes: used - 1 })).toThrow(SnapshotError);
  });
});
