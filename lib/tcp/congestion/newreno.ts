import { congestionSnapshotSchema, expectSnapshot, parseSnapshot, type NewRenoSnapshot } from '../snapshot.js';
import { slowStartStepMaxBytes, type CongestionControl, type CongestionParams, type CongestionSnapshot } from './types.js';

/** RFC 5681 slow start and congestion avoidance with RFC 3465 byte counting (L = 2). */
export class NewReno implements CongestionControl {
  readonly name = 'newreno' as const;
  cwndBytes: number;
  ssthreshBytes = Number.MAX_SAFE_INTEGER;
  #bytesAckedInCa = 0;

  constructor(readonly params: CongestionParams) {
    this.cwndBytes = params.initialWindowBytes;
  }

  onAck(ackedBytes: number, _nowUs: number, _srttUs: number, cwndLimited: boolean): void {
    if (!cwndLimited) return; // RFC 7661: no growth the sender did not use
    const mss = this.params.mssBytes;
    if (this.cwndBytes < this.ssthreshBytes) {
      this.cwndBytes += Math.min(ackedBytes, slowStartStepMaxBytes(this.params));
      return;
    }
    this.#bytesAckedInCa += ackedBytes;
    if (this.#bytesAckedInCa >= this.cwndBytes) {
      this.#bytesAckedInCa -= this.cwndBytes;
      this.cwndBytes += mss;
    }
  }

  onFastRetransmit(flightBytes: number): void {
    this.ssthreshBytes = Math.max(flightBytes / 2, 2 * this.params.mssBytes);
    this.#bytesAckedInCa = 0;
  }

  onRecoveryExit(flightBytes: number): void {
    // RFC 6582 §3.2 step 3, option (1).
    this.cwndBytes = Math.min(this.ssthreshBytes, Math.max(flightBytes, this.params.mssBytes) + this.params.mssBytes);
  }

  onTimeout(flightBytes: number, _nowUs: number, reduceSsthresh: boolean): void {
    if (reduceSsthresh) this.ssthreshBytes = Math.max(flightBytes / 2, 2 * this.params.mssBytes);
    this.cwndBytes = this.params.mssBytes; // loss window
    this.#bytesAckedInCa = 0;
  }

  onIdleRestart(): void {
    this.cwndBytes = Math.min(this.cwndBytes, this.params.initialWindowBytes);
  }

  snapshot(): NewRenoSnapshot {
    return { name: this.name, cwndBytes: this.cwndBytes, ssthreshBytes: this.ssthreshBytes, bytesAckedInCa: this.#bytesAckedInCa };
  }

  restore(snapshot: CongestionSnapshot): void {
    const s = parseSnapshot(congestionSnapshotSchema, snapshot, 'congestion control');
    expectSnapshot(s.name === this.name, `a ${s.name} snapshot cannot restore ${this.name}`);
    this.cwndBytes = s.cwndBytes;
    this.ssthreshBytes = s.ssthreshBytes;
    this.#bytesAckedInCa = s.bytesAckedInCa;
  }
}
