import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decode, decodeSegment, encode, encodeSegment, MAX_CONTROL_COUNTER, MAX_WSCALE } from '../../../lib/codec/codec.js';
import { specula } from '../../../lib/codec/gen/specula.js';
import { ASSIGNED_ROLES, FAILOVER_STATES, HOST_SERVICES, REPORTING_SERVICES, TCP_FLAGS_MASK, type Assignment, type FailoverStatus, type HandoverRequest, type ReleasePermit, type Segment, type ServiceReport, type ServiceStatus, type WireMessage, type WireMessageType } from '../../../lib/codec/messages.js';
import { messageTypeOf, parseHostSubject, subjects } from '../../../lib/codec/subjects.js';
import { DecodeError, UnknownSubjectError } from '../../../lib/errors.js';
import { segment } from '../support/segments.js';
import { MAX_STREAM_POSITION } from '../../../lib/tcp/header.js';

const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const position = fc.integer({ min: 0, max: MAX_STREAM_POSITION });

const validSegment: fc.Arbitrary<Segment> = fc.record({
  type: fc.constant('segment' as const),
  vmId: fc.string({ unit: 'grapheme', maxLength: 64 }),
  term: u64,
  epoch: u64,
  connId: u32,
  seq: position,
  ack: position,
  window: fc.integer({ min: 0, max: 0xffff }),
  flags: fc.integer({ min: 0, max: TCP_FLAGS_MASK }),
  payload: fc.uint8Array({ maxLength: 2000 }),
  mss: u32,
  wscale: fc.option(fc.integer({ min: 0, max: MAX_WSCALE }), { nil: undefined }),
  sackPermitted: fc.boolean(),
  sackBlocks: fc.array(fc.tuple(position.filter((n) => n < MAX_STREAM_POSITION), fc.integer({ min: 1, max: 1 << 24 })), { maxLength: 4 }).map((blocks) => blocks.flatMap(([start, len]) => [start, Math.min(MAX_STREAM_POSITION, start + len)])),
  tsValUs: u64,
  tsEcrUs: u64,
  speculative: fc.boolean(),
});

const text = fc.string({ unit: 'grapheme', maxLength: 64 });

const counter = fc.integer({ min: 0, max: MAX_CONTROL_COUNTER });

const validAssignment: fc.Arbitrary<Assignment> = fc.record({
  type: fc.constant('assignment' as const),
  vmId: text,
  term: counter,
  host: text,
  role: fc.constantFrom(...ASSIGNED_ROLES),
  peerHost: text,
  seq: counter,
  incarnation: u64,
  joining: fc.boolean(),
  firstEpoch: u64,
  joinSeq: counter,
});

const validServiceStatus: fc.Arbitrary<ServiceStatus> = fc.record({
  type: fc.constant('serviceStatus' as const),
  vmId: text,
  term: u64,
  host: text,
  service: fc.constantFrom(...HOST_SERVICES),
  incarnation: u64,
  assignmentSeq: u64,
  agentIncarnation: u64,
  role: fc.constantFrom(...ASSIGNED_ROLES),
  epoch: u64,
  synced: fc.boolean(),
  ready: fc.boolean(),
  txEndSeqs: fc.array(u64, { maxLength: 2 }),
  chunksStaged: u64,
  reportSeq: u64.map((n) => Math.max(1, n)),
  followedAgentIncarnation: u64,
});

const validReleasePermit: fc.Arbitrary<ReleasePermit> = fc
  .record({ type: fc.constant('releasePermit' as const), vmId: text, term: u64, host: text, untilUs: u64.map((n) => Math.max(1, n)), seq: u64.map((n) => Math.max(1, n)) })
  .map((p) => ({ ...p, fromUs: Math.floor(p.untilUs / 2) }));

const validHandoverRequest: fc.Arbitrary<HandoverRequest> = fc.record({ type: fc.constant('handoverRequest' as const), vmId: text, term: u64, host: text });

const validFailoverStatus: fc.Arbitrary<FailoverStatus> = fc.record({
  type: fc.constant('failoverStatus' as const),
  vmId: text,
  term: u64,
  state: fc.constantFrom(...FAILOVER_STATES),
  primaryHost: text,
  backupHost: text,
  recovering: fc.boolean(),
});

const validServiceReport: fc.Arbitrary<ServiceReport> = fc.record({
  type: fc.constant('serviceReport' as const),
  vmId: text,
  host: text,
  service: fc.constantFrom(...REPORTING_SERVICES),
  incarnation: u64,
  atUs: u64,
  final: fc.boolean(),
  statsJson: text,
});

