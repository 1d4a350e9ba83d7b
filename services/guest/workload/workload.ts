import { z } from 'zod';

export const workloadSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('bulk').describe('The guest sends one byte stream to the client.'),
    totalBytes: z.number().int().min(0).default(0).describe('Bytes to send, then FIN; 0 sends until the run ends.'),
  }),
  z.object({
    kind: z.literal('rr').describe('The client sends requests one at a time; the guest answers each with a response.'),
    requestBytes: z.number().int().min(1).max(1 << 20).default(64).describe('Size of each request, in bytes (at most tcp.sndBufBytes).'),
    responseBytes: z.number().int().min(1).max(64 << 20).default(16_384).describe('Size of each response, in bytes.'),
    thinkTimeUs: z.number().int().min(0).default(0).describe('Client pause between a response and its next request, in µs.'),
  }),
]);
export type Workload = z.infer<typeof workloadSchema>;
export type BulkWorkload = Extract<Workload, { kind: 'bulk' }>;
export type RrWorkload = Extract<Workload, { kind: 'rr' }>;

/** Byte streams of a run; both ends derive them from the run's seed. */
export const STREAM_SERVER_TO_CLIENT = 'server-to-client';
export const STREAM_CLIENT_TO_SERVER = 'client-to-server';
