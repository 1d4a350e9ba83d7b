import { describe, expect, it } from 'vitest';
import { runConfigSchema, type RunConfigInput } from '../../../lib/config/run-config.js';
import { relativeCost } from '../../../sim/experiment/sweep.js';

const cost = (input: RunConfigInput) => relativeCost(runConfigSchema.parse({ durationS: 5, epochMs: 25, link: { bandwidthBitsPerSec: 1e9, rttMs: 1 }, ...input }));

describe('the order a sweep hands its points out in', () => {
  it('puts a bulk flow before request/response, and the modes that move its bytes more times first', () => {
    const bulk = { kind: 'bulk', totalBytes: 0 } as const;
    const rr = { kind: 'rr' } as const;
    expect(cost({ mode: 'spec', workload: bulk })).toBeGreaterThan(cost({ mode: 'remus', workload: bulk }));
    expect(cost({ mode: 'remus', workload: bulk })).toBeGreaterThan(cost({ mode: 'native', workload: bulk }));
    expect(cost({ mode: 'native', workload: bulk })).toBeGreaterThan(cost({ mode: 'spec', workload: rr }));
    expect(cost({ mode: 'spec-racc', workload: bulk })).toBe(cost({ mode: 'spec', workload: bulk }));
  });

  it('grows with the run and the link rate', () => {
    expect(cost({ mode: 'spec', durationS: 10 })).toBeGreaterThan(cost({ mode: 'spec', durationS: 5 }));
    expect(cost({ mode: 'spec', link: { bandwidthBitsPerSec: 1e9, rttMs: 1 } })).toBeGreaterThan(cost({ mode: 'spec', link: { bandwidthBitsPerSec: 1e8, rttMs: 1 } }));
    expect(cost({ mode: 'spec', workload: { kind: 'rr' }, durationS: 10 })).toBeGreaterThan(cost({ mode: 'spec', workload: { kind: 'rr' }, durationS: 5 }));
  });
});