/** Every message type the codec knows (a record, so a new type must be listed here to compile). */
const TYPE_SET: Record<WireMessageType, true> = { segment: true, epochBarrier: true, epochEnd: true, checkpointChunk: true, checkpointAck: true, epochCommit: true, outputIdle: true, heartbeat: true, roleChange: true, assignment: true, serviceStatus: true, releasePermit: true, handoverRequest: true, failoverStatus: true, serviceReport: true };
const ALL_TYPES = Object.keys(TYPE_SET) as WireMessageType[];

/** Decodes, reporting how it ended: the message, a DecodeError, or anything else (a bug). */
function decodeOutcome(type: WireMessageType, bytes: Uint8Array): WireMessage | 'decode-error' | string {
  try {
    return decode(type, bytes);
  } catch (e) {
    return e instanceof DecodeError ? 'decode-error' : `unexpected ${String(e)}`;
  }
}

/** Segments compared field by field, payload as plain bytes. */
const plain = (s: Segment) => ({ ...s, payload: Array.from(s.payload) });

/** Decodes, reporting how it ended: a Segment, a DecodeError, or anything else (a bug). */
function outcome(bytes: Uint8Array): 'ok' | 'decode-error' | string {
  try {
    decodeSegment(bytes);
    return 'ok';
  } catch (e) {
    return e instanceof DecodeError ? 'decode-error' : `unexpected ${String(e)}`;
  }
}

describe('codec', () => {
  it('decodes what it encodes, for any valid Segment', () => {
    fc.assert(
      fc.property(validSegment, (s) => {
        expect(plain(decodeSegment(encodeSegment(s)))).toEqual(plain(s));
      }),
    );
  });

  it('round-trips through the type-dispatching encode and decode', () => {
    fc.assert(
      fc.property(validSegment, (s) => {
        expect(plain(decode('segment', encode(s)) as Segment)).toEqual(plain(s));
      }),
      { numRuns: 20 },
    );
  });

  it('keeps an absent window scale apart from a window scale of 0', () => {
    expect(decodeSegment(encodeSegment(segment({ wscale: undefined }))).wscale).toBeUndefined();
    expect(decodeSegment(encodeSegment(segment({ wscale: 0 }))).wscale).toBe(0);
  });

  it('either decodes arbitrary bytes or throws DecodeError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(outcome(bytes)).toMatch(/^(ok|decode-error)$/);
      }),
      { numRuns: 2000 },
    );
  });

  it('either decodes a corrupted valid encoding or throws DecodeError, never anything else', () => {
    const corrupted = fc
      .tuple(validSegment, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat())
      .map(([s, edits, cut]) => {
        const bytes = encodeSegment(s).slice();
        for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
        return bytes.subarray(0, bytes.length === 0 ? 0 : cut % (bytes.length + 1));
      });
    fc.assert(
      fc.property(corrupted, (bytes) => {
        expect(outcome(bytes)).toMatch(/^(ok|decode-error)$/);
      }),
      { numRuns: 2000 },
    );
  });

  it('either decodes arbitrary bytes as any message type or throws DecodeError, never anything else', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ALL_TYPES), fc.uint8Array({ maxLength: 300 }), (type, bytes) => {
        const outcome = decodeOutcome(type, bytes);
        expect(typeof outcome === 'string' ? outcome : 'ok').toMatch(/^(ok|decode-error)$/);
      }),
      { numRuns: 5000 },
    );
  });

  it('throws DecodeError for a truncated encoding', () => {
    const bytes = encodeSegment(segment({ vmId: 'vm1', payload: new Uint8Array(100) }));
    expect(() => decodeSegment(bytes.subarray(0, bytes.length - 1))).toThrow(DecodeError);
  });

  it('rejects a window field above 65 535 and accepts 65 535', () => {
    expect(() => decodeSegment(encodeSegment(segment({ window: 0x10000 })))).toThrow(DecodeError);
    expect(decodeSegment(encodeSegment(segment({ window: 0xffff }))).window).toBe(0xffff);
  });

  it('rejects flag bits outside FIN|SYN|RST|PSH|ACK', () => {
    for (const flags of [32, 64, 0x80 | 16, 0x8000_0000]) {
      expect(() => decodeSegment(encodeSegment(segment({ flags })))).toThrow(DecodeError);
    }
  });

  it('rejects a window scale above 14 and accepts 14', () => {
    expect(() => decodeSegment(encodeSegment(segment({ wscale: 15 })))).toThrow(DecodeError);
    expect(decodeSegment(encodeSegment(segment({ wscale: 14 }))).wscale).toBe(14);
  });

  it('rejects a sequence number beyond the safe-integer range', () => {
    const bytes = specula.v1.Segment.encode({ seq: 2 ** 60 }).finish();
    expect(() => decodeSegment(bytes)).toThrow(DecodeError);
  });

  it('gives the decoded payload its own length, not the whole input buffer', () => {
    const bytes = encodeSegment(segment({ payload: new Uint8Array([9, 8, 7]), vmId: 'a-long-vm-id' }));
    expect(Array.from(decodeSegment(bytes).payload)).toEqual([9, 8, 7]);
  });
});

