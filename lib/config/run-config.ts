import { z } from 'zod';
import { tcpOptionsSchema } from '../tcp/options.js';
import { failoverConfigSchema, faultsConfigSchema } from './failover-config.js';
import { hostsConfigSchema } from './hosts-config.js';
import { MAX_GUEST_MEMORY_BYTES, PAGE_BYTES } from '../memory/paged-memory.js';
import { PAGE_RECORD_HEADER_MAX_BYTES } from '../checkpoint/page-chunks.js';
import { MAX_HANDOVER_CHUNKS } from '../checkpoint/chunks.js';
import { BITS_PER_BYTE } from '../units.js';

/** Room for a checkpoint chunk's other fields and the message's headers, beside its data. */
export const CHUNK_ENVELOPE_BYTES = 4096;
/** NATS's default 1 MiB payload less the envelope. */
export const MAX_CHUNK_BYTES = 1024 * 1024 - CHUNK_ENVELOPE_BYTES;
import { connectionWorkloads, REQUEST_BUFFER_BYTES, workloadSchema } from '../../services/guest/workload/workload.js';
import { epochPolicySchema } from '../epoch-policy/options.js';

/**
 * native: no replication. remus: output commit only. spec: speculative ACKs
 * with a replicated speculative buffer. spec-racc: spec with the guest's
 * replication-aware congestion control.
 */
export const MODES = ['native', 'remus', 'spec', 'spec-racc'] as const;
export type Mode = (typeof MODES)[number];
export const isReplicated = (mode: Mode): boolean => mode !== 'native';
export const isSpeculative = (mode: Mode): boolean => mode === 'spec' || mode === 'spec-racc';
/** Linux's default gso_max_size: the largest segment a NIC with TSO/GSO takes. */
export const GSO_MAX_BYTES = 65_536;
/** Bytes of one full-sized packet on the wire, for queue lengths given in packets. */
export const MTU_BYTES = 1500;

export const linkConfigSchema = z.strictObject({
  bandwidthBitsPerSec: z.number().positive().max(400e9).default(1e9).describe('Rate of the client link, each direction, in bit/s.'),
  rttMs: z.number().min(0).max(10_000).default(1).describe('Round-trip propagation delay of the client link, in ms (half each way).'),
  lossRate: z.number().min(0).lt(1).default(0).describe('Random loss probability per packet, each direction.'),
  jitterMs: z.number().min(0).max(1_000).default(0).describe('Extra one-way delay per packet, uniform in [0, jitterMs), in ms; it never reorders packets.'),
  queueBytes: z.number().int().min(MTU_BYTES).default(1000 * MTU_BYTES).describe('Drop-tail queue in front of each direction, in bytes (Linux txqueuelen 1000 × 1500-byte packets).'),
  localBackpressure: z.boolean().default(true).describe("native: the guest's NIC is the head of its link, and its queue pushes back into TCP instead of dropping (Linux: TCP small queues keep two TSO packets or 1 ms of the link's rate of each socket queued, whichever is more, at most 1 MiB, and a full qdisc pushes back); false: the guest's segments meet the drop-tail queue as a router's would."),
});
export type LinkConfig = z.infer<typeof linkConfigSchema>;

/** The replication link between primary and backup hosts (its own NIC, as in Remus). */
export const replicationLinkSchema = z.strictObject({
  bandwidthBitsPerSec: z.number().positive().max(400e9).default(10e9).describe('Rate of the replication link, each direction, in bit/s.'),
  rttMs: z.number().min(0).max(1_000).default(0.2).describe('Round-trip propagation delay of the replication link, in ms (half each way).'),
});

export const checkpointConfigSchema = z.strictObject({
  pauseFixedUs: z.number().int().min(0).default(500).describe('Fixed cost of pausing and resuming the guest per checkpoint (Remus: suspend/resume), in µs.'),
  copyBytesPerSec: z.number().positive().default(4e9).describe('Stop-and-copy speed of dirty pages into the staging buffer, in bytes/s.'),
  chunkBytes: z.number().int().min(PAGE_BYTES + PAGE_RECORD_HEADER_MAX_BYTES).max(MAX_CHUNK_BYTES).default(256 * 1024).describe('Largest checkpoint chunk on the bus, in bytes: at least one raw page record, and room for the envelope under the 1 MiB NATS payload limit.'),
  pageDelta: z.boolean().default(true).describe('Send dirty pages as an XOR+RLE delta against the backup copy.'),
  maxInflightEpochs: z.number().int().min(1).max(64).default(4).describe('Uncommitted checkpoints in flight before the next epoch waits.'),
  seedBytesPerEpoch: z.number().int().min(PAGE_BYTES).default(4 * 1024 * 1024).describe('Re-protection: memory of the base image a new backup receives per epoch, beside the dirty pages, in bytes (rounded down to pages). Each such epoch pauses up to seedBytesPerEpoch / copyBytesPerSec longer.'),
});

