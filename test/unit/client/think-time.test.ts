import { describe, expect, it } from 'vitest';
import { ClientCore } from '../../../services/client/core.js';
import { clientOptionsFromConfig } from '../../../services/client/options-from-config.js';
import type { RrWorkload } from '../../../services/guest/workload/workload.js';
import { config } from '../../support/run.js';

const MEAN_US = 5_000;

function rrConnection(seed: number, thinkTimeDistribution: 'constant' | 'exponential') {
  const client = new ClientCore(clientOptionsFromConfig(config({ seed, mode: 'native', workload: { kind: 'rr', requestBytes: 64, responseBytes: 1_000, thinkTimeUs: MEAN_US, thinkTimeDistribution } })));
  const connection = client.connections[0]!;
  return { connection, workload: connection.workload as RrWorkload };
}

describe("the client's think time", () => {
  it('constant: every pause is the think time', () => {
    const { connection, workload } = rrConnection(1, 'constant');
    expect(Array.from({ length: 100 }, () => connection.thinkTimeUs(workload))).toEqual(Array(100).fill(MEAN_US));
  });

  it('exponential: pauses of that mean, spread as an exponential distribution, the same for the same seed', () => {
    const draws = (seed: number) => {
      const { connection, workload } = rrConnection(seed, 'exponential');
      return Array.from({ length: 20_000 }, () => connection.thinkTimeUs(workload));
    };
    const a = draws(7);
    expect(draws(7)).toEqual(a);
    expect(draws(8)).not.toEqual(a);
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    expect(mean).toBeGreaterThan(0.97 * MEAN_US);
    expect(mean).toBeLessThan(1.03 * MEAN_US);
    // P(X > mean) = 1/e for an exponential distribution.
    expect(a.filter((x) => x > MEAN_US).length / a.length).toBeCloseTo(Math.exp(-1), 1);
    expect(Math.min(...a)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...a)).toBeLessThan(23 * MEAN_US);
  });

  it('a think time of 0 sends the next request at once, whatever the distribution', () => {
    const client = new ClientCore(clientOptionsFromConfig(config({ mode: 'native', workload: { kind: 'rr', requestBytes: 64, responseBytes: 1_000, thinkTimeUs: 0 } })));
    const connection = client.connections[0]!;
    expect(connection.thinkTimeUs(connection.workload as RrWorkload)).toBe(0);
  });
});
