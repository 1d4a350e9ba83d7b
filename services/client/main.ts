import type { RunConfig } from '../../lib/config/run-config.js';
import { histogramOf } from '../../lib/results/histogram.js';
import { wallClock } from '../../lib/runtime/nats/clock.js';
import { emulatedLink } from '../../lib/runtime/nats/emulated-link.js';
import type { ServiceDefinition } from '../../lib/runtime/nats/service-process.js';
import { topologyOf } from '../../lib/topology/index.js';
import type { LinkStats } from '../../lib/link/index.js';
import { clientLinkGateBytesFor } from '../../lib/link/link-direction.js';
import { ClientCore } from './core.js';
import { clientOptionsFromConfig } from './options-from-config.js';

/** Builds the client as sim/world.ts does: segments out on wire.in, in on wire.out. */
export function buildClient(config: RunConfig): ClientCore {
  return new ClientCore(clientOptionsFromConfig(config));
}

/** What the client knows of a run: delivery, verification, latencies (as a mergeable histogram) and the downstream link. */
export interface ClientReport {
  readonly connected: boolean;
  readonly bytesDelivered: number;
  readonly streamVerified: boolean;
  readonly firstMismatchOffset: number | null;
  /** When the run ended for the client (the transfer completed, or now), µs of its clock from its start. */
  readonly endUs: number;
  readonly goodputBitsPerSec: number;
  /** Of the bulk connection alone. */
  readonly bulkGoodputBitsPerSec: number;
  readonly requestsCompleted: number;
  readonly latencyUs: Record<string, number>;
  /** Bytes delivered per TIMELINE_BIN_US bin; in the final report only. */
  readonly deliveredPerBin?: readonly number[];
  readonly linkDown: LinkStats;
  /** The wall clock (µs) at which the client's clock read 0: where its timeline starts. */
  readonly clockOriginWallUs: number;
  /** Answers to the SYN that belong to an established connection (ClientStats): the VM serves an earlier client. */
  readonly segmentsOfAnEarlierConnection: number;
}

/** `final`: the last report, the only one with the delivery timeline (it grows with the run; the periodic reports stay small). */
export function clientReport(client: ClientCore, linkDown: LinkStats, nowUs: number, wallNowUs: number, final: boolean): ClientReport {
  const c = client.stats;
  return {
    connected: c.connectedAtUs !== null,
    bytesDelivered: c.bytesDelivered,
    streamVerified: c.streamVerified,
    firstMismatchOffset: c.firstMismatchOffset,
    endUs: c.peerClosedAtUs ?? nowUs,
    goodputBitsPerSec: Math.round(client.goodputBitsPerSec(nowUs)),
    bulkGoodputBitsPerSec: Math.round(client.goodputBitsPerSec(nowUs, true)),
    requestsCompleted: c.requestsCompleted,
    latencyUs: histogramOf(c.latenciesUs),
    ...(final ? { deliveredPerBin: c.deliveredPerBin } : {}),
    linkDown,
    clockOriginWallUs: wallNowUs - nowUs,
    segmentsOfAnEarlierConnection: c.segmentsOfAnEarlierConnection,
  };
}

/**
 * The client of a VM: the remote peer behind the downstream half of the
 * client link, on a clock that starts at 0 (its delivery timeline). Its
 * run ends when the transfer completes or after the run's duration.
 */
export const clientService: ServiceDefinition = {
  name: 'client',
  placement: 'vm',
  clock: 'monotonic',
  leases: false,
  build(config, _host, clock) {
    const wall = wallClock();
    const client = buildClient(config);
    const linkDown = emulatedLink(config, 'down');
    return {
      core: client,
      inboundLinks: [{ subject: topologyOf(config).subjects.wireOut, hop: linkDown, maxPendingBytes: clientLinkGateBytesFor(config, 'down') }],
      report: (final) => ({ ...clientReport(client, linkDown.stats, clock.nowUs(), wall.nowUs(), final === true) }),
      done: () => client.stats.peerClosedAtUs !== null,
    };
  },
};
