import { congestionSnapshotSchema, expectSnapshot, parseSnapshot, type RaccSnapshot } from '../snapshot.js';
import type { CongestionControl, CongestionParams, CongestionSnapshot } from './types.js';

/**
 * Replication-aware congestion control for a guest whose segments are ACKed
 * speculatively by the host. The path guest → acker is a host-local buffer:
 * its only limit is the window the acker advertises (free speculative buffer),
 * and nothing on it is congestion. So RACC has no slow start, no slow-start
 * restart and no loss-driven reduction: cwnd never limits the sender, which
 * fills the speculative buffer as fast as the window allows and so puts its
 * segments into the earliest checkpoint. The real network is protected by the
 * acker's own wire-side congestion control.
 */
export const RACC_WINDOW_BYTES = 1 << 30;

/**
 * RACC's retransmission timer on the local path: SRTT plus the last round's
 * largest deviation, at least this (lib/tcp/rtt.ts), never backed off. A segment the acker refused (a full buffer under the
 * paper's window, a lost bus message) is retried within a millisecond or
 * two of the buffer freeing, where a standard TCP waits ≥ 200 ms and then
 * twice as long each time.
 */
export const RACC_MIN_RTO_US = 1_000;

export class Racc implements CongestionControl {
  readonly name = 'racc' as const;
  cwndBytes = RACC_WINDOW_BYTES;
  ssthreshBytes = RACC_WINDOW_BYTES;

  constructor(readonly params: CongestionParams) {}

  onAck(ackedBytes: number): void {
    // Open: stays open. After a timeout, doubles per local round trip (microseconds) back to open, so a probe that
    // finds the buffer with room refills it within a few round trips without resending a whole window into a buffer
    // that may have freed one segment.
    this.cwndBytes = Math.min(RACC_WINDOW_BYTES, this.cwndBytes + ackedBytes);
  }

  onFastRetransmit(): void {
    // A gap on the local path is a lost bus message, not congestion.
    this.ssthreshBytes = RACC_WINDOW_BYTES;
  }

  onRecoveryExit(): void {
    this.cwndBytes = RACC_WINDOW_BYTES;
  }

  onTimeout(): void {
    // One segment probes the path. Resending a whole open window after a stall (a starved host, a congested bus, a
    // full buffer under the paper's window) would double the load on what stalled (a false failover over NATS).
    this.cwndBytes = this.params.mssBytes;
  }

  onIdleRestart(): void {}

  snapshot(): RaccSnapshot {
    return { name: this.name, cwndBytes: this.cwndBytes, ssthreshBytes: this.ssthreshBytes };
  }

  restore(snapshot: CongestionSnapshot): void {
    const s = parseSnapshot(congestionSnapshotSchema, snapshot, 'congestion control');
    expectSnapshot(s.name === this.name, `a ${s.name} snapshot cannot restore ${this.name}`);
    this.cwndBytes = s.cwndBytes;
    this.ssthreshBytes = s.ssthreshBytes;
  }
}
