import { z } from 'zod';
import { SnapshotError } from '../../lib/errors.js';
import { parseSnapshot, type TcpEndpointSnapshot } from '../../lib/tcp/snapshot.js';
import type { ConnectionAppState } from './connection.js';

/** A count or position: what a guest's own counters can reach. */
const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

const appState = z.object({ bytesWritten: count, requestBytesReceived: count, requestsServed: count, responseBacklogBytes: count });

/**
 * Device, TCP and application state of a checkpoint: everything outside
 * memory pages. Each connection's TCP snapshot is checked by the endpoint
 * that restores it (lib/tcp/snapshot.ts).
 */
const guestStateSchema = z.object({
  epoch: count,
  /** The guest's clock when it paused: a restored guest's clock never reads less. */
  clockUs: z.number().nonnegative().max(Number.MAX_SAFE_INTEGER),
  tcp: z.unknown(),
  app: appState.extend({ appCounter: count }),
  more: z.array(z.object({ tcp: z.unknown(), app: appState })).optional(),
});

export interface SerializedGuestState {
  readonly epoch: number;
  readonly clockUs: number;
  readonly tcp: TcpEndpointSnapshot;
  readonly app: ConnectionAppState & { appCounter: number };
  readonly more?: readonly { readonly tcp: TcpEndpointSnapshot; readonly app: ConnectionAppState }[];
}

/**
 * The guest state of a checkpoint, checked: SnapshotError for one that is no
 * guest's (checksummed, so written so by a bug, or forged, since the
 * checksum keeps no secret). A TypeError or an unsafe epoch from it crashed
 * the guest it was promoted on.
 */
export function parseGuestState(blob: Uint8Array): SerializedGuestState {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(blob));
  } catch (cause) {
    throw new SnapshotError('the guest state of the checkpoint is not JSON', { cause });
  }
  // The TCP snapshots are the endpoints' to check, as they restore them.
  return parseSnapshot(guestStateSchema, value, 'guest state') as SerializedGuestState;
}
