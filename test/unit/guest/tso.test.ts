import { describe, expect, it } from 'vitest';
import { TcpFlag } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { runConfigSchema, type Mode } from '../../../lib/config/run-config.js';
import { GuestCore } from '../../../services/guest/core.js';
import { guestOptionsFromConfig } from '../../../services/guest/options-from-config.js';
import { activate, assignment } from '../support/supervision.js';
import { message, segment, segmentsOn, VM } from '../replication/support.js';

/** Which guests hand their NIC TSO segments: those whose segments end at the acker, which re-segments them for the wire. */

const s = subjects(VM);
const HOST = 'host-a';
const hs = s.host(HOST);
const TERM = 3;
const MSS = 1448;

/** The payload sizes of the guest's first flight after the handshake, on the subject its data goes to. */
function firstFlight(mode: Mode, tsoBytes?: number): number[] {
  const config = runConfigSchema.parse({ mode, vmId: VM, seed: 5, guest: { memoryBytes: 1024 * 1024, ...(tsoBytes === undefined ? {} : { tsoBytes }) }, tcp: { sndBufBytes: 64 * 1024 } });
  const g = new GuestCore(guestOptionsFromConfig(config, HOST));
  activate(g, assignment(VM, HOST, 'primary', TERM), { assign: hs.assign('guest') }, 0);
  const speculative = mode !== 'remus';
  const [inbound, term, dataSubject] = speculative ? [hs.rx, TERM, hs.txData] : [s.wireIn, 0, hs.tx];
  const synAck = segmentsOn(g.handle(message(inbound, segment({ seq: 1_000, ack: 0, flags: TcpFlag.SYN, window: 65_535, wscale: 7, term })), 1_000), hs.tx)[0]!;
  const ack = segment({ seq: 1_001, ack: synAck.seq + 1, flags: TcpFlag.ACK, window: 65_535, term });
  return segmentsOn(g.handle(message(inbound, ack), 2_000), dataSubject)
    .filter((seg) => seg.payload.length > 0)
    .map((seg) => seg.payload.length);
}

describe('guest TSO', () => {
  it('spec and spec-racc: the first flight (ten segments of window) leaves as one TSO segment', () => {
    expect(firstFlight('spec')).toEqual([10 * MSS]);
    // RACC's window is open: as much as the send buffer holds, in segments of 45 MSS (64 KiB rounded down).
    expect(firstFlight('spec-racc').every((len) => len <= 45 * MSS)).toBe(true);
    expect(Math.max(...firstFlight('spec-racc'))).toBe(45 * MSS);
  });

  it('remus: one MSS per segment, since they meet the link as they are', () => {
    expect(firstFlight('remus')).toEqual(Array(10).fill(MSS));
  });

  it('spec with tsoBytes below two MSS: one MSS per segment', () => {
    expect(firstFlight('spec', 0)).toEqual(Array(10).fill(MSS));
  });
});
