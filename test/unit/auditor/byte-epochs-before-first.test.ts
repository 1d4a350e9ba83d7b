import { describe, expect, it } from 'vitest';
import { ByteEpochs } from '../../../services/auditor/byte-epochs.js';
import { A, AuditDriver, B } from './support.js';

describe('ByteEpochs: bytes before the first emitted', () => {
  it('knows no epoch for a byte before the first one emitted', () => {
    const b = new ByteEpochs();
    b.emitted(1, 101, 1);
    expect(b.epochOf(0)).toBeNull();
  });

  it('the auditor flags a released byte that precedes everything the guest emitted', () => {
    const d = AuditDriver.protectedPrimary().emit(A, 1, 1, 1, 100).ack(B, 1, 1).commit(A, 1, 1);
    d.release(A, 1, 1, 0, 1); // byte 0: the SYN's sequence number, never a data byte
    expect(d.rules).toEqual(['byte-never-emitted']);
  });
});
