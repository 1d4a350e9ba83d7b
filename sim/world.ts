import { subjects } from '../lib/codec/subjects.js';
import type { RunConfig } from '../lib/config/run-config.js';
import { Rng } from '../lib/rng.js';
import { SimRuntime, type SimRuntimeOptions } from '../lib/runtime/sim/index.js';
import { BITS_PER_BYTE, msToUs, sToUs, US_PER_MS } from '../lib/units.js';
import { ClientCore } from '../services/client/core.js';
import { GuestCore } from '../services/guest/core.js';
import { LinkDirection, type LinkOptions } from './link.js';

/** A built simulation: the runtime and handles to every component. */
export interface World {
  readonly runtime: SimRuntime;
  readonly guest: GuestCore;
  readonly client: ClientCore;
  readonly linkDown: LinkDirection;
  readonly linkUp: LinkDirection;
  readonly config: RunConfig;
}

export interface WorldHooks {
  readonly tamper?: SimRuntimeOptions['tamper'];
  readonly onLog?: SimRuntimeOptions['onLog'];
}

/** Builds the world of one run: guest and client on either side of a link. */
export function buildWorld(config: RunConfig, hooks: WorldHooks = {}): World {
  const rng = new Rng(config.seed);
  const runtime = new SimRuntime({ wireCheck: config.wireCheck, busDelayUs: config.busDelayUs, ...hooks });
  const s = subjects(config.vmId);
  const linkOptions: LinkOptions = {
    rateBitsPerSec: config.link.bandwidthBitsPerSec,
    delayUs: msToUs(config.link.rttMs / 2),
    queueBytes: config.link.queueBytes,
    lossRate: config.link.lossRate,
    jitterUs: msToUs(config.link.jitterMs),
  };
  const linkDown = new LinkDirection(linkOptions, rng.fork('link.down'));
  const linkUp = new LinkDirection(linkOptions, rng.fork('link.up'));
  runtime.addHop(s.wireOut, linkDown);
  runtime.addHop(s.wireIn, linkUp);
  const common = { vmId: config.vmId, seed: config.seed, tcp: config.tcp, workload: config.workload };
  const guest = new GuestCore({ ...common, txSubject: s.wireOut, rxSubject: s.wireIn });
  const client = new ClientCore({ ...common, txSubject: s.wireIn, rxSubject: s.wireOut, maxLatencySamples: config.maxLatencySamples });
  runtime.addActor(guest);
  runtime.addActor(client);
  return { runtime, guest, client, linkDown, linkUp, config };
}

/** Runs the world to the end of its duration (or until a bulk transfer completes). */
export function runWorld(world: World, onProgress?: (simUs: number) => void): void {
  const endUs = sToUs(world.config.durationS);
  const sliceUs = 100 * US_PER_MS;
  const done = () => world.client.stats.peerClosedAtUs !== null;
  for (let t = sliceUs; ; t += sliceUs) {
    world.runtime.runUntil(Math.min(t, endUs), done);
    onProgress?.(world.runtime.nowUs);
    if (done() || t >= endUs) break;
  }
}

/** Delivered goodput over the run (or until the transfer completed). */
export function goodputBitsPerSec(world: World): number {
  const c = world.client.stats;
  const endUs = c.peerClosedAtUs ?? sToUs(world.config.durationS);
  return endUs > 0 ? (c.bytesDelivered * BITS_PER_BYTE * 1e6) / endUs : 0;
}