/** Timing of the service bus: repeats and slack chosen for its delay (10 µs in the simulator, a few hundred µs over NATS). */
export const busConfigSchema = z.strictObject({
  resendMs: z.number().positive().max(1_000).default(2).describe('Interval of repeated pause barriers, resumes and commits (a lost one costs at most this), ms.'),
  ackSlackMs: z.number().min(0).max(10_000).default(5).describe('Slack of the checkpoint acknowledgement timeout beyond an epoch, the replication round trip and twice the transfer time, ms.'),
  handoverRetryMs: z.number().positive().max(10_000).default(2).describe('First wait of a promoted acker for the speculative buffer before it asks again (doubling up to handoverRetryMaxMs), ms.'),
  handoverRetryMaxMs: z.number().positive().max(60_000).default(500).describe('Longest wait of a promoted acker between two requests for the speculative buffer (at least handoverRetryMs, or the config is refused; the guest answers at most twice as often), ms. Each answer is the whole buffer: a machine that takes seconds to carry it must not be asked for it again every half second.'),
});

export const guestConfigSchema = z.strictObject({
  memoryBytes: z.number().int().min(1024 * 1024).max(MAX_GUEST_MEMORY_BYTES).default(64 * 1024 * 1024).describe('Guest memory, in bytes (4 KiB pages with dirty tracking).'),
  appDirtyPagesPerSec: z.number().min(0).default(2000).describe('Pages the application dirties per second besides its socket buffers.'),
  tsoBytes: z.number().int().min(0).max(GSO_MAX_BYTES).default(GSO_MAX_BYTES).describe("Speculative modes: the largest segment the guest's TCP hands its virtual NIC (TSO/GSO, as virtio-net and Xen's netfront offer; Linux's gso_max_size is 64 KiB), in bytes, rounded down to whole MSS. The acker takes such a segment whole and sends MSS-sized ones on the wire. Below two MSS: one MSS per segment. Native and remus guests send MSS-sized segments, which meet the link as they are."),
});

/** How a committed epoch leaves the netbuffer's plug (docs/design-notes.md, the plug). */
export const PLUG_RELEASES = ['paced', 'burst'] as const;
export type PlugRelease = (typeof PLUG_RELEASES)[number];

/** What a full plug does to a segment (docs/design-notes.md, the plug). */
export const PLUG_FULLS = ['drop', 'backpressure'] as const;
export type PlugFull = (typeof PLUG_FULLS)[number];

/** What a speculative ACK's window is (docs/racc.md): the free speculative buffer (ours) or the client's window (the paper's). */
export const SPEC_WINDOWS = ['buffer', 'client'] as const;
export type SpecWindow = (typeof SPEC_WINDOWS)[number];

export const bufferConfigSchema = z.strictObject({
  heldBytesMax: z.number().int().min(64 * 1024).default(1000 * MTU_BYTES).describe("The netbuffer's plug limit per VM, in bytes of IP packets (payload + 52 B of headers per segment), checked when a segment is held, as sch_plug checks its limit at enqueue; Linux's default is the device's txqueuelen (1000) full-size packets. A segment beyond it is dropped (counted as plugDrops) and the guest's TCP recovers it."),
  plugRelease: z.enum(PLUG_RELEASES).default('paced').describe("How a committed epoch leaves the plug. paced: the plug is the NIC's queue (sch_plug as its root qdisc), so released packets go out at line rate and only the plug limit bounds them. burst: the released epoch enters the device's drop-tail queue (link.queueBytes) at once, as a plug on an IFB device in front of the NIC's own queue does (Remus on Xen)."),
  plugFull: z.enum(PLUG_FULLS).default('drop').describe("remus: what a segment that does not fit the plug meets. drop: dropped and counted (plugDrops), as sch_plug drops at its limit; the guest's TCP recovers it. backpressure: the guest's NIC holds it (and what follows it) until a commit frees room, so nothing is lost; a segment beyond the NIC's own queue (the send buffer's worth of segments) is dropped."),
  specBufferBytes: z.number().int().min(64 * 1024).default(16 * 1024 * 1024).describe('Speculative buffer of the acker, per connection, in bytes.'),
  specWindow: z.enum(SPEC_WINDOWS).default('buffer').describe("The window a speculative ACK advertises. buffer: the free speculative buffer, so the guest never sends what does not fit. client: the client's window, as in the paper; a segment that does not fit the buffer is dropped without an ACK (docs/racc.md)."),
});

