import { subjects } from '../../lib/codec/subjects.js';
import type { RunConfig } from '../../lib/config/run-config.js';
import { latencyMs, scenarioFields, type RunResult } from '../../lib/results/run-result.js';
import { connectNats, createLogger, drainOnSignals, emulatedLink, NatsShell } from '../../lib/runtime/nats/index.js';
import { BITS_PER_BYTE, US_PER_MS, US_PER_S } from '../../lib/units.js';
import type { LinkDirection } from '../../lib/link/index.js';
import { ClientCore } from './core.js';
import { clientOptionsFromConfig } from './options-from-config.js';

export interface ClientServiceOptions {
  readonly natsUrl: string;
  /** Where the result line goes (stdout by default). */
  readonly write?: (line: string) => void;
}

/** Builds the client as sim/world.ts does: segments out on wire.in, in on wire.out. */
export function buildClient(config: RunConfig): ClientCore {
  return new ClientCore(clientOptionsFromConfig(config));
}

/**
 * The client's view of a run. Guest-side counters (retransmits,
 * fastRetransmits, timeouts, the upstream link's drops, the guest's check of
 * the request stream) are not visible here: they are 0 / assumed good, and
 * runOnNats merges them from the guest's report.
 */
export function clientRunResult(config: RunConfig, client: ClientCore, linkDown: LinkDirection, endUs: number, inputsHandled: number): RunResult {
  const c = client.stats;
  return {
    ...scenarioFields(config, 'nats'),
    goodputBitsPerSec: endUs > 0 ? Math.round((c.bytesDelivered * BITS_PER_BYTE * US_PER_S) / endUs) : 0,
    bytesDelivered: c.bytesDelivered,
    streamVerified: c.streamVerified,
    retransmits: 0,
    fastRetransmits: 0,
    timeouts: 0,
    linkQueueDrops: linkDown.stats.queueDrops,
    linkRandomLosses: linkDown.stats.randomLosses,
    requestsCompleted: c.requestsCompleted,
    latencyMsP50: latencyMs(c.latenciesUs, 50),
    latencyMsP99: latencyMs(c.latenciesUs, 99),
    // Nothing is replicated on this runtime yet (native mode only).
    checkpoints: 0,
    checkpointBytesTotal: 0,
    commitLatencyMsP50: null,
    commitLatencyMsP99: null,
    heldBytesMax: 0,
    specBufferBytesMax: 0,
    pauseMsTotal: 0,
    failovers: 0,
    failoverMs: null,
    preFailureGoodputBitsPerSec: null,
    recoveryMs: null,
    reprotections: 0,
    reprotectMs: null,
    simEvents: inputsHandled,
    wallMs: 0,
  };
}

export interface ClientOutcome {
  readonly result: RunResult;
  /** False when no guest answered: the result's verification is then vacuous. */
  readonly connected: boolean;
  /** Times the NATS connection dropped during the run: its timing is then not the link model's. */
  readonly natsDisconnects: number;
}

/**
 * The client process: its core on NATS behind the downstream half of the
 * emulated link. Ends when the run's duration has passed on the wall clock or
 * the guest closed a bulk transfer (FIN), then writes its RunResult as one
 * JSON line (wallMs: the client's own run time).
 */
export async function runClientService(config: RunConfig, options: ClientServiceOptions): Promise<ClientOutcome> {
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const logger = createLogger({ role: 'client', vm: config.vmId });
  const nc = await connectNats({ servers: options.natsUrl, name: `specula-client-${config.vmId}` });
  const client = buildClient(config);
  const linkDown = emulatedLink(config, 'down');
  const shell = new NatsShell(client, nc, {
    logger,
    inboundLinks: [{ subject: subjects(config.vmId).wireOut, hop: linkDown }],
    afterInput: () => {
      if (client.stats.peerClosedAtUs !== null) void shell.stop('transfer complete');
    },
  });
  let endUs: number | null = null;
  const stop = (why: string) => {
    endUs ??= shell.clock.nowUs();
    return shell.stop(why);
  };
  const removeSignals = drainOnSignals((signal) => stop(signal));
  const duration = setTimeout(() => void stop('duration elapsed'), config.durationS * 1000);
  try {
    await shell.start();
    await shell.done;
  } finally {
    removeSignals();
    clearTimeout(duration);
  }
  const stoppedAtUs = endUs ?? shell.clock.nowUs();
  const result = clientRunResult(config, client, linkDown, client.stats.peerClosedAtUs ?? stoppedAtUs, shell.counters.inputsHandled);
  result.wallMs = Math.round(stoppedAtUs / US_PER_MS);
  const connected = client.stats.connectedAtUs !== null;
  if (connected) logger.info({ event: 'client.result', bytesDelivered: result.bytesDelivered, goodputBitsPerSec: result.goodputBitsPerSec, shell: shell.counters, linkDown: linkDown.stats }, 'client done');
  else logger.error({ event: 'client.no_guest', subject: client.options.txSubject, shell: shell.counters }, `no guest answered on ${client.options.txSubject} within the run; is the guest running with the same vmId?`);
  const natsDisconnects = shell.counters.disconnects;
  if (natsDisconnects > 0) logger.error({ event: 'client.nats_lost', disconnects: natsDisconnects, reconnects: shell.counters.reconnects }, `lost its NATS connection ${natsDisconnects} time(s) during the run; the result does not measure the emulated link`);
  write(JSON.stringify(result));
  return { result, connected, natsDisconnects };
}
