import { describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import { decodeBatch, encodeBatch, MAX_BATCH_MESSAGES } from '../../../lib/codec/batch.js';
import { DecodeError } from '../../../lib/errors.js';
import { subjects } from '../../../lib/codec/subjects.js';
import { runConfigSchema } from '../../../lib/config/run-config.js';
import type { EpochBarrier } from '../../../lib/codec/messages.js';
import { LinkGate } from '../../../lib/runtime/nats/link-gate.js';
import { natsShellLimitsSchema } from '../../../lib/runtime/nats/options.js';
import { CLIENT_LINK_GATE_HEADROOM, clientLinkFor, clientLinkGateBytesFor, wireBytesOf } from '../../../lib/link/link-direction.js';
import { decodeSegment, encodeSegment, MAX_SEGMENT_PAYLOAD_BYTES } from '../../../lib/codec/codec.js';
import { tcpOptionsSchema } from '../../../lib/tcp/options.js';
import { CheckpointerCore } from '../../../services/checkpointer/core.js';
import { checkpointerOptionsFromConfig } from '../../../services/checkpointer/options-from-config.js';
import { PrimaryCheckpointer } from '../../../services/checkpointer/primary.js';
import { GuestCore } from '../../../services/guest/core.js';
import { StandbyImage } from '../../../services/guest/standby.js';
import { GuestVm } from '../../../services/guest/vm.js';
import { guestOptionsFromConfig } from '../../../services/guest/options-from-config.js';
import { PAUSED_INBOX_MAX } from '../../../services/guest/vm.js';
import { ROLE_HISTORY_ENTRIES } from '../../../lib/results/role-history.js';
import { activate, assignment } from '../support/supervision.js';
import { message, segment, timer, VM } from './support.js';

/** Each bounded queue driven to its bound: what happens there is what its documentation says. */

const s = subjects(VM);
const HOST = 'host-a';
const hs = s.host(HOST);

describe('a bus batch holds at most MAX_BATCH_MESSAGES messages', () => {
  const parts = (n: number) => Array.from({ length: n }, (_, i) => Uint8Array.of(i & 0xff));

  it('decodes a batch of exactly the bound', () => {
    expect(decodeBatch(encodeBatch(parts(MAX_BATCH_MESSAGES)))).toHaveLength(MAX_BATCH_MESSAGES);
  });

  it('refuses one more as malformed input (DecodeError), whatever its size', () => {
    expect(() => decodeBatch(encodeBatch(parts(MAX_BATCH_MESSAGES + 1)))).toThrow(DecodeError);
  });
});

describe('a link gate holds at most maxPending messages', () => {
  it('drops and counts what arrives beyond the bound, delivers what it held in order, then takes messages again', async () => {
    const MAX = 50;
    let nowUs = 0;
    const clock = { nowUs: () => nowUs, toUnixUs: (r: number) => r };
    const delivered: number[] = [];
    const gate = new LinkGate({ transit: (_msg, atUs) => atUs + 1_000 }, MAX, Infinity, clock, (_subject, msg) => delivered.push((msg as { seq: number }).seq));
    for (let i = 0; i < MAX + 7; i++) gate.offer('x', segment({ seq: i }));
    expect(gate.pending).toBe(MAX);
    expect(gate.counters.overflowDrops).toBe(7);
    nowUs = 2_000; // the link delay has passed: the next poll hands everything on
    for (let i = 0; i < 20 && delivered.length < MAX; i++) await new Promise((r) => setTimeout(r, 2));
    expect(delivered).toEqual(Array.from({ length: MAX }, (_, i) => i));
    gate.offer('x', segment({ seq: 1_000 }));
    expect(gate.counters.accepted).toBe(MAX + 1);
    gate.stop();
  });
});

describe('a link gate holds at most maxPendingBytes bytes', () => {
  it('drops and counts a message that would take it past the bound, whatever the message bound, then takes messages again once it delivered', async () => {
    const PAYLOAD_BYTES = 10_000;
    const MESSAGE_BYTES = wireBytesOf(segment({ payload: new Uint8Array(PAYLOAD_BYTES) }));
    const MAX_BYTES = 5 * MESSAGE_BYTES + 100;
    let nowUs = 0;
    const clock = { nowUs: () => nowUs, toUnixUs: (r: number) => r };
    const delivered: number[] = [];
    let transits = 0;
    const hop = { transit: (_msg: unknown, atUs: number) => (transits++, atUs + 1_000) };
    const gate = new LinkGate(hop, 1_000_000, MAX_BYTES, clock, (_subject, msg) => delivered.push((msg as { seq: number }).seq));
    for (let i = 0; i < 8; i++) gate.offer('x', segment({ seq: i, payload: new Uint8Array(PAYLOAD_BYTES) }));
    expect(gate.pending).toBe(5);
    expect(gate.pendingBytes).toBe(5 * MESSAGE_BYTES);
    expect(gate.counters).toMatchObject({ accepted: 5, overflowDrops: 3, overflowByteDrops: 3, maxPendingBytes: 5 * MESSAGE_BYTES });
    // A refused message never took the link's time.
    expect(transits).toBe(5);
    // A smaller one still fits in what is left.
    gate.offer('x', segment({ seq: 100 }));
    expect(gate.pending).toBe(6);
    nowUs = 2_000;
    for (let i = 0; i < 20 && delivered.length < 6; i++) await new Promise((r) => setTimeout(r, 2));
    expect(delivered).toEqual([0, 1, 2, 3, 4, 100]);
    expect(gate.pendingBytes).toBe(0);
    gate.offer('x', segment({ seq: 1_000, payload: new Uint8Array(PAYLOAD_BYTES) }));
    expect(gate.counters.accepted).toBe(7);
    gate.stop();
  });

  it("bounds the client's down link under remus with a paced plug (no byte bound of its own) far below what max_payload messages would reach, and above what the link holds normally", () => {
    const config = runConfigSchema.parse({ mode: 'remus', seed: 3 });
    expect(clientLinkFor(config, 'down').options.queueBytes).toBe(Infinity); // the simulator's link is unchanged
    const gateBytes = clientLinkGateBytesFor(config, 'down');
    const oneWayBytes = (config.link.bandwidthBitsPerSec / 8) * (config.link.rttMs / 2 / 1_000);
    expect(gateBytes).toBeGreaterThanOrEqual(CLIENT_LINK_GATE_HEADROOM * (oneWayBytes + 2 * config.buffers.heldBytesMax + config.tcp.sndBufBytes));
    expect(gateBytes).toBeLessThan(100 * 1024 * 1024);
    // The message bound alone: 100,000 messages of 1 MiB.
    expect(gateBytes).toBeLessThan((natsShellLimitsSchema.parse({}).maxPendingDeliveries * 1024 * 1024) / 1_000);
    // Where the link's drop-tail queue is the bound, the gate's is a multiple of it.
    expect(clientLinkGateBytesFor(config, 'up')).toBe(Math.ceil(CLIENT_LINK_GATE_HEADROOM * (oneWayBytes + config.link.queueBytes)));
    expect(natsShellLimitsSchema.parse({}).maxPendingDeliveryBytes).toBeGreaterThanOrEqual(2 * 1024 ** 3);
  });
});

describe('a segment carries at most MAX_SEGMENT_PAYLOAD_BYTES (an IPv4 packet less its headers)', () => {
  it('decodes a segment of the largest MSS the config allows, and refuses one byte more as malformed input (DecodeError)', () => {
    // The largest IPv4 packet less its IP and TCP headers.
    expect(MAX_SEGMENT_PAYLOAD_BYTES).toBe(65_535 - 20 - 20);
    expect(tcpOptionsSchema.parse({ mssBytes: MAX_SEGMENT_PAYLOAD_BYTES }).mssBytes).toBe(MAX_SEGMENT_PAYLOAD_BYTES);
    expect(() => tcpOptionsSchema.parse({ mssBytes: MAX_SEGMENT_PAYLOAD_BYTES + 1 })).toThrow(ZodError);
    const largest = segment({ payload: new Uint8Array(MAX_SEGMENT_PAYLOAD_BYTES).fill(7) });
    expect(decodeSegment(encodeSegment(largest)).payload.length).toBe(MAX_SEGMENT_PAYLOAD_BYTES);
    expect(() => decodeSegment(encodeSegment(segment({ payload: new Uint8Array(MAX_SEGMENT_PAYLOAD_BYTES + 1) })))).toThrow(DecodeError);
    expect(() => decodeSegment(encodeSegment(segment({ payload: new Uint8Array(1024 * 1024 - 100) })))).toThrow(DecodeError);
  });
});

describe('a paused guest queues at most PAUSED_INBOX_MAX inputs', () => {
  it('drops and counts messages beyond the bound, keeps its timers, and runs on after the resume', () => {
    const config = runConfigSchema.parse({ mode: 'spec', seed: 3, guest: { memoryBytes: 1024 * 1024, appDirtyPagesPerSec: 2000 }, tcp: { sndBufBytes: 64 * 1024 } });
    const g = new GuestCore(guestOptionsFromConfig(config, HOST));
    activate(g, assignment(VM, HOST, 'primary', 1), { assign: hs.assign('guest') }, 0);
    const barrier: EpochBarrier = { type: 'epochBarrier', vmId: VM, term: 1, epoch: 1, base: false, stagedSources: 0, joinSeq: 0, local: false };
    g.handle(message(hs.epoch, barrier), 1_000);
    const vm = g.vm!;
    expect(vm.paused).toBe(true);
    // Segments for a connection the guest does not have: it would ignore them anyway once it runs.
    for (let i = 0; i < PAUSED_INBOX_MAX + 3; i++) g.handle(message(hs.rx, segment({ term: 1, seq: i, connId: 99 })), 1_001);
    expect(vm.stats.inputsDroppedWhilePaused).toBe(3);
    // Timers are not messages: one due while paused still waits for the resume rather than being lost.
    g.handle(timer('app.dirty'), 1_002);
    expect(vm.stats.inputsDroppedWhilePaused).toBe(3);
    g.handle(timer('guest.resume'), 10_000);
    expect(vm.paused).toBe(false);
  });
});

describe('a guest that changes roles keeps the numbers of what it dropped, not the images', () => {
  it('holds at most one VM and one standby image and ROLE_HISTORY_ENTRIES entries of each, however many role changes, and every one is counted', () => {
    const config = runConfigSchema.parse({ mode: 'spec', seed: 3, guest: { memoryBytes: 1024 * 1024, appDirtyPagesPerSec: 2000 }, tcp: { sndBufBytes: 64 * 1024 } });
    const g = new GuestCore(guestOptionsFromConfig(config, HOST));
    const CYCLES = 3 * ROLE_HISTORY_ENTRIES;
    let seq = 0;
    let dropped = 0;
    const assign = (role: 'primary' | 'backup' | 'spare', atUs: number) => g.handle(message(hs.assign('guest'), assignment(VM, HOST, role, 1, { seq: ++seq })), atUs);
    activate(g, assignment(VM, HOST, 'spare', 1, { seq: ++seq }), { assign: hs.assign('guest') }, 0);
    for (let i = 0; i < CYCLES; i++) {
      assign('backup', 1_000 * (3 * i + 1));
      assign('spare', 1_000 * (3 * i + 2));
      assign('primary', 1_000 * (3 * i + 3));
      g.handle(timer('app.dirty'), 1_000 * (3 * i + 3) + 1);
      // A segment for a connection it does not have: each VM drops and counts its own.
      for (let k = 0; k <= i % 3; k++) g.handle(message(hs.rx, segment({ term: 1, seq: k, connId: 99 })), 1_000 * (3 * i + 3) + 1);
      dropped += g.vm!.stats.unknownConnectionDrops;
      assign('spare', 1_000 * (3 * i + 3) + 2);
    }
    assign('primary', 1_000_000);
    expect(g.history.standbys).toHaveLength(ROLE_HISTORY_ENTRIES);
    expect(g.history.vms).toHaveLength(ROLE_HISTORY_ENTRIES);
    expect(g.history.standbys.filter((x) => x instanceof StandbyImage)).toHaveLength(0);
    expect(g.history.vms.filter((x) => x instanceof GuestVm)).toEqual([g.vm]);
    // Every dropped VM is still counted, in an entry of its own or in the sum of the oldest ones.
    expect(dropped).toBe(2 * CYCLES);
    expect(g.history.vms.reduce((n, vm) => n + vm.stats.unknownConnectionDrops, 0)).toBe(dropped);
  });
});

describe('a checkpointer keeps the numbers of the primary terms it ended, not their staged data', () => {
  it('holds one live primary side and ROLE_HISTORY_ENTRIES entries whatever the number of terms, and counts every term', () => {
    const config = runConfigSchema.parse({ mode: 'spec', seed: 3 });
    const c = new CheckpointerCore(checkpointerOptionsFromConfig(config, HOST));
    let seq = 0;
    activate(c, assignment(VM, HOST, 'spare', 1, { seq: ++seq }), { assign: hs.assign('checkpointer') }, 0);
    const TERMS = 3 * ROLE_HISTORY_ENTRIES;
    for (let term = 1; term <= TERMS; term++) {
      c.handle(message(hs.assign('checkpointer'), assignment(VM, HOST, 'primary', term, { seq: ++seq, peerHost: 'host-b' })), 1_000 * term);
      if (term < TERMS) c.handle(message(hs.assign('checkpointer'), assignment(VM, HOST, 'spare', term, { seq: ++seq })), 1_000 * term + 500);
    }
    expect(c.history).toHaveLength(ROLE_HISTORY_ENTRIES);
    expect(c.history.filter((p) => p instanceof PrimaryCheckpointer)).toEqual([c.primary]);
  });
});
