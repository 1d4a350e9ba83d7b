import { replicationLinkGateBytesFor } from '../../lib/link/link-direction.js';
import { mergeHistograms } from '../../lib/results/histogram.js';
import { replicationLink } from '../../lib/runtime/nats/emulated-link.js';
import type { ServiceDefinition } from '../../lib/runtime/nats/service-process.js';
import { topologyOf } from '../../lib/topology/index.js';
import { ChunkSource } from '../../lib/codec/messages.js';
import { CheckpointerCore } from './core.js';
import type { PrimaryStats } from './primary.js';
import { checkpointerOptionsFromConfig } from './options-from-config.js';

/** What a checkpointer reports: totals over every primary term it ran, commit latencies as a mergeable histogram. */
export function checkpointerReport(c: CheckpointerCore): Record<string, unknown> {
  const terms = c.history;
  const sum = (pick: (p: (typeof terms)[number]) => number) => terms.reduce((n, p) => n + pick(p), 0);
  return {
    role: c.role,
    checkpoints: sum((p) => p.stats.checkpoints),
    checkpointBytesTotal: sum((p) => p.stats.checkpointBytesTotal),
    localCommits: sum((p) => p.stats.localCommits),
    localEpochs: sum((p) => p.stats.localEpochs),
    lastCommittedEpoch: c.primary?.stats.lastCommittedEpoch ?? null,
    // Every commit, past the bound on kept samples: a long-running process's metrics keep counting.
    commitLatencyUs: mergeHistograms(terms.map((p) => p.stats.commitLatencyHistogram)),
    epochLengthUs: mergeHistograms(terms.map((p) => p.stats.epochLengthHistogram)),
    resends: sum((p) => p.stats.resends),
    probes: sum((p) => p.stats.probes),
    barrierResends: sum((p) => p.stats.barrierResends),
    // Adaptive epochs (docs/adaptive-epochs.md): quiet-output reports taken, those that came too late, epochs ended early, epochs kept short for requests.
    outputIdleReports: sum((p) => p.stats.outputIdleReports),
    outputIdleLate: sum((p) => p.stats.outputIdleLate),
    earlyEpochEnds: sum((p) => p.stats.earlyEpochEnds),
    interactiveEpochs: sum((p) => p.stats.interactiveEpochs),
    // Where pauses go (means over this term's checkpoints, ms): to the guest's pages, its state, the speculative part, all staged.
    pauseMs: pauseBreakdown(c.primary?.stats ?? null),
    staleAssignments: c.staleAssignments,
    foreignAssignments: c.foreignAssignments,
    otherVmMessages: c.otherVmMessages,
    notPrimaryDrops: c.notPrimaryDrops,
    unexpectedMessages: c.unexpectedMessages,
    // An agent that restarted alone: the primary side it did not start ended, and its configuration's term not taken.
    agentsReplaced: c.agentsReplaced,
    staleTermAssignments: c.staleTermAssignments,
  };
}

function pauseBreakdown(stats: PrimaryStats | null): Record<string, number> | null {
  if (stats === null || stats.checkpoints === 0) return null;
  const mean = (us: number | undefined) => Number(((us ?? 0) / stats.checkpoints / 1000).toFixed(2));
  const t = stats.pauseToSourceUsTotal;
  return { toPages: mean(t[ChunkSource.PAGES]), toState: mean(t[ChunkSource.STATE]), toSpec: mean(t[ChunkSource.SPEC]), toStaged: mean(stats.pauseToStagedUsTotal) };
}

/** The checkpointer of one host, behind the upstream half of the replication link (the backup's acknowledgements). */
export const checkpointerService: ServiceDefinition = {
  name: 'checkpointer',
  placement: 'host',
  clock: 'wall',
  leases: false,
  build(config, host) {
    const core = new CheckpointerCore(checkpointerOptionsFromConfig(config, host!));
    return { core, inboundLinks: [{ subject: topologyOf(config).subjects.ckptAck, hop: replicationLink(config, 'up'), maxPendingBytes: replicationLinkGateBytesFor(config.replicationLink) }], report: () => checkpointerReport(core), role: () => core.role };
  },
};