export const tracingConfigSchema = z.strictObject({
  segmentSampleRate: z.number().min(0).max(1).default(0).describe('Share of the guest\'s output segments whose path is traced (emit, speculative ACK, hold, release, delivery): one sampled byte every tcp.mssBytes / rate bytes of each connection; 0: none.'),
  epochs: z.boolean().default(false).describe('Trace every epoch: pause, copy, transfer, apply on the backup, commit.'),
});

/** A run's seed is 32 bits. */
export const MAX_SEED = 2 ** 32 - 1;

/** A VM's id: a token of its subjects, and its lease's key. */
export const vmIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'vmId must be 1-64 characters of [A-Za-z0-9_-] (it is a subject token)');

export const runConfigSchema = z
  .strictObject({
    mode: z.enum(MODES).default('native').describe('native: no replication. remus: output commit only. spec: speculative ACKs with a replicated speculative buffer. spec-racc: spec with the replication-aware congestion control (RACC) in the guest.'),
    vmId: vmIdSchema.default('vm1').describe('Protected VM id, 1-64 characters of [A-Za-z0-9_-] (it is a subject token).'),
    seed: z.number().int().min(0).max(MAX_SEED).default(1).describe('Seed of the whole run; every component forks its own stream from it.'),
    durationS: z.number().positive().max(3_600).default(10).describe('Simulated time the run lasts, in s.'),
    link: linkConfigSchema.default(linkConfigSchema.parse({})).describe('The client link: rate, delay, loss and queue of each direction.'),
    tcp: tcpOptionsSchema.default(tcpOptionsSchema.parse({})).describe('TCP of the guest, the client and the wire-side sender of the acker (Linux defaults).'),
    workload: workloadSchema.default({ kind: 'bulk', totalBytes: 0 }).describe('What the application in the guest does: a bulk transfer or request/response.'),
    epochMs: z.number().positive().max(10_000).default(25).describe('Checkpoint epoch length, in ms (ignored in native mode); the longest epoch under the adaptive policy.'),
    epochPolicy: epochPolicySchema.default(epochPolicySchema.parse({})).describe('When an epoch ends: every epochMs, or earlier when held output waits on a quiet connection (docs/adaptive-epochs.md).'),
    replicationLink: replicationLinkSchema.default(replicationLinkSchema.parse({})).describe('The replication link between primary and backup hosts (its own NIC, as in Remus).'),
    checkpoint: checkpointConfigSchema.default(checkpointConfigSchema.parse({})).describe('Costs and limits of the checkpoint pipeline.'),
    guest: guestConfigSchema.default(guestConfigSchema.parse({})).describe('Memory of the protected guest and how fast its application dirties it.'),
    buffers: bufferConfigSchema.default(bufferConfigSchema.parse({})).describe('Bounds of the netbuffer and of the speculative buffer of the acker.'),
    hosts: hostsConfigSchema.default(hostsConfigSchema.parse({})).describe('The hosts of the VM when it is created (replicated modes).'),
    failover: failoverConfigSchema.default(failoverConfigSchema.parse({})).describe('Failure detection, leases and promotion (replicated modes).'),
    bus: busConfigSchema.default(busConfigSchema.parse({})).describe('Timing of the service bus: repeats and slack.'),
    faults: faultsConfigSchema.default(faultsConfigSchema.parse({})).describe('Faults scheduled into the run.'),
    tracing: tracingConfigSchema.default(tracingConfigSchema.parse({})).describe('What the services trace (docs/tracing.md); off by default.'),
    wireCheck: z.boolean().default(false).describe('Round-trip every bus message through the protobuf codec.'),
    busDelayUs: z.number().int().min(0).default(10).describe('Same-host message delay on the bus, in µs.'),
    busJitterUs: z.number().int().min(0).max(1_000_000).default(0).describe("Simulator only: each message between services (the client's link aside) takes a further delay, uniform in [0, busJitterUs] µs, and stays in order on its subject: a busy bus and scheduler, as over NATS on a small machine (docs/nats.md). 0: none."),
    maxLatencySamples: z.number().int().min(0).default(100_000).describe('Request and commit latencies kept for percentiles; later ones are counted only.'),
  })
  .superRefine((c, ctx) => {
    if (c.epochPolicy.kind === 'adaptive' && c.epochPolicy.minEpochMs > c.epochMs) {
      ctx.addIssue({ code: 'custom', path: ['epochPolicy', 'minEpochMs'], message: `must not exceed epochMs (${c.epochMs} ms): it is the shortest epoch, epochMs the longest` });
    }
    // A promotion hands every connection's whole speculative buffer to the acker in chunks (and one more for their state).
    const connections = connectionWorkloads(c.workload).length;
    const handoverChunks = Math.ceil((connections * c.buffers.specBufferBytes) / c.checkpoint.chunkBytes) + 1;
    if (handoverChunks > MAX_HANDOVER_CHUNKS) {
      ctx.addIssue({ code: 'custom', path: ['buffers', 'specBufferBytes'], message: `needs ${handoverChunks} chunks of checkpoint.chunkBytes (${c.checkpoint.chunkBytes} B) at a promotion (${connections} connection(s) of this workload), more than the ${MAX_HANDOVER_CHUNKS} a handover takes: raise checkpoint.chunkBytes or lower the buffer` });
    }
    // Guest memory holds a send ring per connection and the request buffer before the application's heap.
    const layoutBytes = connections * c.tcp.sndBufBytes + REQUEST_BUFFER_BYTES;
    if (c.guest.memoryBytes <= layoutBytes) {
      ctx.addIssue({ code: 'custom', path: ['guest', 'memoryBytes'], message: `must exceed ${layoutBytes} B: ${connections} send ring(s) of tcp.sndBufBytes (${c.tcp.sndBufBytes} B) and a ${REQUEST_BUFFER_BYTES} B request buffer live in guest memory` });
    }
    // A lease renewed every heartbeat must outlive a missed renewal or two, or every delayed heartbeat is a failover.
    const f = c.failover;
    if (f.leaseDurationMs < 3 * f.heartbeatIntervalMs) {
      ctx.addIssue({ code: 'custom', path: ['failover', 'leaseDurationMs'], message: `must be at least 3 × failover.heartbeatIntervalMs (${3 * f.heartbeatIntervalMs} ms): a lease renewed every heartbeat must survive a missed renewal` });
    }
    // The release permit ends leaseSafetyMs + clockSkewMs before the lease: with nothing left, no output could ever leave.
    if (f.leaseDurationMs <= f.leaseSafetyMs + f.clockSkewMs) {
      ctx.addIssue({ code: 'custom', path: ['failover', 'leaseDurationMs'], message: `must exceed failover.leaseSafetyMs + failover.clockSkewMs (${f.leaseSafetyMs + f.clockSkewMs} ms): the release permit would always be expired` });
    }
    // A join is repeated once a heartbeat until taken: a bound shorter than a silence would give up backups that only beat late.
    if (f.joinStallMs < 2 * f.missCount * f.heartbeatIntervalMs) {
      ctx.addIssue({ code: 'custom', path: ['failover', 'joinStallMs'], message: `must be at least 2 × failover.missCount × failover.heartbeatIntervalMs (${2 * f.missCount * f.heartbeatIntervalMs} ms): a join stalls only after its backup could have been found silent` });
    }
    // The handover's waits double from the first up to the longest: a longest below the first has no meaning.
    if (c.bus.handoverRetryMaxMs < c.bus.handoverRetryMs) {
      ctx.addIssue({ code: 'custom', path: ['bus', 'handoverRetryMaxMs'], message: `must be at least bus.handoverRetryMs (${c.bus.handoverRetryMs} ms): the waits double from the first up to the longest` });
    }
    for (const key of ['sndBufBytes', 'rcvBufBytes'] as const) {
      if (c.tcp[key] < c.tcp.mssBytes) ctx.addIssue({ code: 'custom', path: ['tcp', key], message: `must hold at least one segment of tcp.mssBytes (${c.tcp.mssBytes} B)` });
    }
    if (c.workload.kind !== 'bulk' && c.workload.requestBytes > c.tcp.sndBufBytes) {
      ctx.addIssue({ code: 'custom', path: ['workload', 'requestBytes'], message: `must not exceed tcp.sndBufBytes (${c.tcp.sndBufBytes})` });
    }
  });

export type RunConfigInput = z.input<typeof runConfigSchema>;
export type RunConfig = z.infer<typeof runConfigSchema>;

/** A repeated request for a checkpoint's parts is answered at most once per this gap (RepeatGate): half the barrier repeat interval, µs. */
export const partRepeatGapUs = (config: RunConfig): number => (config.bus.resendMs * 1_000) / 2;
/** The replication link's rate, bytes per second. */
export const replicationBytesPerSec = (config: RunConfig): number => config.replicationLink.bandwidthBitsPerSec / BITS_PER_BYTE;
