import { z } from 'zod';
import { tcpOptionsSchema } from '../tcp/options.js';
import { workloadSchema } from '../../services/guest/workload/workload.js';

export const MODES = ['native'] as const;
export type Mode = (typeof MODES)[number];
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
    /** Round-trip every bus message through the protobuf codec. */
    wireCheck: z.boolean().default(false),
    /** Same-host message delay on the bus. */
    busDelayUs: z.number().int().min(0).default(10),
    maxLatencySamples: z.number().int().min(0).default(100_000),
  })
  .superRefine((c, ctx) => {
    if (c.workload.kind === 'rr' && c.workload.requestBytes > c.tcp.sndBufBytes) {
      ctx.addIssue({ code: 'custom', path: ['workload', 'requestBytes'], message: `must not exceed tcp.sndBufBytes (${c.tcp.sndBufBytes})` });
    }
  });

export type RunConfigInput = z.input<typeof runConfigSchema>;
export type RunConfig = z.infer<typeof runConfigSchema>;
