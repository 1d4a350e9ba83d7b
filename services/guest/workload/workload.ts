import { z } from 'zod';
import { assert } from '../../../lib/assert.js';
import { MAX_CONNECTIONS } from '../../../lib/codec/messages.js';

/** How the client's pauses between requests are drawn. */
export const THINK_TIME_DISTRIBUTIONS = ['constant', 'exponential'] as const;
export type ThinkTimeDistribution = (typeof THINK_TIME_DISTRIBUTIONS)[number];

const requestFields = {
  requestBytes: z.number().int().min(1).max(1 << 20).default(64).describe('Size of each request, in bytes (at most tcp.sndBufBytes).'),
  responseBytes: z.number().int().min(1).max(64 << 20).default(16_384).describe('Size of each response, in bytes.'),
  thinkTimeUs: z.number().int().min(0).default(0).describe('Client pause between a response and its next request, in µs (the mean, if exponential).'),
  thinkTimeDistribution: z.enum(THINK_TIME_DISTRIBUTIONS).default('exponential').describe('constant: every pause is thinkTimeUs. exponential: each is drawn from an exponential distribution of that mean (the run\'s seed), so requests come at random, as users send them, not in step with the epochs.'),
};
const totalBytes = z.number().int().min(0).default(0).describe('Bytes to send, then FIN; 0 sends until the run ends.');

export const workloadSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('bulk').describe('The guest sends one byte stream to the client.'),
    totalBytes,
  }),
  z.strictObject({
    kind: z.literal('rr').describe('The client sends requests one at a time; the guest answers each with a response.'),
    ...requestFields,
  }),
  z.strictObject({
    kind: z.literal('mixed').describe('Both at once, on two connections of the same guest: connection 1 bulk, connection 2 request/response.'),
    totalBytes: totalBytes.describe('Bytes of the bulk connection, then FIN (which ends the run); 0 sends until the run ends.'),
    ...requestFields,
  }),
]);
export type Workload = z.infer<typeof workloadSchema>;
export type WorkloadKind = Workload['kind'];

/** What one connection of a workload carries. */
export type ConnectionWorkload = { readonly kind: 'bulk'; readonly totalBytes: number } | { readonly kind: 'rr'; readonly requestBytes: number; readonly responseBytes: number; readonly thinkTimeUs: number; readonly thinkTimeDistribution: ThinkTimeDistribution };
export type BulkWorkload = Extract<ConnectionWorkload, { kind: 'bulk' }>;
export type RrWorkload = Extract<ConnectionWorkload, { kind: 'rr' }>;


/** The connections of a workload, in connection-id order (ids start at 1). */
export function connectionWorkloads(w: Workload): readonly ConnectionWorkload[] {
  const connections = connectionsOf(w);
  assert(connections.length <= MAX_CONNECTIONS, () => `a ${w.kind} workload of ${connections.length} connections`);
  return connections;
}

function connectionsOf(w: Workload): ConnectionWorkload[] {
  switch (w.kind) {
    case 'bulk':
      return [{ kind: 'bulk', totalBytes: w.totalBytes }];
    case 'rr':
      return [rrOf(w)];
    case 'mixed':
      return [
        { kind: 'bulk', totalBytes: w.totalBytes },
        rrOf(w),
      ];
  }
}

function rrOf(w: Extract<Workload, { kind: 'rr' | 'mixed' }>): RrWorkload {
  return { kind: 'rr', requestBytes: w.requestBytes, responseBytes: w.responseBytes, thinkTimeUs: w.thinkTimeUs, thinkTimeDistribution: w.thinkTimeDistribution };
}

/** Where the guest application keeps received requests: after the send rings in guest memory. */
export const REQUEST_BUFFER_BYTES = 64 * 1024;

/** Byte streams of a run; both ends derive them from the run's seed. */
export const STREAM_SERVER_TO_CLIENT = 'server-to-client';
export const STREAM_CLIENT_TO_SERVER = 'client-to-server';

/** The stream of one direction of connection `connId` (connection 1 keeps the plain name, as runs of one connection always had). */
export function streamName(direction: typeof STREAM_SERVER_TO_CLIENT | typeof STREAM_CLIENT_TO_SERVER, connId: number): string {
  return connId === 1 ? direction : `${direction}.${connId}`;
}
