import fc from 'fast-check';
import { chunkChecksum } from '../../lib/checkpoint/chunks.js';
import { ASSIGNED_ROLES, ChunkSource, FAILOVER_STATES, HOST_ROLES, HOST_SERVICES, NO_SACK_BLOCKS, REPORTING_SERVICES, TCP_FLAGS_MASK, type WireMessage, type WireMessageType } from '../../lib/codec/messages.js';

/**
 * Messages a hostile or confused peer could send a core: of the VM and hosts
 * it serves most of the time (else the core's first check drops them all),
 * with small terms, epochs and sequence numbers near those a run has, and
 * now and then a value far out of range. Every field is one the codec would
 * deliver (a decoded message), so what the core does with it is what a
 * process over NATS would do.
 */
export interface PlausibleContext {
  readonly vmId: string;
  readonly hosts: readonly string[];
}

const small = (max: number) => fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) });
const term = small(6);
const epoch = small(60);
const seq = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 1 << 20 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) });
const bytes = (maxLength: number) => fc.uint8Array({ maxLength });

export function plausibleMessages(ctx: PlausibleContext): Record<WireMessageType, fc.Arbitrary<WireMessage>> {
  const vmId = fc.oneof({ weight: 19, arbitrary: fc.constant(ctx.vmId) }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) });
  const host = fc.oneof({ weight: 19, arbitrary: fc.constantFrom(...ctx.hosts) }, { weight: 1, arbitrary: fc.constantFrom('', 'host-z') });
  const chunk = fc
    .record({ vmId, term, epoch, source: fc.constantFrom(ChunkSource.PAGES, ChunkSource.STATE, ChunkSource.SPEC, ChunkSource.MANIFEST), index: small(8), count: small(8), data: bytes(600), rightHash: fc.boolean(), wrongHash: bytes(16), rawBytes: small(1 << 16), base: fc.boolean(), joinSeq: small(20), primaryIncarnation: small(5), primaryAgentIncarnation: small(5) })
    .map(({ rightHash, wrongHash, ...c }) => ({ type: 'checkpointChunk' as const, ...c, hash: rightHash ? chunkChecksum(c) : wrongHash }));
  return {
    segment: fc
      .record({ vmId, term, epoch, connId: small(3), seq, ack: seq, window: fc.integer({ min: 0, max: 0xffff }), flags: fc.integer({ min: 0, max: TCP_FLAGS_MASK }), payload: bytes(1500), mss: small(9000), wscale: fc.option(fc.integer({ min: 0, max: 14 }), { nil: undefined }), sackPermitted: fc.boolean(), tsValUs: seq, tsEcrUs: seq, speculative: fc.boolean() })
      .map((s) => ({ type: 'segment' as const, ...s, sackBlocks: NO_SACK_BLOCKS })),
    epochBarrier: fc.record({ vmId, term, epoch, base: fc.boolean(), stagedSources: fc.integer({ min: 0, max: 31 }), joinSeq: small(10), local: fc.boolean() }).map((m) => ({ type: 'epochBarrier' as const, ...m })),
    epochEnd: fc.record({ vmId, term, epoch, txEndSeqs: fc.array(seq, { maxLength: 2 }), base: fc.boolean(), specStaged: fc.boolean(), local: fc.boolean() }).map((m) => ({ type: 'epochEnd' as const, ...m })),
    checkpointChunk: chunk,
    checkpointAck: fc.record({ vmId, term, epoch, ok: fc.boolean(), reason: fc.string({ maxLength: 16 }), host, needsBase: fc.boolean() }).map((m) => ({ type: 'checkpointAck' as const, ...m })),
    epochCommit: fc.record({ vmId, term, epoch }).map((m) => ({ type: 'epochCommit' as const, ...m })),
    outputIdle: fc.record({ vmId, term, epoch, connId: small(3), heldBytes: small(1 << 20) }).map((m) => ({ type: 'outputIdle' as const, ...m })),
    heartbeat: fc.record({ vmId, term, host, role: fc.constantFrom(...HOST_ROLES), epoch, synced: fc.boolean(), controlSeq: small(20), incarnation: small(5), chunksStaged: small(1000), followedAgentIncarnation: small(5) }).map((m) => ({ type: 'heartbeat' as const, ...m })),
    roleChange: fc.record({ vmId, term, host, role: fc.constantFrom('primary' as const, 'backup' as const), peerHost: host, seq: small(20), committedEpoch: epoch, joinSeq: small(20) }).map((m) => ({ type: 'roleChange' as const, ...m })),
    assignment: fc.record({ vmId, term, host, role: fc.constantFrom(...ASSIGNED_ROLES), peerHost: host, seq: small(20), incarnation: small(5), joining: fc.boolean(), firstEpoch: epoch, joinSeq: small(20) }).map((m) => ({ type: 'assignment' as const, ...m })),
    serviceStatus: fc
      .record({ vmId, term, host, service: fc.constantFrom(...HOST_SERVICES), incarnation: small(5), assignmentSeq: small(20), agentIncarnation: small(5), role: fc.constantFrom(...ASSIGNED_ROLES), epoch, synced: fc.boolean(), ready: fc.boolean(), txEndSeqs: fc.array(seq, { maxLength: 2 }), chunksStaged: small(1000), reportSeq: small(20).map((n) => Math.min(n, Number.MAX_SAFE_INTEGER - 1) + 1), followedAgentIncarnation: small(5) })
      .map((m) => ({ type: 'serviceStatus' as const, ...m })),
    releasePermit: fc.record({ vmId, term, host, untilUs: seq.map((n) => Math.max(1, n)), seq: small(20).map((n) => Math.min(n, Number.MAX_SAFE_INTEGER - 1) + 1) }).map((m) => ({ type: 'releasePermit' as const, ...m, fromUs: Math.max(0, m.untilUs - 440_000) })),
    handoverRequest: fc.record({ vmId, term, host }).map((m) => ({ type: 'handoverRequest' as const, ...m })),
    failoverStatus: fc.record({ vmId, term, state: fc.constantFrom(...FAILOVER_STATES), primaryHost: host, backupHost: host, recovering: fc.boolean() }).map((m) => ({ type: 'failoverStatus' as const, ...m })),
    serviceReport: fc.record({ vmId, host, service: fc.constantFrom(...REPORTING_SERVICES), incarnation: small(5), atUs: seq, final: fc.boolean(), statsJson: fc.string({ maxLength: 32 }) }).map((m) => ({ type: 'serviceReport' as const, ...m })),
  };
}