describe('codec, supervision and failover messages', () => {
  const roundTrips = <M extends WireMessage>(arb: fc.Arbitrary<M>) =>
    fc.assert(
      fc.property(arb, (m) => {
        expect(decode(m.type, encode(m))).toEqual(m);
      }),
      { numRuns: 300 },
    );

  it('round-trips any valid Assignment', () => roundTrips(validAssignment));
  it('round-trips any valid ServiceStatus', () => roundTrips(validServiceStatus));
  it('round-trips any valid ReleasePermit', () => roundTrips(validReleasePermit));
  it('round-trips any valid HandoverRequest', () => roundTrips(validHandoverRequest));
  it('round-trips any valid FailoverStatus', () => roundTrips(validFailoverStatus));
  it('round-trips any valid ServiceReport', () => roundTrips(validServiceReport));
  it('rejects a ServiceReport of an unknown service', () => {
    expect(() => decode('serviceReport', specula.v1.ServiceReport.encode({ service: 'router' }).finish())).toThrow(DecodeError);
  });

  it('round-trips every assigned role, service and failover state, and the largest safe integers', () => {
    const max = Number.MAX_SAFE_INTEGER;
    for (const role of ASSIGNED_ROLES) {
      const a: Assignment = { type: 'assignment', vmId: 'vm1', term: MAX_CONTROL_COUNTER, host: 'host-a', role, peerHost: 'host-b', seq: MAX_CONTROL_COUNTER, incarnation: max, joining: true, firstEpoch: max, joinSeq: MAX_CONTROL_COUNTER };
      expect(decode('assignment', encode(a))).toEqual(a);
    }
    for (const service of HOST_SERVICES) {
      const st: ServiceStatus = { type: 'serviceStatus', vmId: 'vm1', term: 1, host: 'host-a', service, incarnation: max, assignmentSeq: 2, agentIncarnation: 3, role: 'promoting', epoch: max, synced: true, ready: true, txEndSeqs: [max, max], chunksStaged: max, reportSeq: max, followedAgentIncarnation: max };
      expect(decode('serviceStatus', encode(st))).toEqual(st);
    }
    for (const state of FAILOVER_STATES) {
      const f: FailoverStatus = { type: 'failoverStatus', vmId: 'vm1', term: max, state, primaryHost: 'host-a', backupHost: '', recovering: true };
      expect(decode('failoverStatus', encode(f))).toEqual(f);
    }
    const p: ReleasePermit = { type: 'releasePermit', vmId: 'vm1', term: 1, host: 'host-a', fromUs: max - 1, untilUs: max, seq: max };
    expect(decode('releasePermit', encode(p))).toEqual(p);
  });

  it('rejects a term or control sequence number past MAX_CONTROL_COUNTER: its receivers number the next one above it', () => {
    const over = MAX_CONTROL_COUNTER + 1;
    const cases: [WireMessageType, Uint8Array][] = [
      ...(['term', 'controlSeq'] as const).map((field): [WireMessageType, Uint8Array] => ['heartbeat', specula.v1.Heartbeat.encode({ role: 'primary', [field]: over }).finish()]),
      ...(['term', 'seq', 'joinSeq'] as const).map((field): [WireMessageType, Uint8Array] => ['roleChange', specula.v1.RoleChange.encode({ role: 'primary', [field]: over }).finish()]),
      ...(['term', 'seq', 'joinSeq'] as const).map((field): [WireMessageType, Uint8Array] => ['assignment', specula.v1.Assignment.encode({ role: 'primary', [field]: over }).finish()]),
    ];
    for (const [type, bytes] of cases) expect(() => decode(type, bytes), type).toThrow(DecodeError);
    expect(decode('heartbeat', specula.v1.Heartbeat.encode({ role: 'primary', controlSeq: MAX_CONTROL_COUNTER }).finish())).toMatchObject({ controlSeq: MAX_CONTROL_COUNTER });
  });

  it('rejects an assignment or a service status with a role it does not know', () => {
    expect(() => decode('assignment', specula.v1.Assignment.encode({ vmId: 'vm1', term: 1, role: 'leader' }).finish())).toThrow(DecodeError);
    expect(() => decode('assignment', specula.v1.Assignment.encode({ vmId: 'vm1', term: 1, role: '' }).finish())).toThrow(DecodeError);
    expect(() => decode('assignment', specula.v1.Assignment.encode({ vmId: 'vm1', term: 1, role: 'Primary' }).finish())).toThrow(DecodeError);
    expect(() => decode('serviceStatus', specula.v1.ServiceStatus.encode({ service: 'guest', role: 'leader' }).finish())).toThrow(DecodeError);
  });

  it('rejects a service status from a service it does not know', () => {
    for (const service of ['', 'database', 'host-agent', 'Guest']) {
      expect(() => decode('serviceStatus', specula.v1.ServiceStatus.encode({ service, role: 'primary' }).finish()), service).toThrow(DecodeError);
    }
  });

  it('rejects a failover status in a state it does not know', () => {
    for (const state of ['', 'failing', 'PROTECTED']) {
      expect(() => decode('failoverStatus', specula.v1.FailoverStatus.encode({ state }).finish()), state).toThrow(DecodeError);
    }
  });

  it('rejects any 64-bit field beyond the safe-integer range', () => {
    const unsafe = 2 ** 60;
    const cases: [WireMessageType, Uint8Array][] = [
      ...(['term', 'seq', 'incarnation', 'firstEpoch'] as const).map((field): [WireMessageType, Uint8Array] => ['assignment', specula.v1.Assignment.encode({ role: 'primary', [field]: unsafe }).finish()]),
      ...(['term', 'incarnation', 'assignmentSeq', 'agentIncarnation', 'epoch'] as const).map((field): [WireMessageType, Uint8Array] => ['serviceStatus', specula.v1.ServiceStatus.encode({ service: 'acker', role: 'backup', [field]: unsafe }).finish()]),
      ...(['term', 'fromUs', 'untilUs', 'seq'] as const).map((field): [WireMessageType, Uint8Array] => ['releasePermit', specula.v1.ReleasePermit.encode({ seq: 1, untilUs: 1, [field]: unsafe }).finish()]),
      ['handoverRequest', specula.v1.HandoverRequest.encode({ term: unsafe }).finish()],
      ['failoverStatus', specula.v1.FailoverStatus.encode({ state: 'protected', term: unsafe }).finish()],
    ];
    for (const [type, bytes] of cases) expect(() => decode(type, bytes), type).toThrow(DecodeError);
    // The same messages with safe values decode: the field, not the message, is what fails.
    expect(decode('releasePermit', specula.v1.ReleasePermit.encode({ untilUs: Number.MAX_SAFE_INTEGER, seq: 1 }).finish())).toMatchObject({ fromUs: 0, untilUs: Number.MAX_SAFE_INTEGER });
  });

  it('rejects a release permit without a number (permits are numbered from 1), or one that allows nothing', () => {
    expect(() => decode('releasePermit', specula.v1.ReleasePermit.encode({ untilUs: 5 }).finish())).toThrow(DecodeError);
    expect(() => decode('releasePermit', specula.v1.ReleasePermit.encode({ seq: 1, fromUs: 5, untilUs: 5 }).finish())).toThrow(DecodeError);
  });

  it('either decodes a corrupted valid encoding of a supervision message or throws DecodeError, never anything else', () => {
    const message = fc.oneof(validAssignment, validServiceStatus, validReleasePermit, validHandoverRequest, validFailoverStatus, validServiceReport) as fc.Arbitrary<WireMessage>;
    const corrupted = fc.tuple(message, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat()).map(([m, edits, cut]) => {
      const bytes = encode(m).slice();
      for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
      return { type: m.type, bytes: bytes.subarray(0, bytes.length === 0 ? 0 : cut % (bytes.length + 1)) };
    });
    fc.assert(
      fc.property(corrupted, ({ type, bytes }) => {
        const outcome = decodeOutcome(type, bytes);
        expect(typeof outcome === 'string' ? outcome : 'ok').toMatch(/^(ok|decode-error)$/);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('messageTypeOf', () => {
  it('maps both wire subjects of a VM to segment', () => {
    const s = subjects('vm-7');
    expect(messageTypeOf(s.wireOut)).toBe('segment');
    expect(messageTypeOf(s.wireIn)).toBe('segment');
  });

  it('maps every subject of a VM to the type it carries', () => {
    const s = subjects('vm_1');
    const { host: _host, ...vmSubjects } = s;
    // Every VM-level subject has a type (none throws), and each the one it carries.
    const types = Object.fromEntries(Object.entries(vmSubjects).map(([name, subject]) => [name, messageTypeOf(typeof subject === 'string' ? subject : subject('host-a'))]));
    expect(types).toEqual({
      wireOut: 'segment',
      wireIn: 'segment',
      ckptData: 'checkpointChunk',
      ckptAck: 'checkpointAck',
      heartbeat: 'heartbeat',
      control: 'roleChange',
      failover: 'failoverStatus',
      report: 'serviceReport',
    });
  });

  it('maps every subject of a host to the type it carries, assignments of every service and the handover request included', () => {
    const h = subjects('vm_1').host('host-a');
    const { assign, ...fixed } = h;
    expect(Object.fromEntries(Object.entries(fixed).map(([name, subject]) => [name, messageTypeOf(subject)]))).toEqual({
      tx: 'segment',
      txData: 'segment',
      txEpoch: 'epochEnd',
      rx: 'segment',
      epoch: 'epochBarrier',
      ckptStage: 'checkpointChunk',
      commit: 'epochCommit',
      outputIdle: 'outputIdle',
      status: 'serviceStatus',
      permit: 'releasePermit',
      handover: 'checkpointChunk',
      handoverRequest: 'handoverRequest',
    });
    for (const service of HOST_SERVICES) expect(messageTypeOf(assign(service)), service).toBe('assignment');
    expect(messageTypeOf(assign('guest'))).toBe('assignment');
    expect(h.handoverRequest).toBe(`${h.handover}.req`);
  });

  it('gives each host its own subjects, under specula.<vm>.h.<host>', () => {
    const s = subjects('vm1');
    const a = s.host('host-a');
    const b = s.host('host-b');
    const { assign: assignA, ...fixedA } = a;
    const { assign: assignB, ...fixedB } = b;
    const all = [...Object.values(fixedA), ...Object.values(fixedB), ...HOST_SERVICES.flatMap((svc) => [assignA(svc), assignB(svc)])];
    expect(new Set(all).size).toBe(all.length);
    for (const subject of [...Object.values(fixedA), ...HOST_SERVICES.map((svc) => assignA(svc))]) expect(subject.startsWith('specula.vm1.h.host-a.')).toBe(true);
  });
  it('throws UnknownSubjectError for an unknown subject', () => {
    for (const subject of ['', 'specula.vm1.ack', 'specula.vm1.wire', 'specula.vm1.wire.out.extra', 'other.vm1.wire.out', 'specula..wire.out']) {
      expect(() => messageTypeOf(subject), subject).toThrow(UnknownSubjectError);
    }
  });

  it('throws UnknownSubjectError when the VM token contains a dot', () => {
    expect(() => messageTypeOf('specula.a.b.wire.out')).toThrow(UnknownSubjectError);
  });
});

describe('parseHostSubject', () => {
  it('gives the host and the kind of every host subject', () => {
    const h = subjects('vm-7').host('host_b-2');
    const kinds = { tx: 'tx', txEpoch: 'tx.epoch', rx: 'rx', epoch: 'epoch', ckptStage: 'ckpt.stage', commit: 'commit', outputIdle: 'output.idle', status: 'status', permit: 'permit', handover: 'handover', handoverRequest: 'handover.req' } as const;
    for (const [name, kind] of Object.entries(kinds)) expect(parseHostSubject(h[name as keyof typeof kinds]), name).toEqual({ host: 'host_b-2', kind });
    for (const service of HOST_SERVICES) expect(parseHostSubject(h.assign(service))).toEqual({ host: 'host_b-2', kind: `assign.${service}` });
  });

  it('returns null for the subjects of a VM that are not a host’s', () => {
    const s = subjects('vm1');
    for (const subject of [s.wireIn, s.wireOut, s.ckptData('host-a'), s.ckptAck, s.heartbeat('host-a'), s.control('host-a'), s.failover]) expect(parseHostSubject(subject), subject).toBeNull();
  });
});
