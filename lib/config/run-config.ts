import { z } from 'zod';
import { tcpOptionsSchema } from '../tcp/options.js';
import { workloadSchema } from '../../services/guest/workload/workload.js';

/**
 * native: no replication. remus: output commit only. spec: speculative ACKs
 * with a replicated speculative buffer. spec-racc: spec with the guest's
 * replication-aware congestion control.
 */
export const MODES = ['native', 'remus', 'spec', 'spec-racc'] as const;
export type Mode = (typeof MODES)[number];
export const isReplicated = (mode: Mode): boolean => mode !== 'native';
export const isSpeculative = (mode: Mode): boolean => mode === 'spec' || mode === 'spec-racc';
/** Bytes of one full-sized packet on the wire, for queue lengths given in packets. */
export const MTU_BYTES = 1500;

export const linkConfigSchema = z.object({
  bandwidthBitsPerSec: z.number().positive().max(400e9).default(1e9),
  rttMs: z.number().min(0).max(10_000).default(1),
  /** Random loss per packet, each direction. */
  lossRate: z.number().min(0).lt(1).default(0),
  jitterMs: z.number().min(0).max(1_000).default(0),
  /** Drop-tail queue in front of each direction (Linux txqueuelen 1000). */
  queueBytes: z.number().int().min(MTU_BYTES).default(1000 * MTU_BYTES),
});
export type LinkConfig = z.infer<typeof linkConfigSchema>;

/** The replication link between primary and backup hosts (its own NIC, as in Remus). */
export const replicationLinkSchema = z.object({
  bandwidthBitsPerSec: z.number().positive().max(400e9).default(10e9),
  rttMs: z.number().min(0).max(1_000).default(0.2),
});

export const checkpointConfigSchema = z.object({
  /** Fixed cost of pausing and resuming the guest (Remus: suspend/resume). */
  pauseFixedUs: z.number().int().min(0).default(500),
  /** Stop-and-copy speed of dirty pages into the staging buffer. */
  copyBytesPerSec: z.number().positive().default(4e9),
  /** Largest checkpoint chunk on the bus (NATS payloads are 1 MiB at most). */
  chunkBytes: z.number().int().min(4096).max(1024 * 1024).default(256 * 1024),
  /** XOR+RLE delta of dirty pages against the backup's copy. */
  pageDelta: z.boolean().default(true),
  /** Uncommitted checkpoints in flight before the next epoch waits. */
  maxInflightEpochs: z.number().int().min(1).max(64).default(4),
});

export const guestConfigSchema = z.object({
  memoryBytes: z.number().int().min(1024 * 1024).max(4 * 1024 * 1024 * 1024).default(64 * 1024 * 1024),
  /** Pages the application dirties per second besides its socket buffers. */
  appDirtyPagesPerSec: z.number().min(0).default(2000),
});

export const bufferConfigSchema = z.object({
  /** Output held by the netbuffer per VM; at the bound it refuses segments (counted) and TCP retransmits them. */
  heldBytesMax: z.number().int().min(64 * 1024).default(32 * 1024 * 1024),
  /** Speculative buffer of the acker; its free space is the window advertised to the guest. */
  specBufferBytes: z.number().int().min(64 * 1024).default(16 * 1024 * 1024),
});

export const runConfigSchema = z
  .object({
    mode: z.enum(MODES).default('native'),
    vmId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'vmId must be 1-64 characters of [A-Za-z0-9_-] (it is a subject token)').default('vm1'),
    seed: z.number().int().min(0).max(2 ** 32 - 1).default(1),
    /** Simulated time the run lasts. */
    durationS: z.number().positive().max(3_600).default(10),
    link: linkConfigSchema.default(linkConfigSchema.parse({})),
    tcp: tcpOptionsSchema.default(tcpOptionsSchema.parse({})),
    workload: workloadSchema.default({ kind: 'bulk', totalBytes: 0 }),
    /** Checkpoint epoch length (ignored in native mode). */
    epochMs: z.number().positive().max(10_000).default(25),
    replicationLink: replicationLinkSchema.default(replicationLinkSchema.parse({})),
    checkpoint: checkpointConfigSchema.default(checkpointConfigSchema.parse({})),
    guest: guestConfigSchema.default(guestConfigSchema.parse({})),
    buffers: bufferConfigSchema.default(bufferConfigSchema.parse({})),
    /** Round-trip every bus message through the protobuf codec. */
    wireCheck: z.boolean().default(false),
    /** Same-host message delay on the bus. */
    busDelayUs: z.number().int().min(0).default(10),
    maxLatencySamples: z.number().int().min(0).default(100_000),
  })
  .superRefine((c, ctx) => {
    if (c.buffers.specBufferBytes > c.buffers.heldBytesMax) {
      ctx.addIssue({ code: 'custom', path: ['buffers', 'specBufferBytes'], message: `must not exceed buffers.heldBytesMax (${c.buffers.heldBytesMax}): everything speculatively ACKed is held` });
    }
    if (c.workload.kind === 'rr' && c.workload.requestBytes > c.tcp.sndBufBytes) {
      ctx.addIssue({ code: 'custom', path: ['workload', 'requestBytes'], message: `must not exceed tcp.sndBufBytes (${c.tcp.sndBufBytes})` });
    }
  });

export type RunConfigInput = z.input<typeof runConfigSchema>;
export type RunConfig = z.infer<typeof runConfigSchema>;
