import { describe, expect, it } from 'vitest';
import { TcpFlag } from '../../../lib/codec/messages.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { runConfigSchema, type Mode } from '../../../lib/config/run-config.js';
import { GuestCore } from '../../../services/guest/core.js';
import { guestOptionsFromConfig } from '../../../services/guest/options-from-config.js';
import { activate, assignment } from '../support/supervision.js';
import { message, segment, segmentsOn, VM } from '../replication/support.js';

/** Where a primary guest takes its inbound segments from, and which it accepts. */

const s = subjects(VM);
const HOST = 'host-a';
const hs = s.host(HOST);
const TERM = 3;

function primaryGuest(mode: Mode): GuestCore {
  const config = runConfigSchema.parse({ mode, vmId: VM, seed: 5, guest: { memoryBytes: 1024 * 1024 }, tcp: { sndBufBytes: 64 * 1024 } });
  const g = new GuestCore(guestOptionsFromConfig(config, HOST));
  activate(g, assignment(VM, HOST, 'primary', TERM), { assign: hs.assign('guest') }, 0);
  return g;
}

/** The client's SYN as it leaves the client: no fencing term. */
const clientSyn = () => segment({ seq: 1_000, ack: 0, flags: TcpFlag.SYN, window: 65_535, wscale: 7, term: 0 });
const synAcks = (g: GuestCore, subject: string, term: number) =>
  segmentsOn(g.handle(message(subject, { ...clientSyn(), term }), 1_000), hs.tx).filter((seg) => seg.flags === (TcpFlag.SYN | TcpFlag.ACK));

describe('guest inbound', () => {
  it('remus: takes the client segments straight from the wire, which carry no term, and answers the SYN to its netbuffer', () => {
    const g = primaryGuest('remus');
    expect(g.subscriptions).toContain(s.wireIn);
    expect(g.subscriptions).not.toContain(hs.rx);
    expect(synAcks(g, s.wireIn, 0)).toHaveLength(1);
    expect(g.vm!.stats.staleTermDrops).toBe(0);
  });

  it("spec: takes segments from its acker, and drops one stamped with another term than its own", () => {
    const g = primaryGuest('spec');
    expect(g.subscriptions).toContain(hs.rx);
    expect(g.subscriptions).not.toContain(s.wireIn);
    expect(synAcks(g, hs.rx, TERM - 1)).toHaveLength(0);
    expect(g.vm!.stats.staleTermDrops).toBe(1);
    expect(synAcks(g, hs.rx, TERM)).toHaveLength(1);
  });
});

describe('guest inbound, a message of another type on its wire', () => {
  it('is dropped and counted (the codec decodes each subject as its own type: only a bug sends one)', () => {
    const g = primaryGuest('remus');
    const stray = { type: 'epochEnd' as const, vmId: VM, term: TERM, epoch: 1, txEndSeqs: [], base: false, specStaged: false, local: false };
    expect(segmentsOn(g.handle(message(s.wireIn, stray), 1_000), hs.tx)).toEqual([]);
    expect(g.vm!.stats.unexpectedMessages).toBe(1);
    expect(synAcks(g, s.wireIn, 0)).toHaveLength(1);
  });
});
