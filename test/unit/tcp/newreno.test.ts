import { describe, expect, it } from 'vitest';
import { NewReno } from '../../../lib/tcp/congestion/newreno.js';

const MSS = 1000;
const IW = 10 * MSS;
const newReno = () => new NewReno({ mssBytes: MSS, initialWindowBytes: IW });
/** A controller in congestion avoidance at `cwndBytes`. */
const inAvoidance = (cwndBytes: number) => {
  const cc = newReno();
  cc.cwndBytes = cwndBytes;
  cc.ssthreshBytes = cwndBytes;
  return cc;
};

describe('NewReno', () => {
  it('starts at the initial window in slow start', () => {
    const cc = newReno();
    expect(cc.cwndBytes).toBe(IW);
    expect(cc.cwndBytes).toBeLessThan(cc.ssthreshBytes);
  });

  it('grows by the bytes ACKed in slow start', () => {
    const cc = newReno();
    cc.onAck(MSS, 0, 0, true);
    cc.onAck(500, 0, 0, true);
    expect(cc.cwndBytes).toBe(IW + 1500);
  });

  it('grows by at most 2·MSS per ACK in slow start (byte counting, L = 2)', () => {
    const cc = newReno();
    cc.onAck(5 * MSS, 0, 0, true);
    expect(cc.cwndBytes).toBe(IW + 2 * MSS);
  });

  it('doubles the window per round trip in slow start when every segment is ACKed', () => {
    const cc = newReno();
    for (let i = 0; i < IW / MSS; i++) cc.onAck(MSS, 0, 0, true);
    expect(cc.cwndBytes).toBe(2 * IW);
  });

  it('grows by one MSS per window of ACKed bytes in congestion avoidance', () => {
    const cc = inAvoidance(20 * MSS);
    for (let round = 1; round <= 10; round++) {
      const w = cc.cwndBytes;
      for (let acked = 0; acked < w; acked += MSS) cc.onAck(MSS, 0, 0, true);
      expect(cc.cwndBytes).toBe(w + MSS);
    }
  });

  it('does not grow in congestion avoidance before a whole window has been ACKed', () => {
    const cc = inAvoidance(20 * MSS);
    for (let i = 0; i < 19; i++) cc.onAck(MSS, 0, 0, true);
    expect(cc.cwndBytes).toBe(20 * MSS);
  });

  it('counts ACKed bytes rather than ACKs in congestion avoidance', () => {
    const cc = inAvoidance(20 * MSS);
    cc.onAck(10 * MSS, 0, 0, true);
    cc.onAck(10 * MSS, 0, 0, true);
    expect(cc.cwndBytes).toBe(21 * MSS);
  });

  it('does not grow in slow start when the sender was not cwnd-limited', () => {
    const cc = newReno();
    cc.onAck(MSS, 0, 0, false);
    expect(cc.cwndBytes).toBe(IW);
  });

  it('does not grow in congestion avoidance when the sender was not cwnd-limited', () => {
    const cc = inAvoidance(20 * MSS);
    for (let i = 0; i < 100; i++) cc.onAck(MSS, 0, 0, false);
    expect(cc.cwndBytes).toBe(20 * MSS);
  });

  it('sets ssthresh to half the flight on fast retransmit and leaves cwnd to the endpoint', () => {
    const cc = newReno();
    cc.onFastRetransmit(30 * MSS);
    expect(cc.ssthreshBytes).toBe(15 * MSS);
    expect(cc.cwndBytes).toBe(IW);
  });

  it('sets ssthresh to no less than 2·MSS on fast retransmit', () => {
    const cc = newReno();
    cc.onFastRetransmit(3 * MSS);
    expect(cc.ssthreshBytes).toBe(2 * MSS);
  });

  it('sets cwnd to min(ssthresh, max(flight, MSS) + MSS) when recovery ends (RFC 6582 option 1)', () => {
    const cc = newReno();
    cc.onFastRetransmit(30 * MSS);
    cc.onRecoveryExit(20 * MSS);
    expect(cc.cwndBytes).toBe(15 * MSS);
    cc.onRecoveryExit(4 * MSS);
    expect(cc.cwndBytes).toBe(5 * MSS);
    cc.onRecoveryExit(0);
    expect(cc.cwndBytes).toBe(2 * MSS);
  });

  it('sets ssthresh to half the flight and cwnd to one MSS on timeout', () => {
    const cc = newReno();
    cc.onTimeout(40 * MSS, 0, true);
    expect(cc.ssthreshBytes).toBe(20 * MSS);
    expect(cc.cwndBytes).toBe(MSS);
  });

  it('sets ssthresh to no less than 2·MSS on timeout', () => {
    const cc = newReno();
    cc.onTimeout(MSS, 0, true);
    expect(cc.ssthreshBytes).toBe(2 * MSS);
  });

  it('forgets bytes counted toward growth when a loss is detected', () => {
    const cc = inAvoidance(20 * MSS);
    for (let i = 0; i < 19; i++) cc.onAck(MSS, 0, 0, true);
    cc.onFastRetransmit(40 * MSS); // ssthresh 20 MSS
    cc.onRecoveryExit(40 * MSS); // cwnd 20 MSS
    cc.onAck(MSS, 0, 0, true);
    expect(cc.cwndBytes).toBe(20 * MSS);
  });

  it('restarts from at most the initial window after idle', () => {
    const cc = inAvoidance(40 * MSS);
    cc.onIdleRestart();
    expect(cc.cwndBytes).toBe(IW);
  });
});
