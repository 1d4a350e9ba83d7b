import type { Subjects } from '../../lib/codec/subjects.js';
import { isReplicated, type RunConfig } from '../../lib/config/run-config.js';
import { PAGE_BYTES } from '../../lib/memory/paged-memory.js';
import type { Rng } from '../../lib/rng.js';
import type { GuestCoreOptions } from './core.js';

/** The guest of a run, the same under every runtime. */
export function guestOptionsFromConfig(config: RunConfig, s: Subjects, rng: Rng, recordDigests = false): GuestCoreOptions {
  const replicated = isReplicated(config.mode);
  // spec-racc: the guest's TCP knows it is replicated (docs/racc.md).
  const tcp = config.mode === 'spec-racc' ? { ...config.tcp, congestionControl: 'racc' as const, slowStartAfterIdle: false } : config.tcp;
  return {
    vmId: config.vmId,
    seed: config.seed,
    tcp,
    workload: config.workload,
    txSubject: replicated ? s.tx : s.wireOut,
    rxSubject: replicated ? s.rx : s.wireIn,
    memoryBytes: config.guest.memoryBytes,
    appDirtyPagesPerSec: config.guest.appDirtyPagesPerSec,
    rng: rng.fork('guest.app'),
    ...(replicated
      ? {
          replication: {
            epochSubject: s.epoch,
            txEpochSubject: s.txEpoch,
            ckptStageSubject: s.ckptStage,
            chunkBytes: config.checkpoint.chunkBytes,
            pageDelta: config.checkpoint.pageDelta,
            seedPagesPerEpoch: Math.floor(config.checkpoint.seedBytesPerEpoch / PAGE_BYTES),
            recordDigests,
          },
        }
      : {}),
  };
}
